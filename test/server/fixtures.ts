/**
 * Fixtures for the bank's own tests: an audit log that keeps what it was
 * given (and can refuse, like a full disk), a ledger in memory, and a
 * password hasher without bcrypt, so `Bank`'s rules run without TCP,
 * SQLite or bcrypt.
 */
import type { AuditEvent } from '../../audit/event.ts';
import { CHAIN_START } from '../../audit/chain.ts';
import type { AuditSink, WriteMark } from '../../audit/writer.ts';
import type { StatementEntry } from '../../protocol/messages.ts';
import { AuditedCommit, type GroupAuditLog } from '../../server/audited-commit.ts';
import type {
  Account,
  AuditLine,
  KeyedAuditHead,
  Ledger,
  LoginRecord,
  CheckBudget,
  LoginAttempt,
  MoneyDecision,
  MoneyKind,
  MoneyOutcome,
  MoneyRequest,
  MoneyRule,
} from '../../server/ledger.ts';
import type { PasswordHasher } from '../../server/password-hasher.ts';

/**
 * The audit files: keeps the lines of each write (a ledger group's, or one
 * event the bank wrote itself), counts rollbacks, and while `failWith` is set
 * refuses every write.
 */
export class TestAuditLog implements GroupAuditLog, AuditSink {
  /** The lines of each write, in order. */
  readonly groups: AuditEvent[][] = [];
  rollbacks = 0;
  retracted = 0;
  private lastMark: WriteMark | null = null;
  failWith: Error | null = null;
  private staged: AuditEvent[] = [];
  private held: Promise<void> | null = null;

  stage(event: AuditEvent): void {
    this.staged.push(event);
  }

  writeStaged(): WriteMark | null {
    const staged = this.staged;
    this.staged = [];
    if (this.failWith) throw this.failWith;
    if (staged.length === 0) return null;
    this.groups.push(staged);
    return this.mark(staged.length);
  }

  /** Takes back the last group written, as the real writer does, if `mark` is still the last write. */
  retractWrite(mark: WriteMark): boolean {
    if (this.lastMark !== mark) return false;
    this.lastMark = null;
    this.groups.pop();
    this.retracted += 1;
    return true;
  }

  private mark(lines: number): WriteMark {
    const before = { plain: this.events.length - lines, encrypted: this.events.length - lines, position: CHAIN_START };
    this.lastMark = { before, after: { plain: this.events.length, encrypted: this.events.length } };
    return this.lastMark;
  }

  discardStaged(): void {
    this.staged = [];
    this.rollbacks += 1;
  }

  write(event: AuditEvent): void {
    this.stage(event);
    this.writeStaged();
  }

  flush(): Promise<void> {
    return this.held ?? Promise.resolve();
  }

  /** Holds every sync asked for from now on until the returned function is called (a slow disk). */
  holdFlushes(): () => void {
    let release = (): void => {};
    this.held = new Promise((resolve) => (release = resolve));
    return () => {
      this.held = null;
      release();
    };
  }

  get events(): AuditEvent[] {
    return this.groups.flat();
  }

  /** Every line written, in order, as `action outcome`. */
  get lines(): string[] {
    return this.events.map((event) => `${event.action} ${event.outcome}`);
  }
}

/** An audit line for a ledger test: what happened, as the bank would describe it. */
export function testLine(action: AuditEvent['action'], outcome: string): AuditEvent {
  return { at: '2026-01-01T00:00:00Z', atm: 1, user: 'grace', action, amountCents: null, outcome };
}

type JournalEntry = MoneyRequest & { status: MoneyDecision['status']; balanceAfterCents: number };

/**
 * A ledger in memory that keeps the `Ledger` contract: idempotent per
 * (account, txId), the bank's rule applied to the current balance, and each
 * line committed with its movement through `AuditedCommit` (a refused write
 * changes nothing). Every call is one group.
 */
export class MemoryLedger implements Ledger {
  private readonly accounts = new Map<number, Account>();
  private readonly journal: JournalEntry[] = [];
  private readonly lastLogins = new Map<number, LoginRecord>();
  private head: KeyedAuditHead | null = null;
  /** When each account's window of password checks closes (the SQL ledgers' login_window_ends_at). */
  private readonly windowEnds = new Map<number, number>();

  constructor(private readonly audited: AuditedCommit) {}

  async createAccount(username: string, passwordHash: string): Promise<Account | null> {
    if (await this.findAccount(username)) return null;
    const account = {
      id: this.accounts.size + 1,
      username,
      passwordHash,
      balanceCents: 0,
      failedLogins: 0,
      lockedUntil: null,
    };
    this.accounts.set(account.id, account);
    return { ...account };
  }

