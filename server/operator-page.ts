/**
 * What the operator page shows, worded once: the server renders it into the
 * first page and sends the same words as JSON to `public/operator.js`, so the
 * page reads the same with or without its script and the script formats
 * nothing. It holds counts, times and names, never an amount or a balance.
 */
import type { ActivitySnapshot } from './recent-activity.ts';

export type ConnectedAtm = { atm: number; peer: string; connectedAtMs: number; requests: number };

/** The newest position of the encrypted audit chain: its last line and that line's hash. */
export type AuditHead = { line: number; hash: string };

/**
 * How far the newest checkpoint sent to a witnessing ATM trails the bank's
 * audit head: in lines, and in seconds since that checkpoint was sent (0
 * while it is the head). Lines written since the last signing (at most about
 * a second) and lines written while no ATM watched show up here.
 */
export type WitnessLag = { atm: number; lines: number; seconds: number };

/** The lag of each witness from the newest checkpoint line it was sent and when. */
export function witnessLags(
  witnesses: ReadonlyArray<{ atm: number; line: number; sentAtMs: number }>,
  headLine: number,
  nowMs: number,
): WitnessLag[] {
  return witnesses.map(({ atm, line, sentAtMs }) => {
    const lines = Math.max(0, headLine - line);
    return { atm, lines, seconds: lines === 0 ? 0 : Math.max(0, (nowMs - sentAtMs) / 1000) };
  });
}

export type OperatorStatus = {
  nowMs: number;
  atms: ConnectedAtm[];
  activity: ActivitySnapshot;
  auditHead: AuditHead;
  /** One per connected ATM that watches the audit chain (sent `watch_audit`). */
  witnesses: WitnessLag[];
};

export type OperatorPage = {
  asOf: string;
  asOfText: string;
  figures: { connectedAtms: string; throughput: string; p99: string; auditHead: string; witnessLag: string };
  atms: Array<{ atm: string; peer: string; uptime: string; requests: string }>;
  recent: Array<{ time: string; atm: string; user: string; action: string; outcome: string }>;
};

const HASH_PREFIX_CHARS = 16;

export function operatorPage(status: OperatorStatus): OperatorPage {
  const { activity } = status;
  const asOf = new Date(status.nowMs);
  return {
    asOf: asOf.toISOString(),
    asOfText: clockTime(asOf),
    figures: {
      connectedAtms: String(status.atms.length),
      throughput: `${activity.perSecond.toFixed(1)} requests/s (${activity.requests} in the last ${activity.windowSeconds} s)`,
      p99: activity.p99Ms === null ? 'no requests in the last minute' : `${activity.p99Ms.toFixed(2)} ms`,
      auditHead:
        status.auditHead.line === 0
          ? 'empty log'
          : `line ${status.auditHead.line}, chain hash ${status.auditHead.hash.slice(0, HASH_PREFIX_CHARS)}…`,
      witnessLag: witnessText(status.witnesses),
    },
    atms: [...status.atms]
      .sort((a, b) => a.atm - b.atm)
      .map((atm) => ({
        atm: String(atm.atm),
        peer: atm.peer,
        uptime: duration(status.nowMs - atm.connectedAtMs),
        requests: String(atm.requests),
      })),
    recent: activity.recent.map((event) => ({
      time: clockTime(new Date(event.at)),
      atm: event.atm === null ? '–' : String(event.atm),
      user: event.user ?? '–',
      action: event.action,
      outcome: event.outcome,
    })),
  };
}

function witnessText(witnesses: WitnessLag[]): string {
  if (witnesses.length === 0) return 'no connected ATM is witnessing the audit chain';
  const worst = witnesses.reduce((a, b) => (b.lines > a.lines ? b : a));
  const count = witnesses.length === 1 ? '1 witness' : `${witnesses.length} witnesses`;
  if (worst.lines === 0) return `${count}, all at the head`;
  return `${count}; ${worst.lines} lines (${worst.seconds.toFixed(0)} s) behind at worst, ATM ${worst.atm}`;
}

function clockTime(date: Date): string {
  return Number.isNaN(date.getTime()) ? '–' : `${date.toISOString().slice(11, 19)} UTC`;
}

/** "42 s", "5 min 07 s", "3 h 02 min", "2 d 4 h". */
export function duration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${pad(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${pad(minutes % 60)} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}
