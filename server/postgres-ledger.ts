/**
 * The ledger in PostgreSQL, shared by any number of bank nodes (`--ledger
 * postgres://...`). Accounts, balances, the journal (idempotency ids), the
 * lockout counters and every node's audit chain live in the database.
 *
 * Group commit, as in the SQLite ledger: the requests that arrive while a
 * group is in flight form the next group, one PostgreSQL transaction with
 * one COMMIT. Its audit lines (this node's chain: node id, sequence number,
 * sealed line chained to the previous one) are inserted in that same
 * transaction, so money without its audit line, or the reverse, cannot
 * exist; the node's audit files get the same lines as `audited-commit.ts`
 * says. Audit events that belong to no money request (logins, protocol
 * failures) join the next group too, which keeps this node's chain in one
 * order. One group at a time is between BEGIN and COMMIT on a node; the
 * next one starts as soon as COMMIT returns, while the last group's lines
 * are still being synced to the node's files (its members are answered only
 * once they are).
 *
 * Concurrency between nodes: explicit row locks, not SERIALIZABLE. A group
 * locks its accounts with `SELECT ... FOR UPDATE` in id order, then reads
 * the journal for its transaction ids. A second node touching the same
 * account waits for the first to commit instead of failing, and then sees
 * its journal rows (READ COMMITTED starts each statement on a fresh
 * snapshot), so a transaction id re-sent to another node while the first is
 * still committing is answered as a replay rather than applied twice. Under
 * SERIALIZABLE the same contention would abort whole groups at commit.
 * Deadlocks, serialization failures (CockroachDB always runs
 * SERIALIZABLE), unique-key races and lost connections are retried with the
 * group's decisions made afresh.
 */
import pg from 'pg';

import { AuditKeys, CHAIN_START, LOG_ID_BYTES, hashLine, sealLine, type ChainPosition } from '../audit/chain.ts';
import { formatPlainLine, type AuditEvent } from '../audit/event.ts';
import type { AuditSink } from '../audit/writer.ts';
import { secureRandom, type RandomSource } from '../protocol/crypto.ts';
import type { StatementEntry } from '../protocol/messages.ts';
import type { AuditedCommit } from './audited-commit.ts';
import { LOCK_ACCOUNT_SQL, RELEASE_ATTEMPT_SQL, RESERVE_ATTEMPT_SQL } from './ledger.ts';
import type {
  Account,
  KeyedAuditHead,
  AuditLine,
  Ledger,
  LoginRecord,
  CheckBudget,
  LoginAttempt,
  MoneyDecision,
  MoneyKind,
  MoneyOutcome,
  MoneyRequest,
  MoneyRule,
} from './ledger.ts';

/** The shared lockout statements with `$name` parameters numbered in this order. */
function numbered(sql: string, names: readonly string[]): string {
  return sql.replace(/\$(\w+)/g, (_, name: string) => `$${names.indexOf(name) + 1}`);
}
const RESERVE_ATTEMPT = numbered(RESERVE_ATTEMPT_SQL, ['id', 'now', 'beforeLock', 'perWindow', 'nextWindowEnd']);
const RELEASE_ATTEMPT = numbered(RELEASE_ATTEMPT_SQL, ['id', 'windowEndsAt']);
const LOCK_ACCOUNT = numbered(LOCK_ACCOUNT_SQL, ['id', 'lockUntil']);
import { migrate } from './postgres-migrations.ts';

export type PostgresLedgerOptions = {
  url: string;
  /** This node's name in the shared audit table; each node keeps its own chain. */
  nodeId: string;
  auditKey: Buffer;
  random?: RandomSource;
  /** The node's audit files: each group's lines are written there before COMMIT (in chain order). */
  audited: AuditedCommit;
  /** Connections in the pool: one for the group in flight, the rest for logins and statements. */
  poolSize?: number;
  /** Reports errors of idle connections (PostgreSQL restarting, say); they never crash the node. */
  onIdleError?: (error: Error) => void;
  /** How many requests a committed group settled (the group-size metric, as for SQLite). */
  committedGroup?: (requests: number) => void;
};

