/**
 * What the bank needs from its ledger: storage and durability, no banking
 * rules. The bank passes its rules in (what a movement may do to a balance,
 * when an account locks) as pure functions, and says what each audit line
 * reads; the ledger applies them atomically, commits each line with its
 * movement (`audited-commit.ts`), and answers once both are durable.
 * SQLite (`sqlite-ledger.ts`) and PostgreSQL (`postgres-ledger.ts`)
 * implement it. Every method is async so a networked store fits.
 */
import type { AuditEvent } from '../audit/event.ts';
import type { StatementEntry } from '../protocol/messages.ts';

export type Account = {
  id: number;
  username: string;
  passwordHash: string;
  balanceCents: number;
  /** Password checks counted in the current window: wrong ones and ones in flight (a right one is given back). */
  failedLogins: number;
  /** Epoch milliseconds until which logins are refused, or null. */
  lockedUntil: number | null;
};

/** A successful login: when (ISO 8601) and at which ATM (null when the ATM did not say). */
export type LoginRecord = { at: string; atmId: number | null };

/**
 * A password check reserved before it runs (`attempt` is its number in the
 * current window, `windowEndsAt` when that window closes; `lockedUntil` the
 * account's lock as it stands, which may have run out), or refused because
 * the window's budget is spent.
 */
/**
 * How many password checks an account's window allows (SECURITY.md,
 * "Lockout"): `beforeLock` while it is not locked, `perWindow` in all, and
 * how long a window lasts.
 */
export type CheckBudget = { beforeLock: number; perWindow: number; windowMs: number };

export type LoginAttempt =
  { status: 'reserved'; attempt: number; windowEndsAt: number; lockedUntil: number | null } | { status: 'over_budget' };

export type MoneyKind = 'deposit' | 'withdraw';

export type MoneyRequest = { accountId: number; txId: string; kind: MoneyKind; amountCents: number; at: string };

/** What the bank's rule decided for a fresh request; recorded, so a retry gets the same answer. */
export type MoneyDecision =
  | { status: 'applied'; balanceCents: number; replayed: false }
  | { status: 'insufficient_funds'; balanceCents: number; replayed: false }
  | { status: 'balance_limit'; balanceCents: number; replayed: false };

/** What became of one money request. Refusals are recorded too, so a retry gets the same answer. */
export type MoneyOutcome =
  | MoneyDecision
  | { status: MoneyDecision['status']; balanceCents: number; replayed: true }
  /** The txId was used before for a different request. Nothing changed. */
  | { status: 'conflict' };

/**
 * The bank's rule for a fresh request against the balance as it stands inside
 * the ledger's transaction (`decideMoney` in bank.ts). Pure: no effects.
 */
export type MoneyRule = (balanceCents: number, request: MoneyRequest) => MoneyDecision;

/** What the audit line of a result reads. Pure: the ledger writes the line itself. */
export type AuditLine<T> = (result: T) => AuditEvent;

/**
 * Where the audit log stood when the ledger's last movement committed: the
 * chain head (audit/chain.ts: line number and the SHA-256 of that line) and
 * its HMAC under a key derived from the audit key, so whoever can edit the
 * ledger but lacks that key cannot make it vouch for a shortened log.
 */
export type KeyedAuditHead = { lineNumber: number; chainHash: Buffer; mac: Buffer };

