/**
 * Banking rules, independent of the wire and of storage: signup, login with
 * lockout, what a movement may do to a balance (no overdraft, no balance
 * over the limit), transaction limits, balance and statement. Every decision
 * is audited, and the audit line is on disk before the answer goes out; a
 * failed audit write refuses the operation. A movement's line is committed
 * by the ledger with the movement (`audited-commit.ts`); other lines the bank
 * writes and flushes itself.
 */
import type { AuditAction, AuditEvent } from '../audit/event.ts';
import type { AuditSink } from '../audit/writer.ts';
import { BankError } from '../protocol/errors.ts';
import type { Channel, MoneyResult, StatementEntry } from '../protocol/messages.ts';
import {
  MAX_BALANCE_CENTS,
  MAX_CLI_TRANSACTION_CENTS,
  MAX_TRANSACTION_CENTS,
  checkTransactionCents,
} from '../protocol/money.ts';
import type {
  Account,
  CheckBudget,
  Ledger,
  LoginRecord,
  MoneyDecision,
  MoneyKind,
  MoneyOutcome,
  MoneyRequest,
} from './ledger.ts';
import type { RandomSource } from '../protocol/crypto.ts';
import { PasswordBusyError, type PasswordHasher } from './password-hasher.ts';
import { TICKET_LIFETIME_MS, openTicket, sealTicket } from './ticket.ts';

export const USERNAME_PATTERN = /^[a-z0-9_.-]{3,32}$/;
export const PASSWORD_MIN_BYTES = 8;
/** bcrypt only reads 72 bytes; longer passwords are refused, never silently truncated. */
export const PASSWORD_MAX_BYTES = 72;
/**
 * The lockout rule (SECURITY.md, "Lockout"): password checks are counted in
 * fixed 30-minute windows (wrong ones and ones in flight; a right one is
 * given back). The 5th wrong one in a window locks the account for 30
 * minutes; a window allows 5 checks while the account is not locked and 10
 * in all, so a locked account's password is still checked a few times (the
 * right one is told "locked until") but never more than 10 times a window.
 */
export const MAX_FAILED_LOGINS = 5;
export const CHECK_BUDGET: CheckBudget = { beforeLock: MAX_FAILED_LOGINS, perWindow: 10, windowMs: 30 * 60 * 1000 };
/** How long the wrong check that is a window's 5th locks the account, from that check. */
export const LOCKOUT_MS = 30 * 60 * 1000;
export const STATEMENT_LENGTH = 10;

/** One message for unknown user and wrong password (locked or not), so none can be told apart. */
export const LOGIN_FAILED_MESSAGE =
  'Invalid username or password. After 5 failed attempts an account is locked for 30 minutes.';
/** Told only to someone who gave the right password; the answer carries until when. */
export const ACCOUNT_LOCKED_MESSAGE = 'This account is locked because of too many failed login attempts.';
export const WRONG_CURRENT_PASSWORD_MESSAGE =
  'Your current password is not right. After 5 failed attempts an account is locked for 30 minutes.';

/** The password checker is full: nothing was checked, nothing counted. */
export const BUSY_MESSAGE = 'The bank is busy right now. Nothing was changed. Try again in a moment.';

export type Clock = () => Date;

export type BankOptions = {
  ledger: Ledger;
  audit: AuditSink;
  clock: Clock;
  passwords: PasswordHasher;
  /** The key all nodes share for resumption tickets (ticket.key); without it no tickets are issued. */
  tickets?: { key: Buffer; random: RandomSource };
};

/** Who is asking: which ATM and channel, and (after login) which customer. */
export type Actor = {
  atmId: number | null;
  username: string | null;
  accountId: number | null;
  channel?: Channel;
  /** The customer's address as the ATM saw it (audited with every event the request causes). */
  client?: string;
};

/**
 * Per-channel limit on one movement: the command-line contract allows up to
 * 4294967295.99, web and terminal customers $1,000,000.00.
 */
export function transactionLimit(channel: Channel | undefined): typeof MAX_TRANSACTION_CENTS {
  return channel === 'cli' ? MAX_CLI_TRANSACTION_CENTS : MAX_TRANSACTION_CENTS;
}

export type LoggedIn = { accountId: number; username: string };

/** A password login that succeeded; `lastLogin` is the one before it (null on the account's first). */
export type PasswordLogin = LoggedIn & { lastLogin: LoginRecord | null };