type AccountRow = {
  id: string;
  username: string;
  password_hash: string;
  balance_cents: string;
  failed_logins: number;
  locked_until: string | null;
};

type JournalRow = {
  account_id: string;
  tx_id: string;
  kind: MoneyKind;
  amount_cents: string;
  status: Exclude<MoneyOutcome['status'], 'conflict'>;
  balance_after_cents: string;
};

type Item =
  | {
      type: 'money';
      request: MoneyRequest;
      rule: MoneyRule;
      audit: AuditLine<MoneyDecision>;
      resolve: (outcome: MoneyOutcome) => void;
      reject: (error: unknown) => void;
    }
  | {
      type: 'balance';
      accountId: number;
      audit: AuditLine<number> | undefined;
      resolve: (balanceCents: number) => void;
      reject: (error: unknown) => void;
    };

/** Audit events given outside a money request, committed together with one group. */
type EventBatch = { events: AuditEvent[]; done: Promise<void>; settle: (error?: unknown) => void };

const MAX_ATTEMPTS = 6;
/** Deadlock, serialization failure, unique-key race, connection lost or refused. */
const RETRYABLE = new Set([
  '40001',
  '40P01',
  '23505',
  '57P01',
  '08000',
  '08003',
  '08006',
  'ECONNRESET',
  'ECONNREFUSED',
]);

const LOCK_ACCOUNTS = 'SELECT id, balance_cents FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE';
const FIND_TXS = `SELECT account_id, tx_id, kind, amount_cents, status, balance_after_cents FROM journal
  WHERE account_id = ANY($1::bigint[]) AND tx_id = ANY($2::text[])`;
const CHAIN_HEAD = 'SELECT seq, line FROM audit_lines WHERE node_id = $1 ORDER BY seq DESC LIMIT 1';
/** One round trip for all of a group's writes. */
const WRITE_GROUP = `WITH balances AS (
    UPDATE accounts SET balance_cents = u.balance_cents
    FROM unnest($1::bigint[], $2::bigint[]) AS u (id, balance_cents) WHERE accounts.id = u.id
  ), entries AS (
    INSERT INTO journal (account_id, tx_id, kind, amount_cents, status, balance_after_cents, created_at, node_id)
    SELECT *, $10::text FROM unnest($3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[], $9::text[])
  )
  INSERT INTO audit_lines (node_id, seq, line) SELECT $10::text, s, l FROM unnest($11::bigint[], $12::text[]) AS a (s, l)`;
/** This node's audit files' keyed chain head, in the transaction of each group that moves money. */
const STORE_HEAD = `INSERT INTO audit_heads (node_id, line_number, chain_hash, mac) VALUES ($1, $2, $3, $4)
  ON CONFLICT (node_id) DO UPDATE SET line_number = excluded.line_number, chain_hash = excluded.chain_hash,
  mac = excluded.mac`;

function toAccount(row: AccountRow): Account {
  return {
    id: Number(row.id),
    username: row.username,
    passwordHash: row.password_hash,
    balanceCents: Number(row.balance_cents),
    failedLogins: row.failed_logins,
    lockedUntil: row.locked_until === null ? null : Number(row.locked_until),
  };
}

/** A group whose COMMIT returned: its audit lines' sync, and how to answer its members once that is done. */
type CommittedGroup = { durable: Promise<void>; answer: () => void };

/** A PostgreSQL error code: five digits or upper-case letters (a Node socket error's code is longer). */
const SQLSTATE = /^[0-9A-Z]{5}$/;

function errorCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : undefined;
}

function batch(): EventBatch {
  let settle: (error?: unknown) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    settle = (error?: unknown) => (error === undefined ? resolve() : reject(error));
  });
  // Nobody may be waiting (a fire-and-forget record): never an unhandled rejection.
  done.catch(() => undefined);
  return { events: [], done, settle };
}