export interface Ledger {
  /** Null when the username is taken (ignoring case). */
  createAccount(username: string, passwordHash: string, at: string): Promise<Account | null>;
  findAccount(username: string): Promise<Account | null>;
  /**
   * Counts one password check against the account *before* it runs, in one
   * atomic statement (SQLite and PostgreSQL alike: one `UPDATE ... RETURNING`),
   * so checks racing on one bank or on many nodes sharing the ledger are all
   * counted. Checks are counted in fixed windows of `budget.windowMs`, each
   * opened by the first check after the previous one closed; a window holds
   * at most `budget.beforeLock` checks (wrong or in flight) while the account
   * is not locked and `budget.perWindow` in all, and a check past that is
   * refused unrun. Locks are set by `lockAccount` and do not reset the count.
   */
  reserveLoginAttempt(accountId: number, nowMs: number, budget: CheckBudget): Promise<LoginAttempt>;
  /**
   * Gives back a reservation whose check found the right password or never
   * ran (the checker was busy); only while its window (`windowEndsAt`) is
   * still the account's, so it never frees room in a later window.
   */
  releaseLoginAttempt(accountId: number, windowEndsAt: number): Promise<void>;
  /** Locks (or extends the lock) until `lockUntilMs`; the window's count stays. */
  lockAccount(accountId: number, lockUntilMs: number): Promise<void>;
  /**
   * Records this login as the account's last, in one write; returns the login
   * it replaces (null on the first), so the customer can be shown when and
   * where they last logged in. The lockout's count is left alone: a success
   * does not give an attacker's guesses in the same window back.
   */
  recordLoginSuccess(accountId: number, login: LoginRecord): Promise<LoginRecord | null>;
  /** Replaces the account's password hash (durable when it resolves). */
  setPasswordHash(accountId: number, passwordHash: string): Promise<void>;
  /**
   * Applies a money movement atomically and idempotently per (account, txId):
   * a txId seen before gets its recorded outcome (`replayed`, or `conflict`
   * if the request differs); a fresh one is decided by `rule` against the
   * current balance and committed with the audit line `audit` describes.
   * Resolves once both are durable; rejects, changing nothing, if the line
   * cannot be written.
   */
  applyMoney(request: MoneyRequest, rule: MoneyRule, audit: AuditLine<MoneyDecision>): Promise<MoneyOutcome>;
  /**
   * The balance as of a durable commit. With `audit`, the inquiry's line is
   * committed with the ledger's next group (so it costs no writes or syncs of
   * its own) and the answer waits until it is durable.
   */
  balance(accountId: number, audit?: AuditLine<number>): Promise<number>;
  /** Applied movements, newest first: `limit` of them after skipping the newest `offset`. */
  statement(accountId: number, limit: number, offset?: number): Promise<StatementEntry[]>;
  /** Commits and syncs a write of its own: resolves only if the ledger can commit right now (the health check). */
  probe(): Promise<void>;
  /**
   * The audit chain head stored in the transaction of the last group that
   * moved money (the group's audit hook hands it over; null before the
   * first), and how many journal rows this bank (node) wrote, which only
   * matters when there is no head. The bank checks at start that its audit
   * log reaches that head (issue 12.6, 16.5). A store keeps one head per
   * bank (per node of a shared ledger), overwritten by each such group.
   */
  auditHead(): Promise<{ head: KeyedAuditHead | null; journalRows: number }>;
  close(): Promise<void>;
}

const WINDOW_OPEN = 'login_window_ends_at IS NOT NULL AND login_window_ends_at > $now';

/**
 * `reserveLoginAttempt` as one statement, for every SQL ledger (parameters
 * `$id`, `$now`, `$beforeLock`, `$perWindow`, and `$nextWindowEnd`, which is
 * `$now` plus the window's length): it matches only an account whose window
 * has room (the lock as it stands now says which budget), or whose window
 * has closed (this check opens the next one), and adds the attempt. All SET
 * expressions read the row as it was, so racing attempts serialise on the
 * row and each sees the others' counts. No row back: the budget is spent (or
 * there is no such account). The budgets are CAST because PostgreSQL types
 * a CASE of bare parameters as text (then `integer < text` fails).
 */
export const RESERVE_ATTEMPT_SQL = `UPDATE accounts SET
    failed_logins = CASE WHEN ${WINDOW_OPEN} THEN failed_logins + 1 ELSE 1 END,
    login_window_ends_at = CASE WHEN ${WINDOW_OPEN} THEN login_window_ends_at ELSE $nextWindowEnd END
  WHERE id = $id AND (
    failed_logins < CASE WHEN locked_until IS NOT NULL AND locked_until > $now
      THEN CAST($perWindow AS INTEGER) ELSE CAST($beforeLock AS INTEGER) END
    OR NOT (${WINDOW_OPEN}))
  RETURNING failed_logins, login_window_ends_at, locked_until`;

/** `releaseLoginAttempt` as one statement (parameters `$id`, `$windowEndsAt`). */
export const RELEASE_ATTEMPT_SQL = `UPDATE accounts SET failed_logins = failed_logins - 1
  WHERE id = $id AND failed_logins > 0 AND login_window_ends_at = $windowEndsAt`;

/** `lockAccount` as one statement (parameters `$id`, `$lockUntil`). */
export const LOCK_ACCOUNT_SQL = `UPDATE accounts SET locked_until = $lockUntil WHERE id = $id`;
