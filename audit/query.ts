/**
 * What auditors ask of the trail: filtered entries in text, JSON lines or
 * CSV, and totals per user, per ATM and per action. Pure functions over
 * verified entries; `cli.ts` does the reading and printing.
 */
import { stringify } from 'csv-stringify/sync';

import { plainCents } from '../protocol/money.ts';
import { AUDIT_ACTIONS, type AuditAction, type AuditEvent } from './event.ts';

export type EntryFilter = {
  user?: string;
  atm?: number;
  action?: AuditAction;
  outcome?: string;
  /** Inclusive, epoch milliseconds. */
  since?: number;
  /** Exclusive, epoch milliseconds. */
  until?: number;
};

/** Strict ISO 8601: a date, optionally a time, optionally seconds and milliseconds, and a zone. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** Parses an ISO time typed by an auditor; a date alone is midnight UTC. Null when it is not one. */
export function parseIsoTime(text: string): number | null {
  if (!ISO_TIME.test(text)) return null;
  const ms = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
  return Number.isFinite(ms) ? ms : null;
}

export function isAuditAction(text: string): text is AuditAction {
  return (AUDIT_ACTIONS as readonly string[]).includes(text);
}

export function matches(event: AuditEvent, filter: EntryFilter): boolean {
  if (filter.user !== undefined && event.user !== filter.user) return false;
  if (filter.atm !== undefined && event.atm !== filter.atm) return false;
  if (filter.action !== undefined && event.action !== filter.action) return false;
  if (filter.outcome !== undefined && event.outcome !== filter.outcome) return false;
  const at = Date.parse(event.at);
  if (filter.since !== undefined && at < filter.since) return false;
  if (filter.until !== undefined && at >= filter.until) return false;
  return true;
}

export type LineEvent = { lineNumber: number; event: AuditEvent };

export function describeText({ lineNumber, event }: LineEvent): string {
  const amount = event.amountCents === null ? '-' : plainCents(event.amountCents);
  const client = event.client === undefined ? '' : `  client=${event.client}`;
  const detail = event.detail === undefined ? '' : `  (${event.detail})`;
  return (
    `${lineNumber}  ${event.at}  atm=${event.atm ?? '-'}${client}  user=${event.user ?? '-'}  ` +
    `${event.action}  ${amount}  ${event.outcome}${detail}`
  );
}

/** One JSON object per line: the event, its line number, and the amount in cents and in dollars. */
export function describeJson({ lineNumber, event }: LineEvent): string {
  return JSON.stringify({
    line: lineNumber,
    ...event,
    amountDollars: event.amountCents === null ? null : plainCents(event.amountCents),
  });
}

export const CSV_COLUMNS = [
  'line',
  'at',
  'atm',
  'client',
  'user',
  'action',
  'amount_cents',
  'amount_dollars',
  'outcome',
  'detail',
] as const;

/**
 * RFC 4180 CSV with a header row. Cells that a spreadsheet would run as a
 * formula (starting with = + - @ tab or CR) are escaped with a leading quote.
 */
export function toCsv(entries: LineEvent[]): string {
  return stringify(
    entries.map(({ lineNumber, event }) => [
      lineNumber,
      event.at,
      event.atm ?? '',
      event.client ?? '',
      event.user ?? '',
      event.action,
      event.amountCents ?? '',
      event.amountCents === null ? '' : plainCents(event.amountCents),
      event.outcome,
      event.detail ?? '',
    ]),
    { header: true, columns: [...CSV_COLUMNS], escape_formulas: true, record_delimiter: 'unix' },
  );
}

/** Count and sum for one row of a summary: every event, and what went wrong. */
export type Totals = {
  count: number;
  /** Events whose outcome is not `ok`. */
  failures: number;
  /** Sum of the amounts of successful deposits and withdrawals, in cents. */
  sumCents: number;
  depositedCents: number;
  withdrawnCents: number;
  lockouts: number;
};

export type Summary = {
  byUser: Record<string, Totals>;
  byAtm: Record<string, Totals>;
  byAction: Record<string, Totals>;
  all: Totals;
};

function emptyTotals(): Totals {
  return { count: 0, failures: 0, sumCents: 0, depositedCents: 0, withdrawnCents: 0, lockouts: 0 };
}

function add(totals: Totals, event: AuditEvent): void {
  totals.count += 1;
  if (event.outcome !== 'ok') totals.failures += 1;
  if (event.action === 'lockout') totals.lockouts += 1;
  if (event.outcome === 'ok' && event.amountCents !== null) {
    if (event.action === 'deposit') {
      totals.sumCents += event.amountCents;
      totals.depositedCents += event.amountCents;
    }
    if (event.action === 'withdraw') {
      totals.sumCents += event.amountCents;
      totals.withdrawnCents += event.amountCents;
    }
  }
}

export function summarize(events: Iterable<AuditEvent>): Summary {
  const summary: Summary = { byUser: {}, byAtm: {}, byAction: {}, all: emptyTotals() };
  const row = (table: Record<string, Totals>, key: string): Totals => (table[key] ??= emptyTotals());
  for (const event of events) {
    add(summary.all, event);
    add(row(summary.byUser, event.user ?? '-'), event);
    add(row(summary.byAtm, event.atm === null ? '-' : String(event.atm)), event);
    add(row(summary.byAction, event.action), event);
  }
  return summary;
}

/** The summary as aligned text tables, amounts in dollars. */
export function summaryText(summary: Summary): string[] {
  const lines: string[] = [];
  const table = (title: string, rows: Record<string, Totals>): void => {
    lines.push(title);
    lines.push(
      `  ${'key'.padEnd(32)} ${'count'.padStart(8)} ${'failures'.padStart(8)} ${'lockouts'.padStart(8)} ` +
        `${'deposited'.padStart(16)} ${'withdrawn'.padStart(16)}`,
    );
    for (const [key, totals] of Object.entries(rows).sort(([a], [b]) => a.localeCompare(b))) {
      lines.push(
        `  ${key.padEnd(32)} ${String(totals.count).padStart(8)} ${String(totals.failures).padStart(8)} ` +
          `${String(totals.lockouts).padStart(8)} ${plainCents(totals.depositedCents).padStart(16)} ` +
          `${plainCents(totals.withdrawnCents).padStart(16)}`,
      );
    }
  };
  table('per user', summary.byUser);
  table('per ATM', summary.byAtm);
  table('per action', summary.byAction);
  table('all', { all: summary.all });
  return lines;
}
