/**
 * What the bank needs from its ledger. The SQLite store implements it; a
 * PostgreSQL store can follow behind the same interface. Every method is
 * async so a networked store fits without changing callers.
 */
import { MAX_BALANCE_CENTS } from '../protocol/money.ts';
import type { StatementEntry } from '../protocol/messages.ts';

export type Account = {
  id: number;
  username: string;
  passwordHash: string;
  balanceCents: number;
  failedLogins: number;
  /** Epoch milliseconds until which logins are refused, or null. */
  lockedUntil: number | null;
};

export type MoneyKind = 'deposit' | 'withdraw';

export type MoneyRequest = { accountId: number; txId: string; kind: MoneyKind; amountCents: number; at: string };

/** What became of one money request. Refusals are recorded too, so a retry gets the same answer. */
export type MoneyOutcome =
  | { status: 'applied'; balanceCents: number; replayed: boolean }
  | { status: 'insufficient_funds'; balanceCents: number; replayed: boolean }
  | { status: 'balance_limit'; balanceCents: number; replayed: boolean }
  /** The txId was used before for a different request. Nothing changed. */
  | { status: 'conflict' };

export interface Ledger {
  /** Null when the username is taken (ignoring case). */
  createAccount(username: string, passwordHash: string, at: string): Promise<Account | null>;
  findAccount(username: string): Promise<Account | null>;
  /** Counts one failure and returns the new count; `lockUntil` locks and resets the count. */
  recordLoginFailure(
    accountId: number,
    lockUntil: (failures: number) => number | null,
  ): Promise<{ failures: number; lockedUntil: number | null }>;
  recordLoginSuccess(accountId: number): Promise<void>;
  /**
   * Applies a money movement atomically and idempotently per (account, txId).
   * `beforeCommit` runs inside the transaction with the outcome (for a fresh
   * request only); if it throws, nothing is committed.
   */
  applyMoney(request: MoneyRequest, beforeCommit: (outcome: MoneyOutcome) => void): Promise<MoneyOutcome>;
  /**
   * The balance as of a commit that is durable. `beforeCommit` runs with it
   * inside the ledger's transaction (the bank stages its audit line there, so
   * the line is written and synced with the movements around it).
   */
  balance(accountId: number, beforeCommit?: (balanceCents: number) => void): Promise<number>;
  /** The last `limit` applied movements, newest first. */
  statement(accountId: number, limit: number): Promise<StatementEntry[]>;
  close(): Promise<void>;
}

/** The rule for a fresh request against the current balance: no overdraft, no balance over the limit. */
export function decideMoney(balance: number, request: MoneyRequest): Exclude<MoneyOutcome, { status: 'conflict' }> {
  if (request.kind === 'withdraw') {
    if (request.amountCents > balance) return { status: 'insufficient_funds', balanceCents: balance, replayed: false };
    return { status: 'applied', balanceCents: balance - request.amountCents, replayed: false };
  }
  const next = balance + request.amountCents;
  if (next > MAX_BALANCE_CENTS) return { status: 'balance_limit', balanceCents: balance, replayed: false };
  return { status: 'applied', balanceCents: next, replayed: false };
}