export class PostgresLedger implements Ledger {
  /** Takes this node's audit events; the bank writes through it. */
  readonly audit: AuditSink;
  private queue: Item[] = [];
  private pendingEvents = batch();
  /** The group between BEGIN and COMMIT, if any: one at a time per node. */
  private inFlight: Promise<void> | null = null;
  /** Resolves once every group started so far has committed and synced its lines, or failed. */
  private settled: Promise<void> = Promise.resolve();
  private scheduled = false;
  /** This node's chain head as last committed; null when it must be read again. */
  private chain: ChainPosition | null = null;
  private readonly auditKeys: AuditKeys;
  /**
   * The key period (audit/chain.ts) this node seals with: new at every start
   * and after every group that did not commit, whose line numbers are sealed
   * again, so no subkey ever meets one nonce twice.
   */
  private logId: Buffer;
  private groups = 0;
  private retries = 0;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly options: PostgresLedgerOptions,
  ) {
    this.auditKeys = new AuditKeys(options.auditKey);
    this.logId = (options.random ?? secureRandom)(LOG_ID_BYTES);
    this.audit = {
      write: (event) => {
        if (this.closed) throw new Error('ledger is closed');
        this.pendingEvents.events.push(event);
        this.schedule();
      },
      flush: () => {
        if (this.pendingEvents.events.length > 0) return this.pendingEvents.done;
        return this.settled;
      },
    };
  }

  /** Connects, brings the schema up to date (refusing a newer one), and returns the ledger. */
  static async open(options: PostgresLedgerOptions): Promise<PostgresLedger> {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 6,
      connectionTimeoutMillis: 5_000,
      // Fail fast so the group can retry on a fresh connection (and the ATM on another node).
      query_timeout: 10_000,
    });
    pool.on('error', (error) => options.onIdleError?.(error));
    try {
      await migrate(pool);
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
    return new PostgresLedger(pool, options);
  }

  get groupStats(): { groups: number; retries: number } {
    return { groups: this.groups, retries: this.retries };
  }

  async createAccount(username: string, passwordHash: string, at: string): Promise<Account | null> {
    const result = await this.pool.query<AccountRow>(
      `INSERT INTO accounts (username, password_hash, created_at) VALUES ($1, $2, $3)
       ON CONFLICT (username) DO NOTHING RETURNING *`,
      [username, passwordHash, at],
    );
    const row = result.rows[0];
    return row ? toAccount(row) : null;
  }

  async findAccount(username: string): Promise<Account | null> {
    const result = await this.pool.query<AccountRow>('SELECT * FROM accounts WHERE username = $1', [username]);
    const row = result.rows[0];
    return row ? toAccount(row) : null;
  }

  /** One UPDATE ... RETURNING on the shared row: attempts on every node add up to one lockout. */
  async reserveLoginAttempt(accountId: number, nowMs: number, budget: CheckBudget): Promise<LoginAttempt> {
    const reserved = await this.pool.query<{
      failed_logins: number;
      login_window_ends_at: string;
      locked_until: string | null;
    }>(RESERVE_ATTEMPT, [accountId, nowMs, budget.beforeLock, budget.perWindow, nowMs + budget.windowMs]);
    const row = reserved.rows[0];
    if (!row) return { status: 'over_budget' };
    return {
      status: 'reserved',
      attempt: row.failed_logins,
      windowEndsAt: Number(row.login_window_ends_at),
      lockedUntil: row.locked_until === null ? null : Number(row.locked_until),
    };
  }

  async releaseLoginAttempt(accountId: number, windowEndsAt: number): Promise<void> {
    await this.pool.query(RELEASE_ATTEMPT, [accountId, windowEndsAt]);
  }

  async lockAccount(accountId: number, lockUntilMs: number): Promise<void> {
    await this.pool.query(LOCK_ACCOUNT, [accountId, lockUntilMs]);
  }

  /** Reads the previous login under the row lock, so two logins at once each see the one before. */
  async recordLoginSuccess(accountId: number, login: LoginRecord): Promise<LoginRecord | null> {
    return this.inTransaction(async (client) => {
      const previous = await client.query<{ last_login_at: string | null; last_login_atm: number | null }>(
        'SELECT last_login_at, last_login_atm FROM accounts WHERE id = $1 FOR UPDATE',
        [accountId],
      );
      await client.query('UPDATE accounts SET last_login_at = $1, last_login_atm = $2 WHERE id = $3', [
        login.at,
        login.atmId,
        accountId,
      ]);
      const row = previous.rows[0];
      return row?.last_login_at ? { at: row.last_login_at, atmId: row.last_login_atm } : null;
    });
  }

  async setPasswordHash(accountId: number, passwordHash: string): Promise<void> {
    await this.pool.query('UPDATE accounts SET password_hash = $1 WHERE id = $2', [passwordHash, accountId]);
  }

  applyMoney(request: MoneyRequest, rule: MoneyRule, audit: AuditLine<MoneyDecision>): Promise<MoneyOutcome> {
    return new Promise((resolve, reject) => {
      this.enqueue({ type: 'money', request, rule, audit, resolve, reject });
    });
  }

  /** Read inside the next group's transaction, so its audit line commits with the group's. */
  balance(accountId: number, audit?: AuditLine<number>): Promise<number> {
    return new Promise((resolve, reject) => {
      this.enqueue({ type: 'balance', accountId, audit, resolve, reject });
    });
  }

  async statement(accountId: number, limit: number, offset = 0): Promise<StatementEntry[]> {
    const result = await this.pool.query<{
      created_at: string;
      kind: MoneyKind;
      amount_cents: string;
      balance_after_cents: string;
    }>(
      `SELECT created_at, kind, amount_cents, balance_after_cents FROM journal
       WHERE account_id = $1 AND status = 'applied' ORDER BY id DESC LIMIT $2 OFFSET $3`,
      [accountId, limit, offset],
    );
    return result.rows.map((row) => ({
      at: row.created_at,
      kind: row.kind,
      amountCents: Number(row.amount_cents),
      balanceAfterCents: Number(row.balance_after_cents),
    }));
  }

  /**
   * A transaction that takes a transaction id and commits: PostgreSQL must
   * write and flush its commit record, so this fails on a read-only or
   * recovering server, a full disk or a lost connection (the health check).
   */
  async probe(): Promise<void> {
    await this.inTransaction(async (client) => {
      await client.query('SELECT txid_current()');
    });
  }

  /**
   * This node's head (one row per node in `audit_heads`) and, only when it
   * has none, how many journal rows this node wrote: a node that moved money
   * must have a head. Rows from before migration 005 name no node.
   */
  async auditHead(): Promise<{ head: KeyedAuditHead | null; journalRows: number }> {
    const found = await this.pool.query<{ line_number: string; chain_hash: Buffer; mac: Buffer }>(
      'SELECT line_number, chain_hash, mac FROM audit_heads WHERE node_id = $1',
      [this.options.nodeId],
    );
    const row = found.rows[0];
    if (row) {
      return { head: { lineNumber: Number(row.line_number), chainHash: row.chain_hash, mac: row.mac }, journalRows: 0 };
    }
    const counted = await this.pool.query<{ rows: string }>('SELECT count(*) AS rows FROM journal WHERE node_id = $1', [
      this.options.nodeId,
    ]);
    return { head: null, journalRows: Number(counted.rows[0]?.rows ?? 0) };
  }

  async close(): Promise<void> {
    // Everything already asked for still commits.
    while (this.inFlight || this.scheduled || this.queue.length > 0 || this.pendingEvents.events.length > 0) {
      if (!this.inFlight && !this.scheduled) this.schedule();
      await (this.inFlight ?? new Promise((resolve) => setImmediate(resolve))).catch(() => undefined);
    }
    await this.settled;
    this.closed = true;
    await this.pool.end();
  }

  private enqueue(item: Item): void {
    if (this.closed) {
      item.reject(new Error('ledger is closed'));
      return;
    }
    this.queue.push(item);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    // After the event loop has read every ready socket, so they all join this group.
    setImmediate(() => {
      this.scheduled = false;
      this.startGroup();
    });
  }

  private startGroup(): void {
    const items = this.queue;
    const events = this.pendingEvents;
    this.queue = [];
    this.pendingEvents = batch();
    if (items.length === 0 && events.events.length === 0) {
      events.settle();
      return;
    }
    this.groups += 1;
    const committed = this.commitWithRetries(items, events.events);
    // Settled once the group's lines are on disk too, or it failed; never rejects.
    const settled = committed
      .then(async ({ durable, answer }) => {
        await durable;
        // Groups of audit events alone settle no request: not counted, as SQLite has none.
        if (items.length > 0) this.options.committedGroup?.(items.length);
        events.settle();
        answer();
      })
      .catch((error: unknown) => {
        events.settle(error);
        for (const item of items) item.reject(error);
      });
    // Earlier groups may still be syncing their lines: `settled` covers them all.
    this.settled = Promise.all([this.settled, settled]).then(() => undefined);
    // The next group may start once this one's COMMIT returned (or failed), while
    // the audit files still sync: their members are answered only after that.
    this.inFlight = committed
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        this.inFlight = null;
        if (this.queue.length > 0 || this.pendingEvents.events.length > 0) this.schedule();
      });
  }

  /**
   * Commits the group, retrying what PostgreSQL says may be retried. Returns
   * once COMMIT did, with the sync of the group's audit lines under way
   * (`durable`) and how to answer its members once it is done.
   */
  private async commitWithRetries(items: Item[], events: AuditEvent[]): Promise<CommittedGroup> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.commitOnce(items, events);
      } catch (error) {
        if (!RETRYABLE.has(errorCode(error) ?? '') || attempt >= MAX_ATTEMPTS) throw error;
        this.retries += 1;
        // Back off a little, at random, so two nodes that collided do not collide again.
        await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20 * attempt));
      }
    }
  }

  private async commitOnce(items: Item[], given: AuditEvent[]): Promise<CommittedGroup> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    let commitSent = false;
    try {
      await client.query('BEGIN');
      try {
        const decided = await this.decideGroup(client, items, given);
        // The node's files get the lines just before COMMIT: a failed write rolls the group back.
        const head = this.options.audited.beforeCommit(decided.events);
        // A group that moves money also stores where the files now stand, so a node whose
        // files were later cut behind it refuses to start (audit-continuity.ts).
        if (head && decided.movedMoney) {
          await client.query(STORE_HEAD, [this.options.nodeId, head.lineNumber, head.chainHash, head.mac]);
        }
        commitSent = true;
        await client.query('COMMIT');
        this.chain = decided.chain;
        // COMMIT returned, so the database has it (synchronous_commit); the files still sync,
        // and the group is no longer retried or rolled back whatever that sync says.
        return { durable: this.options.audited.durable(Promise.resolve()), answer: decided.answer };
      } catch (error) {
        this.chain = null;
        this.logId = (this.options.random ?? secureRandom)(LOG_ID_BYTES);
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        // An error PostgreSQL sent (a SQLSTATE) means the transaction is gone, COMMIT
        // included: the files must not keep its lines. A COMMIT whose answer never came
        // (the connection died) may have taken effect: its lines stay.
        const refused = !commitSent || SQLSTATE.test(errorCode(error) ?? '');
        this.options.audited.afterRollback(refused ? 'rolled-back' : 'unknown');
        throw error;
      }
    } finally {
      // A connection whose rollback failed is dropped, not handed to the next group.
      client.release(broken);
    }
  }

  /**
   * Inside the group's transaction: locks the accounts, decides every member
   * against the running balances (a later member sees an earlier one's
   * movement), seals the audit lines and writes everything in one statement.
   */
  private async decideGroup(
    client: pg.PoolClient,
    items: Item[],
    given: AuditEvent[],
  ): Promise<{ events: AuditEvent[]; chain: ChainPosition; movedMoney: boolean; answer: () => void }> {
    const accountIds = [
      ...new Set(items.map((item) => (item.type === 'money' ? item.request.accountId : item.accountId))),
    ];
    const locked = await client.query<{ id: string; balance_cents: string }>(LOCK_ACCOUNTS, [accountIds]);
    const balances = new Map(locked.rows.map((row) => [Number(row.id), Number(row.balance_cents)]));
    const moneyItems = items.flatMap((item) => (item.type === 'money' ? [item] : []));
    const previous = new Map<string, JournalRow>();
    if (moneyItems.length > 0) {
      const found = await client.query<JournalRow>(FIND_TXS, [
        [...new Set(moneyItems.map((item) => item.request.accountId))],
        [...new Set(moneyItems.map((item) => item.request.txId))],
      ]);
      for (const row of found.rows) previous.set(`${row.account_id}:${row.tx_id}`, row);
    }

    const journal: Array<[number, string, MoneyKind, number, string, number, string]> = [];
    const answers: Array<() => void> = [];
    const staged = [...given];
    for (const item of items) {
      if (item.type === 'balance') {
        const balance = balances.get(item.accountId);
        // An unknown account fails its own inquiry, not the whole group.
        if (balance === undefined) {
          answers.push(() => item.reject(new Error('unknown account')));
          continue;
        }
        if (item.audit) staged.push(item.audit(balance));
        answers.push(() => item.resolve(balance));
        continue;
      }
      const { request } = item;
      const key = `${request.accountId}:${request.txId}`;
      const seen = previous.get(key);
      if (seen) {
        const outcome: MoneyOutcome =
          seen.kind !== request.kind || Number(seen.amount_cents) !== request.amountCents
            ? { status: 'conflict' }
            : { status: seen.status, balanceCents: Number(seen.balance_after_cents), replayed: true };
        answers.push(() => item.resolve(outcome));
        continue;
      }
      const balance = balances.get(request.accountId);
      if (balance === undefined) {
        answers.push(() => item.reject(new Error('account vanished')));
        continue;
      }
      const outcome = item.rule(balance, request);
      balances.set(request.accountId, outcome.balanceCents);
      journal.push([
        request.accountId,
        request.txId,
        request.kind,
        request.amountCents,
        outcome.status,
        outcome.balanceCents,
        request.at,
      ]);
      previous.set(key, {
        account_id: String(request.accountId),
        tx_id: request.txId,
        kind: request.kind,
        amount_cents: String(request.amountCents),
        status: outcome.status,
        balance_after_cents: String(outcome.balanceCents),
      });
      staged.push(item.audit(outcome));
      answers.push(() => item.resolve(outcome));
    }

    let position = this.chain ?? (await this.readChainHead(client));
    const sequence: number[] = [];
    const lines: string[] = [];
    for (const event of staged) {
      const sealed = sealLine(this.auditKeys, this.logId, position, event, formatPlainLine(event));
      sequence.push(sealed.next.lineNumber);
      lines.push(sealed.line);
      position = sealed.next;
    }
    const changed = new Map<number, number>();
    for (const [accountId, , , , status, balanceAfter] of journal) {
      if (status === 'applied') changed.set(accountId, balanceAfter);
    }
    if (journal.length > 0 || lines.length > 0) {
      const column = <T>(index: number): T[] => journal.map((row) => row[index] as T);
      await client.query(WRITE_GROUP, [
        [...changed.keys()],
        [...changed.values()],
        column<number>(0),
        column<string>(1),
        column<string>(2),
        column<number>(3),
        column<string>(4),
        column<number>(5),
        column<string>(6),
        this.options.nodeId,
        sequence,
        lines,
      ]);
    }
    return {
      events: staged,
      chain: position,
      movedMoney: journal.length > 0,
      answer: () => answers.forEach((answer) => answer()),
    };
  }

  private async readChainHead(client: pg.PoolClient): Promise<ChainPosition> {
    const head = await client.query<{ seq: string; line: string }>(CHAIN_HEAD, [this.options.nodeId]);
    const row = head.rows[0];
    return row ? { lineNumber: Number(row.seq), previousHash: hashLine(row.line) } : CHAIN_START;
  }

  private async inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        });
        throw error;
      }
    } finally {
      client.release(broken);
    }
  }
}