  async findAccount(username: string): Promise<Account | null> {
    for (const account of this.accounts.values()) {
      if (account.username.toLowerCase() === username.toLowerCase()) return { ...account };
    }
    return null;
  }

  /** The same decision as the SQL ledgers' one statement (RESERVE_ATTEMPT_SQL), made in one synchronous step. */
  async reserveLoginAttempt(accountId: number, nowMs: number, budget: CheckBudget): Promise<LoginAttempt> {
    const account = this.account(accountId);
    const windowEnd = this.windowEnds.get(accountId);
    const open = windowEnd !== undefined && windowEnd > nowMs;
    const locked = account.lockedUntil !== null && account.lockedUntil > nowMs;
    if (open && account.failedLogins >= (locked ? budget.perWindow : budget.beforeLock))
      return { status: 'over_budget' };
    account.failedLogins = open ? account.failedLogins + 1 : 1;
    const windowEndsAt = open ? windowEnd : nowMs + budget.windowMs;
    this.windowEnds.set(accountId, windowEndsAt);
    return { status: 'reserved', attempt: account.failedLogins, windowEndsAt, lockedUntil: account.lockedUntil };
  }

  async releaseLoginAttempt(accountId: number, windowEndsAt: number): Promise<void> {
    const account = this.account(accountId);
    if (account.failedLogins > 0 && this.windowEnds.get(accountId) === windowEndsAt) account.failedLogins -= 1;
  }

  async lockAccount(accountId: number, lockUntilMs: number): Promise<void> {
    this.account(accountId).lockedUntil = lockUntilMs;
  }

  async recordLoginSuccess(accountId: number, login: LoginRecord): Promise<LoginRecord | null> {
    const previous = this.lastLogins.get(accountId) ?? null;
    this.lastLogins.set(accountId, { ...login });
    return previous;
  }

  async setPasswordHash(accountId: number, passwordHash: string): Promise<void> {
    this.account(accountId).passwordHash = passwordHash;
  }

  async applyMoney(request: MoneyRequest, rule: MoneyRule, audit: AuditLine<MoneyDecision>): Promise<MoneyOutcome> {
    const previous = this.journal.find((entry) => entry.accountId === request.accountId && entry.txId === request.txId);
    if (previous) {
      if (previous.kind !== request.kind || previous.amountCents !== request.amountCents) return { status: 'conflict' };
      return { status: previous.status, balanceCents: previous.balanceAfterCents, replayed: true };
    }
    const account = this.account(request.accountId);
    const decided = rule(account.balanceCents, request);
    this.commit([audit(decided)]);
    account.balanceCents = decided.balanceCents;
    this.journal.push({ ...request, status: decided.status, balanceAfterCents: decided.balanceCents });
    await this.audited.durable(Promise.resolve());
    return decided;
  }

  async balance(accountId: number, audit?: AuditLine<number>): Promise<number> {
    const { balanceCents } = this.account(accountId);
    if (audit) this.commit([audit(balanceCents)]);
    await this.audited.durable(Promise.resolve());
    return balanceCents;
  }

  async statement(accountId: number, limit: number, offset = 0): Promise<StatementEntry[]> {
    return this.journal
      .filter((entry) => entry.accountId === accountId && entry.status === 'applied')
      .reverse()
      .slice(offset, offset + limit)
      .map((entry) => ({
        at: entry.at,
        kind: entry.kind as MoneyKind,
        amountCents: entry.amountCents,
        balanceAfterCents: entry.balanceAfterCents,
      }));
  }

  /** Nothing here can fail to commit. */
  async probe(): Promise<void> {}

  async close(): Promise<void> {}

  async auditHead(): Promise<{ head: KeyedAuditHead | null; journalRows: number }> {
    return { head: this.head, journalRows: this.journal.length };
  }

  /** Sets a balance directly, for a test that needs one near a limit. */
  setBalance(accountId: number, cents: number): void {
    this.account(accountId).balanceCents = cents;
  }

  /** The transaction: its audit lines first; if they cannot be written, nothing changes. */
  private commit(events: AuditEvent[]): void {
    try {
      this.head = this.audited.beforeCommit(events) ?? this.head;
    } catch (error) {
      this.audited.afterRollback();
      throw error;
    }
  }

  private account(accountId: number): Account {
    const account = this.accounts.get(accountId);
    if (!account) throw new Error('unknown account');
    return account;
  }
}

/** Passwords "hashed" by prefixing: the bank's rules, not bcrypt, are under test. */
export const fakeHasher: PasswordHasher = {
  hash: async (password) => `hashed:${password}`,
  compare: async (password, hash) => hash === `hashed:${password}`,
  close: async () => {},
};