/**
 * What a fresh money request may do to the balance, decided inside the
 * ledger's transaction: a withdrawal never overdraws, a deposit never takes
 * the balance over MAX_BALANCE_CENTS. A refusal is recorded like a success,
 * so a retry gets the same answer.
 */
export function decideMoney(balanceCents: number, request: MoneyRequest): MoneyDecision {
  if (request.kind === 'withdraw') {
    if (request.amountCents > balanceCents) return { status: 'insufficient_funds', balanceCents, replayed: false };
    return { status: 'applied', balanceCents: balanceCents - request.amountCents, replayed: false };
  }
  const next = balanceCents + request.amountCents;
  if (next > MAX_BALANCE_CENTS) return { status: 'balance_limit', balanceCents, replayed: false };
  return { status: 'applied', balanceCents: next, replayed: false };
}

export function normalizeUsername(input: string): string | null {
  const username = input.toLowerCase();
  return USERNAME_PATTERN.test(username) ? username : null;
}

export function checkPassword(password: string): string | null {
  const bytes = Buffer.byteLength(password, 'utf8');
  if (bytes < PASSWORD_MIN_BYTES) return `Passwords must be at least ${PASSWORD_MIN_BYTES} characters.`;
  if (bytes > PASSWORD_MAX_BYTES) return `Passwords must be at most ${PASSWORD_MAX_BYTES} bytes.`;
  // bcrypt stops at a NUL byte, which would silently shorten the password.
  if (password.includes('\u0000')) return 'Passwords cannot contain a NUL character.';
  return null;
}

/** What a password check under the lockout rule found. */
type Verdict =
  | { kind: 'over_budget' }
  | { kind: 'right'; lockedUntil: number | null }
  | { kind: 'wrong'; attempt: number; accountId: number; nowMs: number };

export class Bank {
  private readonly ledger: Ledger;
  private readonly audit: AuditSink;
  private readonly clock: Clock;
  private readonly passwords: PasswordHasher;
  private dummyHash: Promise<string> | null = null;
  private readonly tickets: BankOptions['tickets'];

  constructor(options: BankOptions) {
    this.tickets = options.tickets;
    this.ledger = options.ledger;
    this.audit = options.audit;
    this.clock = options.clock;
    this.passwords = options.passwords;
  }

  /**
   * Records an event that is not tied to a customer operation (protocol
   * failures, start, stop). Nothing waits on it, so it is flushed with the
   * next group; a write that fails throws.
   */
  record(actor: Actor, action: AuditAction, outcome: string, detail?: string): void {
    this.audit.write(this.event(actor, action, null, outcome, detail));
    this.audit.flush().catch(() => undefined);
  }

  async signup(actor: Actor, rawUsername: string, password: string): Promise<{ username: string }> {
    const username = normalizeUsername(rawUsername);
    if (!username) {
      // Not even a malformed name is logged: people type passwords into the wrong field.
      await this.audited(actor, 'signup', null, 'invalid_username');
      throw new BankError('ERR_INVALID_USERNAME', 'Usernames are 3 to 32 characters: letters, digits, and . _ -');
    }
    const who = { ...actor, username };
    const passwordProblem = checkPassword(password);
    if (passwordProblem) {
      await this.audited(who, 'signup', null, 'invalid_password');
      throw new BankError('ERR_INVALID_PASSWORD', passwordProblem);
    }
    // Off the event loop (and, in production, in a low-priority process).
    const hash = await busyIfQueued(this.passwords.hash(password, passwordSource(actor)));
    const account = await this.ledger.createAccount(username, hash, this.now());
    if (!account) {
      await this.audited(who, 'signup', null, 'username_taken');
      throw new BankError('ERR_USERNAME_TAKEN', 'That username is taken. Choose another.');
    }
    await this.audited({ ...who, accountId: account.id }, 'signup', null, 'ok');
    return { username };
  }

