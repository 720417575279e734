/**
 * The ledger in embedded SQLite (better-sqlite3), WAL mode. The schema itself
 * forbids a negative balance; each movement updates the balance and appends
 * its journal row atomically.
 *
 * Group commit: money requests that arrive together are applied in one
 * SQLite transaction, committed with their audit lines as
 * `audited-commit.ts` says, and a single fdatasync of the WAL makes the
 * whole group durable before any of them is answered. SQLite runs with
 * `synchronous = NORMAL`
 * because we sync the WAL ourselves, once per group instead of once per
 * commit: an acknowledged movement survives `kill -9` and power loss, as
 * with `FULL`, at a fraction of the fsyncs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';

import Database from 'better-sqlite3';

import { MAX_BALANCE_CENTS } from '../protocol/money.ts';
import type { StatementEntry } from '../protocol/messages.ts';
import type { AuditEvent } from '../audit/event.ts';
import { GroupSync, timedSync } from '../runtime/group-sync.ts';
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

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id            INTEGER PRIMARY KEY,
  username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT    NOT NULL,
  balance_cents INTEGER NOT NULL DEFAULT 0 CHECK (balance_cents >= 0 AND balance_cents <= ${MAX_BALANCE_CENTS}),
  failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
  locked_until  INTEGER,
  created_at    TEXT    NOT NULL
) STRICT;

-- Every money request, applied or refused, keyed by the client's txId so a
-- retry is answered from here instead of being applied twice.
CREATE TABLE IF NOT EXISTS journal (
  id                  INTEGER PRIMARY KEY,
  account_id          INTEGER NOT NULL REFERENCES accounts (id),
  tx_id               TEXT    NOT NULL,
  kind                TEXT    NOT NULL CHECK (kind IN ('deposit', 'withdraw')),
  amount_cents        INTEGER NOT NULL CHECK (amount_cents > 0),
  status              TEXT    NOT NULL CHECK (status IN ('applied', 'insufficient_funds', 'balance_limit')),
  balance_after_cents INTEGER NOT NULL CHECK (balance_after_cents >= 0),
  created_at          TEXT    NOT NULL,
  UNIQUE (account_id, tx_id)
) STRICT;

CREATE INDEX IF NOT EXISTS journal_statement ON journal (account_id, status, id);

-- One row the health check rewrites: proof that a commit gets through and syncs.
CREATE TABLE IF NOT EXISTS health_probe (
  id        INTEGER PRIMARY KEY CHECK (id = 1),
  probed_at TEXT    NOT NULL
) STRICT;

-- The audit log's chain head as of the last group that moved money, written
-- in that group's transaction (see Ledger.auditHead). One row.
CREATE TABLE IF NOT EXISTS audit_head (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  line_number INTEGER NOT NULL CHECK (line_number >= 0),
  chain_hash  BLOB    NOT NULL,
  mac         BLOB    NOT NULL
) STRICT;
`;

/**
 * Columns added after the first release: a database made before them gets
 * them on open (ALTER TABLE ADD COLUMN, existing rows NULL), so an upgraded
 * bank keeps its data.
 */
const ADDED_COLUMNS: ReadonlyArray<{ table: string; column: string; definition: string }> = [
  // The previous successful login, shown to the customer at the next one.
  { table: 'accounts', column: 'last_login_at', definition: 'TEXT' },
  { table: 'accounts', column: 'last_login_atm', definition: 'INTEGER' },
  // When the lockout's current window of password checks closes (epoch ms).
  { table: 'accounts', column: 'login_window_ends_at', definition: 'INTEGER' },
];

function addMissingColumns(db: Database.Database): void {
  for (const { table, column, definition } of ADDED_COLUMNS) {
    const columns = db.pragma(`table_info(${table})`) as Array<{ name: string }>;
    if (!columns.some((existing) => existing.name === column)) {
      db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
    }
  }
}

type AccountRow = {
  id: number;
  username: string;
  password_hash: string;
  balance_cents: number;
  failed_logins: number;
  locked_until: number | null;
};

type JournalRow = {
  kind: MoneyKind;
  amount_cents: number;
  status: Exclude<MoneyOutcome['status'], 'conflict'>;
  balance_after_cents: number;
};

const fdatasync = promisify(fs.fdatasync);

/** What one member of a group did inside the group's transaction. */
type Done<T> = { value: T; wrote: boolean; event: AuditEvent | null };

/** One member of a group: its work inside the group's transaction, and how to answer it. */
type Pending = {
  run: () => Done<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
};

