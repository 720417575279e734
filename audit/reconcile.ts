/**
 * Checks the ledger against the audit trail: every account's balance must be
 * what its audited movements add up to, every journal row must have exactly
 * one audit entry, and every audited movement must be a journal row.
 * The ledger is handed in as plain data, so this runs against any store.
 */
import { plainCents } from '../protocol/money.ts';
import type { LineEvent } from './query.ts';

export type LedgerAccount = { username: string; balanceCents: number };

export type JournalStatus = 'applied' | 'insufficient_funds' | 'balance_limit';

export type LedgerMovement = {
  username: string;
  txId: string;
  kind: 'deposit' | 'withdraw';
  amountCents: number;
  status: JournalStatus;
};

/** What reconcile needs from a ledger: its accounts and its journal (applied and refused rows alike). */
export type LedgerSnapshot = { accounts: LedgerAccount[]; journal: LedgerMovement[] };

export type Disagreement = { account: string; txId: string | null; problem: string };

/** The audit outcome each journal status is recorded with. */
const OUTCOME_OF: Record<JournalStatus, string> = {
  applied: 'ok',
  insufficient_funds: 'insufficient_funds',
  balance_limit: 'balance_limit',
};
const STATUS_OF = new Map(Object.entries(OUTCOME_OF).map(([status, outcome]) => [outcome, status as JournalStatus]));

function describeMovement(kind: string, amountCents: number, status: string): string {
  return `${kind} ${plainCents(amountCents)} ${status}`;
}

export function reconcile(entries: LineEvent[], ledger: LedgerSnapshot): Disagreement[] {
  const problems: Disagreement[] = [];
  // Fresh movements only: retries (`replayed_*`), conflicts and invalid amounts never make a journal row.
  const audited = new Map<string, LineEvent[]>();
  const auditedBalance = new Map<string, number>();
  for (const entry of entries) {
    const { event } = entry;
    if (event.action !== 'deposit' && event.action !== 'withdraw') continue;
    if (!STATUS_OF.has(event.outcome) || event.user === null || event.detail === undefined) continue;
    const key = JSON.stringify([event.user, event.detail]);
    audited.set(key, [...(audited.get(key) ?? []), entry]);
    if (event.outcome === 'ok' && event.amountCents !== null) {
      const sign = event.action === 'deposit' ? 1 : -1;
      auditedBalance.set(event.user, (auditedBalance.get(event.user) ?? 0) + sign * event.amountCents);
    }
  }
  for (const row of ledger.journal) {
    const key = JSON.stringify([row.username, row.txId]);
    const found = audited.get(key) ?? [];
    audited.delete(key);
    const journalSays = describeMovement(row.kind, row.amountCents, row.status);
    if (found.length === 0) {
      problems.push({
        account: row.username,
        txId: row.txId,
        problem: `journal row (${journalSays}) has no audit entry`,
      });
      continue;
    }
    if (found.length > 1) {
      const lines = found.map((entry) => entry.lineNumber).join(', ');
      problems.push({
        account: row.username,
        txId: row.txId,
        problem: `journal row (${journalSays}) has ${found.length} audit entries (lines ${lines})`,
      });
    }
    for (const { lineNumber, event } of found) {
      if (
        event.action !== row.kind ||
        event.amountCents !== row.amountCents ||
        STATUS_OF.get(event.outcome) !== row.status
      ) {
        problems.push({
          account: row.username,
          txId: row.txId,
          problem:
            `journal row says ${journalSays}, audit line ${lineNumber} says ` +
            describeMovement(event.action, event.amountCents ?? 0, STATUS_OF.get(event.outcome) ?? event.outcome),
        });
      }
    }
  }
  for (const found of audited.values()) {
    for (const { lineNumber, event } of found) {
      problems.push({
        account: event.user ?? '-',
        txId: event.detail ?? null,
        problem:
          `audit line ${lineNumber} records ${describeMovement(event.action, event.amountCents ?? 0, event.outcome)} ` +
          'but the journal has no such transaction',
      });
    }
  }
  const accounts = new Set<string>();
  for (const account of ledger.accounts) {
    accounts.add(account.username);
    const expected = auditedBalance.get(account.username) ?? 0;
    if (expected !== account.balanceCents) {
      problems.push({
        account: account.username,
        txId: null,
        problem:
          `ledger balance ${plainCents(account.balanceCents)} but the audited movements add up to ` +
          `${expected < 0 ? '-' : ''}${plainCents(Math.abs(expected))}`,
      });
    }
  }
  for (const [user, cents] of auditedBalance) {
    if (!accounts.has(user)) {
      problems.push({
        account: user,
        txId: null,
        problem: `audited movements (net ${plainCents(Math.abs(cents))}) for an account the ledger does not have`,
      });
    }
  }
  return problems;
}