  async login(actor: Actor, rawUsername: string, password: string): Promise<PasswordLogin> {
    const username = normalizeUsername(rawUsername);
    const account = username ? await this.ledger.findAccount(username) : null;
    const verdict = await this.judgePassword(actor, account, password);
    // A malformed name is not logged (it may be a password typed into the wrong field).
    const who: Actor = { ...actor, username: username ?? '(malformed)', accountId: account?.id ?? null };
    if (!account) {
      await this.audited(who, 'login', null, 'unknown_user');
      throw new BankError('ERR_AUTH_FAILED', LOGIN_FAILED_MESSAGE);
    }
    if (verdict.kind !== 'right' || verdict.lockedUntil !== null) throw await this.refusal(who, 'login', verdict);
    const lastLogin = await this.ledger.recordLoginSuccess(account.id, { at: this.now(), atmId: actor.atmId });
    await this.audited(who, 'login', null, 'ok');
    return { accountId: account.id, username: account.username, lastLogin };
  }

  /** A ticket that reopens this customer's session for this ATM, on any node, until it expires; null without a key. */
  issueTicket(actor: Actor, customer: LoggedIn, channel: Channel): string | null {
    if (!this.tickets || actor.atmId === null) return null;
    const expiresAt = this.clock().getTime() + TICKET_LIFETIME_MS;
    const { accountId, username } = customer;
    const claims = { accountId, username, atmId: actor.atmId, expiresAt, channel };
    return sealTicket(this.tickets.key, claims, this.tickets.random);
  }

  /**
   * Reopens a customer's session from a ticket (the ATM's link moved to
   * this node, or reconnected). Refused when the ticket is forged, was
   * issued to another ATM, has expired, or its account is gone or locked.
   * The session keeps the channel it was opened on (a card login stays a
   * terminal session), and with it that channel's limits and audit name.
   */
  async resume(actor: Actor, ticket: string): Promise<LoggedIn & { channel: Channel }> {
    const ended = new BankError('ERR_NOT_LOGGED_IN', 'Your session has ended. Please log in again.');
    if (!this.tickets || actor.atmId === null) throw ended;
    const opened = openTicket(this.tickets.key, ticket, actor.atmId, this.clock().getTime());
    if (!opened.ok) {
      await this.audited(actor, 'login', null, 'resume_refused', opened.reason);
      throw ended;
    }
    const { claims } = opened;
    const who: Actor = { ...actor, username: claims.username, accountId: claims.accountId, channel: claims.channel };
    const account = await this.ledger.findAccount(claims.username);
    if (!account || account.id !== claims.accountId) {
      await this.audited(who, 'login', null, 'resume_refused', 'unknown_account');
      throw ended;
    }
    if (account.lockedUntil !== null && account.lockedUntil > this.clock().getTime()) {
      await this.audited(who, 'login', null, 'resume_refused', 'locked');
      throw ended;
    }
    await this.audited(who, 'login', null, 'resumed');
    return { accountId: account.id, username: account.username, channel: claims.channel };
  }

  async logout(actor: Actor): Promise<void> {
    await this.audited(actor, 'logout', null, 'ok');
  }

  async move(actor: Actor, kind: MoneyKind, txId: string, amountCents: number): Promise<MoneyResult> {
    const accountId = requireAccount(actor);
    const amount = checkTransactionCents(amountCents, transactionLimit(actor.channel));
    if (!amount.ok) {
      await this.audited(actor, kind, null, 'invalid_amount', txId);
      throw new BankError('ERR_INVALID_AMOUNT', amount.reason);
    }
    let outcome: MoneyOutcome;
    try {
      // Resolves once the movement and its audit line are both durable.
      outcome = await this.ledger.applyMoney(
        { accountId, txId, kind, amountCents: amount.cents, at: this.now() },
        decideMoney,
        (decided) => this.event(actor, kind, amount.cents, outcomeName(decided), txId),
      );
    } catch (error) {
      if (error instanceof BankError) throw error;
      throw new BankError('ERR_UNAVAILABLE', 'The transaction could not be recorded. Nothing was changed.');
    }
    if (outcome.status === 'conflict') {
      await this.audited(actor, kind, amount.cents, 'tx_conflict', txId);
      throw new BankError('ERR_TX_CONFLICT', 'This transaction id was already used for a different request.');
    }
    if (outcome.replayed) await this.audited(actor, kind, amount.cents, `replayed_${outcome.status}`, txId);
    if (outcome.status === 'insufficient_funds') throw new BankError('ERR_INSUFFICIENT_FUNDS', 'Insufficient funds');
    if (outcome.status === 'balance_limit') {
      throw new BankError('ERR_BALANCE_LIMIT', 'This deposit would take the balance over the account limit.');
    }
    return {
      op: kind,
      txId,
      amountCents: amount.cents,
      balanceCents: outcome.balanceCents,
      replayed: outcome.replayed,
    };
  }