function toAccount(row: AccountRow): Account {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    balanceCents: row.balance_cents,
    failedLogins: row.failed_logins,
    lockedUntil: row.locked_until,
  };
}

function prepareStatements(db: Database.Database) {
  // The lockout's two statements are shared with the PostgreSQL ledger; `$name` becomes `@name` here.
  return {
    insertAccount: db.prepare<[string, string, string], AccountRow>(
      `INSERT INTO accounts (username, password_hash, created_at) VALUES (?, ?, ?)
       ON CONFLICT (username) DO NOTHING RETURNING *`,
    ),
    findAccount: db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE username = ?'),
    reserveAttempt: db.prepare<
      { id: number; now: number; beforeLock: number; perWindow: number; nextWindowEnd: number },
      { failed_logins: number; login_window_ends_at: number; locked_until: number | null }
    >(RESERVE_ATTEMPT_SQL.replace(/\$(\w+)/g, '@$1')),
    releaseAttempt: db.prepare<{ id: number; windowEndsAt: number }>(RELEASE_ATTEMPT_SQL.replace(/\$(\w+)/g, '@$1')),
    lockAccount: db.prepare<{ id: number; lockUntil: number }>(LOCK_ACCOUNT_SQL.replace(/\$(\w+)/g, '@$1')),
    lastLogin: db.prepare<[number], { last_login_at: string | null; last_login_atm: number | null }>(
      'SELECT last_login_at, last_login_atm FROM accounts WHERE id = ?',
    ),
    recordLogin: db.prepare<[string, number | null, number]>(
      'UPDATE accounts SET last_login_at = ?, last_login_atm = ? WHERE id = ?',
    ),
    setPasswordHash: db.prepare<[string, number]>('UPDATE accounts SET password_hash = ? WHERE id = ?'),
    balance: db.prepare<[number], { balance_cents: number }>('SELECT balance_cents FROM accounts WHERE id = ?'),
    findTx: db.prepare<[number, string], JournalRow>(
      'SELECT kind, amount_cents, status, balance_after_cents FROM journal WHERE account_id = ? AND tx_id = ?',
    ),
    setBalance: db.prepare<[number, number]>('UPDATE accounts SET balance_cents = ? WHERE id = ?'),
    insertJournal: db.prepare<[number, string, MoneyKind, number, string, number, string]>(
      `INSERT INTO journal (account_id, tx_id, kind, amount_cents, status, balance_after_cents, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    probe: db.prepare<[string]>(
      `INSERT INTO health_probe (id, probed_at) VALUES (1, ?)
       ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at`,
    ),
    storeAuditHead: db.prepare<[number, Buffer, Buffer]>(
      `INSERT INTO audit_head (id, line_number, chain_hash, mac) VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET line_number = excluded.line_number, chain_hash = excluded.chain_hash,
       mac = excluded.mac`,
    ),
    auditHead: db.prepare<[], { line_number: number; chain_hash: Buffer; mac: Buffer }>(
      'SELECT line_number, chain_hash, mac FROM audit_head WHERE id = 1',
    ),
    journalRows: db.prepare<[], { rows: number }>('SELECT COUNT(*) AS rows FROM journal'),
    statement: db.prepare<
      [number, number, number],
      { created_at: string; kind: MoneyKind; amount_cents: number; balance_after_cents: number }
    >(
      `SELECT created_at, kind, amount_cents, balance_after_cents FROM journal
       WHERE account_id = ? AND status = 'applied' ORDER BY id DESC LIMIT ? OFFSET ?`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Test seams: the WAL's fdatasync (a test can hold one open). */
export type SqliteLedgerOptions = {
  /** Test seam: the WAL's fdatasync (a test can hold one open). */
  syncWal?: (fd: number) => Promise<void>;
  /** How long each fdatasync of the WAL took, in seconds (for the fsync metric). */
  walSynced?: (seconds: number) => void;
  /** How many requests a committed group settled (for the group-size metric). */
  committedGroup?: (requests: number) => void;
};

export class SqliteLedger implements Ledger {
  private readonly db: Database.Database;
  private readonly statements: Statements;
  private queue: Pending[] = [];
  private batchScheduled = false;
  private walFd: number | null = null;
  private readonly wal: GroupSync;
  private groups = 0;
  private readonly committedGroup: ((requests: number) => void) | undefined;
  private readonly checkpointer: Worker;
  private readonly checkpointerExited: Promise<void>;

  constructor(
    private readonly file: string,
    private readonly audited: AuditedCommit,
    options: SqliteLedgerOptions = {},
  ) {
    const syncWal = options.syncWal ?? fdatasync;
    this.wal = new GroupSync(timedSync(() => syncWal(this.walDescriptor()), options.walSynced));
    this.committedGroup = options.committedGroup;
    this.db = new Database(file);
    fs.chmodSync(file, 0o600);
    this.db.pragma('journal_mode = WAL');
    // Durability comes from our own fdatasync of the WAL before answering (see above).
    this.db.pragma('synchronous = NORMAL');
    // Checkpoints run on their own thread (checkpoint-worker.mjs), never in a commit.
    this.db.pragma('wal_autocheckpoint = 0');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    addMissingColumns(this.db);
    this.statements = prepareStatements(this.db);
    this.checkpointer = new Worker(path.join(import.meta.dirname, 'checkpoint-worker.mjs'), {
      workerData: { file, intervalMs: 200 },
    });
    this.checkpointer.unref();
    this.checkpointerExited = new Promise((resolve) => this.checkpointer.once('exit', () => resolve()));
    // Should the thread die, checkpoint inline again rather than let the WAL grow without end.
    this.checkpointer.once('error', () => this.db.open && this.db.pragma('wal_autocheckpoint = 1000'));
  }

  async createAccount(username: string, passwordHash: string, at: string): Promise<Account | null> {
    const row = this.statements.insertAccount.get(username, passwordHash, at);
    if (!row) return null;
    await this.committed();
    return toAccount(row);
  }

  async findAccount(username: string): Promise<Account | null> {
    const row = this.statements.findAccount.get(username);
    return row ? toAccount(row) : null;
  }

  async reserveLoginAttempt(accountId: number, nowMs: number, budget: CheckBudget): Promise<LoginAttempt> {
    const row = this.statements.reserveAttempt.get({
      id: accountId,
      now: nowMs,
      beforeLock: budget.beforeLock,
      perWindow: budget.perWindow,
      nextWindowEnd: nowMs + budget.windowMs,
    });
    if (!row) return { status: 'over_budget' };
    // Durable before the check runs: a crash cannot hand back the attempt.
    await this.committed();
    return {
      status: 'reserved',
      attempt: row.failed_logins,
      windowEndsAt: row.login_window_ends_at,
      lockedUntil: row.locked_until,
    };
  }

  async releaseLoginAttempt(accountId: number, windowEndsAt: number): Promise<void> {
    if (this.statements.releaseAttempt.run({ id: accountId, windowEndsAt }).changes > 0) await this.committed();
  }

  async lockAccount(accountId: number, lockUntilMs: number): Promise<void> {
    this.statements.lockAccount.run({ id: accountId, lockUntil: lockUntilMs });
    await this.committed();
  }

  async recordLoginSuccess(accountId: number, login: LoginRecord): Promise<LoginRecord | null> {
    const previous = this.db
      .transaction(() => {
        const row = this.statements.lastLogin.get(accountId);
        this.statements.recordLogin.run(login.at, login.atmId, accountId);
        return row?.last_login_at ? { at: row.last_login_at, atmId: row.last_login_atm } : null;
      })
      .immediate();
    await this.committed();
    return previous;
  }

  async setPasswordHash(accountId: number, passwordHash: string): Promise<void> {
    this.statements.setPasswordHash.run(passwordHash, accountId);
    await this.committed();
  }

  applyMoney(request: MoneyRequest, rule: MoneyRule, audit: AuditLine<MoneyDecision>): Promise<MoneyOutcome> {
    return this.joinGroup(() => this.decideAndRecord(request, rule, audit));
  }

  /**
   * Reads the balance inside the next group, so the inquiry's audit line is
   * written and synced with the group's rather than costing writes and syncs
   * of its own.
   */
  async balance(accountId: number, audit?: AuditLine<number>): Promise<number> {
    const balance = await this.joinGroup(() => {
      // An unknown account fails this inquiry alone, not the whole group.
      const row = this.statements.balance.get(accountId);
      if (!row) return { value: null, wrote: false, event: null };
      return { value: row.balance_cents, wrote: false, event: audit ? audit(row.balance_cents) : null };
    });
    if (balance === null) throw new Error('unknown account');
    return balance;
  }

  /**
   * Commits a write through the group commit and waits for its WAL sync, as
   * a deposit would: resolves only if the ledger can commit right now.
   */
  probe(): Promise<void> {
    return this.joinGroup(() => {
      this.statements.probe.run(new Date().toISOString());
      return { value: undefined, wrote: true, event: null };
    });
  }

  private joinGroup<T>(run: () => Done<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: (value) => resolve(value as T), reject });
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        // setImmediate runs after the event loop has read every socket that
        // is ready, so all requests that arrived meanwhile join this group.
        setImmediate(() => this.runBatch());
      }
    });
  }

  /** How well group commit is grouping: money groups committed and WAL syncs made. */
  get groupStats(): { groups: number; walSyncs: number } {
    return { groups: this.groups, walSyncs: this.wal.syncCount };
  }

  private runBatch(): void {
    this.batchScheduled = false;
    const batch = this.queue;
    this.queue = [];
    this.groups += 1;
    let settled: Array<{ item: Pending; value: unknown }>;
    let wrote = false;
    try {
      settled = this.db
        .transaction(() => {
          const events: AuditEvent[] = [];
          const done = batch.map((item) => {
            const result = item.run();
            wrote ||= result.wrote;
            if (result.event) events.push(result.event);
            return { item, value: result.value };
          });
          // Throws if the lines cannot be written: the whole group rolls back. The
          // audit chain head after them is stored in the same transaction.
          const head = this.audited.beforeCommit(events);
          if (head && wrote) this.statements.storeAuditHead.run(head.lineNumber, head.chainHash, head.mac);
          return done;
        })
        .immediate();
    } catch (error) {
      this.audited.afterRollback();
      for (const item of batch) item.reject(error);
      return;
    }
    // A group of reads still waits for earlier commits it may have seen:
    // never report a balance that a crash could still take back.
    const durable = this.audited.durable(wrote ? this.committed() : this.wal.all());
    this.committedGroup?.(batch.length);
    durable.then(
      () => settled.forEach(({ item, value }) => item.resolve(value)),
      (error: unknown) => batch.forEach((item) => item.reject(error)),
    );
  }

  private decideAndRecord(request: MoneyRequest, rule: MoneyRule, audit: AuditLine<MoneyDecision>): Done<MoneyOutcome> {
    const previous = this.statements.findTx.get(request.accountId, request.txId);
    if (previous) {
      if (previous.kind !== request.kind || previous.amount_cents !== request.amountCents)
        return { value: { status: 'conflict' }, wrote: false, event: null };
      return {
        value: { status: previous.status, balanceCents: previous.balance_after_cents, replayed: true },
        wrote: false,
        event: null,
      };
    }
    const current = this.statements.balance.get(request.accountId);
    if (!current) throw new Error('account vanished');
    const outcome = rule(current.balance_cents, request);
    if (outcome.status === 'applied') this.statements.setBalance.run(outcome.balanceCents, request.accountId);
    this.statements.insertJournal.run(
      request.accountId,
      request.txId,
      request.kind,
      request.amountCents,
      outcome.status,
      outcome.balanceCents,
      request.at,
    );
    return { value: outcome, wrote: true, event: audit(outcome) };
  }

  /** Resolves once every commit made so far is on disk (one WAL fdatasync serves many commits). */
  private committed(): Promise<void> {
    return this.wal.durableThrough(this.wal.wrote());
  }

  private walDescriptor(): number {
    this.walFd ??= fs.openSync(`${this.file}-wal`, 'r+');
    return this.walFd;
  }

  async statement(accountId: number, limit: number, offset = 0): Promise<StatementEntry[]> {
    const entries = this.statements.statement.all(accountId, limit, offset).map((row) => ({
      at: row.created_at,
      kind: row.kind,
      amountCents: row.amount_cents,
      balanceAfterCents: row.balance_after_cents,
    }));
    await this.wal.all();
    return entries;
  }

  async auditHead(): Promise<{ head: KeyedAuditHead | null; journalRows: number }> {
    const row = this.statements.auditHead.get();
    const journalRows = this.statements.journalRows.get()?.rows ?? 0;
    const head = row ? { lineNumber: row.line_number, chainHash: row.chain_hash, mac: row.mac } : null;
    return { head, journalRows };
  }

  async close(): Promise<void> {
    await this.wal.all();
    // Keep the process alive until the thread has closed its connection.
    this.checkpointer.ref();
    this.checkpointer.postMessage('stop');
    await this.checkpointerExited;
    if (this.walFd !== null) fs.closeSync(this.walFd);
    this.walFd = null;
    if (this.db.open) {
      // Fold the WAL into the database file so a clean stop leaves one file.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      this.db.close();
    }
  }
}