  async balance(actor: Actor): Promise<number> {
    const accountId = requireAccount(actor);
    try {
      // Like a movement's, the inquiry's audit line is committed with its ledger group.
      return await this.ledger.balance(accountId, () => this.event(actor, 'balance', null, 'ok'));
    } catch {
      throw unrecordable();
    }
  }

  /** A page of the statement, newest first; `more` says whether older entries exist. */
  async statement(
    actor: Actor,
    page: { offset?: number | undefined; limit?: number | undefined } = {},
  ): Promise<{ balanceCents: number; entries: StatementEntry[]; more: boolean }> {
    const accountId = requireAccount(actor);
    const offset = page.offset ?? 0;
    const limit = page.limit ?? STATEMENT_LENGTH;
    // One row more than asked for tells whether there is an older page.
    const [balanceCents, rows] = await Promise.all([
      this.ledger.balance(accountId),
      this.ledger.statement(accountId, limit + 1, offset),
    ]);
    await this.audited(actor, 'statement', null, 'ok', offset > 0 ? `from ${offset}` : undefined);
    return { balanceCents, entries: rows.slice(0, limit), more: rows.length > limit };
  }

  /**
   * Changes a logged-in customer's password. The current password is checked
   * under the same rules as a login (`judgePassword`): a wrong one counts
   * toward the lockout, and a locked account changes nothing. The caller ends
   * the customer's other sessions once this resolves.
   */
  async changePassword(actor: Actor, currentPassword: string, newPassword: string): Promise<void> {
    const accountId = requireAccount(actor);
    const account = actor.username === null ? null : await this.ledger.findAccount(actor.username);
    if (!account || account.id !== accountId) throw new BankError('ERR_NOT_LOGGED_IN', 'Log in first.');
    const verdict = await this.judgePassword(actor, account, currentPassword);
    if (verdict.kind !== 'right' || verdict.lockedUntil !== null) {
      throw await this.refusal(actor, 'password_change', verdict);
    }
    const problem = checkPassword(newPassword);
    if (problem) {
      await this.audited(actor, 'password_change', null, 'invalid_password');
      throw new BankError('ERR_INVALID_PASSWORD', problem);
    }
    // Off the event loop (and, in production, in a low-priority process).
    const hash = await this.passwords.hash(newPassword);
    try {
      await this.ledger.setPasswordHash(accountId, hash);
    } catch {
      throw new BankError('ERR_UNAVAILABLE', 'The password could not be changed right now. Nothing was changed.');
    }
    await this.audited(actor, 'password_change', null, 'ok');
  }

  /**
   * The lockout rule (SECURITY.md, "Lockout"), for a login and for a password
   * change's current password. The check is first reserved in the ledger, in
   * one atomic statement, so checks racing here or on other bank nodes all
   * count (issue 12, finding 1), within the window's budget (CHECK_BUDGET).
   * Past it the password is not checked at all. Within it, the password is
   * checked even while the account is locked, so the right one can be told
   * "locked until"; that is an oracle, and the window's budget bounds it too.
   * A check that finds the right password, or that the checker refused as
   * busy, gives its reservation back. bcrypt always runs, against a dummy
   * hash when the password is not to be checked, so every answer takes about
   * as long.
   */
  private async judgePassword(actor: Actor, account: Account | null, password: string): Promise<Verdict> {
    const nowMs = this.clock().getTime();
    const attempt = account ? await this.ledger.reserveLoginAttempt(account.id, nowMs, CHECK_BUDGET) : null;
    const reserved = account !== null && attempt?.status === 'reserved' ? attempt : null;
    const giveBack = async (): Promise<void> => {
      if (account && reserved) await this.ledger.releaseLoginAttempt(account.id, reserved.windowEndsAt);
    };
    let same: boolean;
    try {
      const hash = account && reserved ? account.passwordHash : await this.getDummyHash();
      same = await busyIfQueued(this.passwords.compare(password, hash, passwordSource(actor)));
    } catch (error) {
      await giveBack().catch(() => undefined);
      throw error;
    }
    if (!account || !reserved) return { kind: 'over_budget' };
    if (same && checkPassword(password) === null) {
      await giveBack();
      const lockedUntil = reserved.lockedUntil !== null && reserved.lockedUntil > nowMs ? reserved.lockedUntil : null;
      return { kind: 'right', lockedUntil };
    }
    return { kind: 'wrong', attempt: reserved.attempt, accountId: account.id, nowMs };
  }

  /**
   * The refusal for a verdict other than "right and not locked": only the
   * right password is told the account is locked, and until when; everything
   * else gets the generic answer. A wrong password that is the window's
   * MAX_FAILED_LOGINS-th check or later locks the account (or extends its
   * lock) for LOCKOUT_MS from now; the window's count stays.
   */
  private async refusal(who: Actor, action: 'login' | 'password_change', verdict: Verdict): Promise<BankError> {
    const generic = new BankError(
      'ERR_AUTH_FAILED',
      action === 'login' ? LOGIN_FAILED_MESSAGE : WRONG_CURRENT_PASSWORD_MESSAGE,
    );
    if (verdict.kind === 'over_budget') {
      await this.audited(who, action, null, 'over_budget');
      return generic;
    }
    if (verdict.kind === 'right') {
      const until = new Date(verdict.lockedUntil ?? 0).toISOString();
      await this.audited(who, action, null, 'locked', `until ${until}`);
      return new BankError('ERR_ACCOUNT_LOCKED', ACCOUNT_LOCKED_MESSAGE, until);
    }
    await this.audited(who, action, null, 'bad_password', `failure ${verdict.attempt}`);
    if (verdict.attempt >= MAX_FAILED_LOGINS) {
      const lockUntilMs = verdict.nowMs + LOCKOUT_MS;
      await this.ledger.lockAccount(verdict.accountId, lockUntilMs);
      await this.audited(who, 'lockout', null, 'locked', `until ${new Date(lockUntilMs).toISOString()}`);
    }
    return generic;
  }

  private getDummyHash(): Promise<string> {
    if (!this.dummyHash) {
      const made = this.passwords.hash('not-a-real-password-just-for-timing');
      // A refusal (checker busy) must not be remembered: the next login tries again.
      made.catch(() => {
        if (this.dummyHash === made) this.dummyHash = null;
      });
      this.dummyHash = made;
    }
    return this.dummyHash;
  }

  /** Writes the event and waits until it is on disk; refuses the operation if it cannot be recorded. */
  private async audited(
    actor: Actor,
    action: AuditAction,
    amountCents: number | null,
    outcome: string,
    detail?: string,
  ): Promise<void> {
    try {
      this.audit.write(this.event(actor, action, amountCents, outcome, detail));
      await this.audit.flush();
    } catch {
      throw unrecordable();
    }
  }

  private event(
    actor: Actor,
    action: AuditAction,
    amountCents: number | null,
    outcome: string,
    detail?: string,
  ): AuditEvent {
    const event: AuditEvent = { at: this.now(), atm: actor.atmId, user: actor.username, action, amountCents, outcome };
    if (actor.channel !== undefined) event.channel = actor.channel;
    if (actor.client !== undefined) event.client = actor.client;
    if (detail !== undefined) event.detail = detail;
    return event;
  }

  private now(): string {
    return this.clock().toISOString();
  }
}

/** The refusal when an operation's audit line cannot be made durable: nothing happened unlogged. */
function unrecordable(): BankError {
  return new BankError('ERR_UNAVAILABLE', 'The bank cannot record this operation right now. Nothing was changed.');
}

/** Who waits in the password checker's fair queue: the ATM (and, later, its customer's address). */
/**
 * Who a password check is for, as the checker's fair queue counts turns: the
 * ATM and the customer's address there (issue 12), so one address flooding
 * an ATM crowds out only itself, not its neighbours at the same ATM.
 */
function passwordSource(actor: Actor): string {
  return `atm ${actor.atmId ?? '-'} client ${actor.client ?? '-'}`;
}

/** The password checker refused the job (queue full or waited too long): tell that one customer to try again. */
async function busyIfQueued<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof PasswordBusyError) throw new BankError('ERR_BUSY', BUSY_MESSAGE);
    throw error;
  }
}

function requireAccount(actor: Actor): number {
  if (actor.accountId === null) throw new BankError('ERR_NOT_LOGGED_IN', 'Log in first.');
  return actor.accountId;
}

function outcomeName(outcome: MoneyDecision): string {
  return outcome.status === 'applied' ? 'ok' : outcome.status;
}
