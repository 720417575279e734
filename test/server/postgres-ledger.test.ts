/**
 * What only the PostgreSQL ledger does: versioned migrations, each node's
 * audit chain committed with the money, and several nodes on one database.
 * (The shared suite runs against it in ledger.test.ts.)
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';

import { AuditKeys, CHAIN_START, openLine } from '../../audit/chain.ts';
import type { AuditEvent } from '../../audit/event.ts';
import { decideMoney } from '../../server/bank.ts';
import type { MoneyRequest } from '../../server/ledger.ts';
import { loadMigrations, migrate } from '../../server/postgres-migrations.ts';
import type { PostgresLedger } from '../../server/postgres-ledger.ts';
import { SKIP_POSTGRES_REASON, createTestDatabase, queryRows, type TestDatabase } from '../postgres.ts';
import { TestAuditLog } from './fixtures.ts';
import { AUDIT_KEY, openPostgresLedger } from './ledger-backends.ts';

const at = '2026-01-01T00:00:00Z';

function event(outcome: string): AuditEvent {
  return { at, atm: 1, user: 'grace', action: 'deposit', amountCents: 100, outcome };
}

/** Reads a node's chain from the database and opens every line, failing on the first bad one. */
async function chainEvents(url: string, nodeId: string): Promise<AuditEvent[]> {
  const rows = await queryRows<{ seq: string; line: string }>(
    url,
    'SELECT seq, line FROM audit_lines WHERE node_id = $1 ORDER BY seq',
    [nodeId],
  );
  const keys = new AuditKeys(AUDIT_KEY);
  let position = CHAIN_START;
  return rows.map((row) => {
    const opened = openLine(keys, position, row.line);
    if (!opened.ok) throw new Error(`chain ${nodeId} broken at ${row.seq}: ${opened.reason}`);
    position = opened.next;
    return opened.event;
  });
}

describe.skipIf(SKIP_POSTGRES_REASON)('PostgresLedger', () => {
  let database: TestDatabase | null = null;
  const ledgers: PostgresLedger[] = [];
  afterEach(async () => {
    await Promise.all(ledgers.splice(0).map((ledger) => ledger.close()));
    await database?.drop();
    database = null;
  });

  async function node(nodeId: string, log = new TestAuditLog()): Promise<PostgresLedger> {
    database ??= await createTestDatabase();
    const ledger = await openPostgresLedger(database.url, { nodeId, log });
    ledgers.push(ledger);
    return ledger;
  }

  it('applies every migration once, records its version, and refuses a schema newer than it knows', async () => {
    database = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: database.url });
    try {
      const newest = loadMigrations().length;
      // Two nodes starting at the same moment both come up on one schema.
      expect(await Promise.all([migrate(pool), migrate(pool)])).toEqual([newest, newest]);
      expect((await pool.query('SELECT version FROM schema_migrations ORDER BY version')).rows).toEqual(
        loadMigrations().map((migration) => ({ version: migration.version })),
      );
      await pool.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from-the-future')", [newest + 1]);
      await expect(migrate(pool)).rejects.toMatchObject({ name: 'SchemaError', code: 'ERR_SCHEMA_NEWER' });
      await expect(migrate(pool)).rejects.toThrow(/newer than this node knows/);
    } finally {
      await pool.end();
    }
  });

  it('upgrades a version-4 ledger in place: its old movements name no node, new ones name the node that applied them', async () => {
    database = await createTestDatabase();
    const pool = new pg.Pool({ connectionString: database.url });
    try {
      await migrate(pool, loadMigrations().slice(0, 4));
      await pool.query(`INSERT INTO accounts (username, password_hash, created_at) VALUES ('grace', 'hash', $1)`, [at]);
      await pool.query(
        `INSERT INTO journal (account_id, tx_id, kind, amount_cents, status, balance_after_cents, created_at)
         SELECT id, 'old-1', 'deposit', 100, 'applied', 100, $1 FROM accounts`,
        [at],
      );
    } finally {
      await pool.end();
    }
    const ledger = await node('node-a');
    // No node can vouch for a movement from before the heads existed, so none is refused for it.
    expect(await ledger.auditHead()).toEqual({ head: null, journalRows: 0 });
    const accountId = (await ledger.findAccount('grace'))?.id ?? 0;
    await ledger.applyMoney({ accountId, txId: 'new-1', kind: 'deposit', amountCents: 100, at }, decideMoney, () =>
      event('new-1'),
    );
    expect(await queryRows(database.url, 'SELECT tx_id, node_id FROM journal ORDER BY id')).toEqual([
      { tx_id: 'old-1', node_id: null },
      { tx_id: 'new-1', node_id: 'node-a' },
    ]);
    expect(await ledger.auditHead()).toEqual({ head: null, journalRows: 1 });
  });

  it('commits each group with its audit lines, chained per node, and neither without the other', async () => {
    const files = new TestAuditLog();
    const ledger = await node('node-a', files);
    const account = await ledger.createAccount('grace', 'hash', at);
    const accountId = account?.id ?? 0;
    const deposit = (txId: string) =>
      ledger.applyMoney({ accountId, txId, kind: 'deposit', amountCents: 100, at }, decideMoney, (decided) =>
        event(`${txId} ${decided.status}`),
      );
    ledger.audit.write(event('login'));
    await Promise.all([deposit('tx-1'), deposit('tx-2')]);
    files.failWith = new Error('no space left on device');
    await expect(deposit('tx-3')).rejects.toThrow(/no space/);
    files.failWith = null;
    await deposit('tx-4');
    await ledger.audit.flush();
    expect((await chainEvents(database!.url, 'node-a')).map((e) => e.outcome)).toEqual([
      'login',
      'tx-1 applied',
      'tx-2 applied',
      'tx-4 applied',
    ]);
    expect(await ledger.balance(accountId)).toBe(300);
  });

  it('takes back the audit file lines of a group whose COMMIT PostgreSQL refused', async () => {
    const files = new TestAuditLog();
    const ledger = await node('node-a', files);
    const accountId = (await ledger.createAccount('grace', 'hash', at))?.id ?? 0;
    // A deferred constraint is checked at COMMIT: the only way to make PostgreSQL refuse one on demand.
    await queryRows(
      database!.url,
      `CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN IF NEW.tx_id = 'tx-refused' THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NEW; END $$`,
    );
    await queryRows(
      database!.url,
      `CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON journal
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()`,
    );
    const deposit = (txId: string) =>
      ledger.applyMoney({ accountId, txId, kind: 'deposit', amountCents: 100, at }, decideMoney, () => event(txId));
    await deposit('tx-1');
    await expect(deposit('tx-refused')).rejects.toThrow(/refused at commit/);
    await deposit('tx-2');
    await ledger.audit.flush();
    expect(files.retracted).toBe(1);
    expect(files.events.map((e) => e.outcome)).toEqual(['tx-1', 'tx-2']);
    expect((await chainEvents(database!.url, 'node-a')).map((e) => e.outcome)).toEqual(['tx-1', 'tx-2']);
    expect(await ledger.balance(accountId)).toBe(200);
  });

  it('starts the next group once COMMIT returns, while the audit files still sync, and answers neither before its sync', async () => {
    const files = new TestAuditLog();
    const ledger = await node('node-a', files);
    const accountId = (await ledger.createAccount('grace', 'hash', at))?.id ?? 0;
    const answered: string[] = [];
    const deposit = (txId: string): Promise<void> =>
      ledger
        .applyMoney({ accountId, txId, kind: 'deposit', amountCents: 100, at }, decideMoney, () => event(txId))
        .then(() => void answered.push(txId));
    const committed = async (txId: string): Promise<void> => {
      for (let i = 0; i < 200; i += 1) {
        const rows = await queryRows(database!.url, 'SELECT 1 FROM journal WHERE tx_id = $1', [txId]);
        if (rows.length > 0) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error(`${txId} never committed`);
    };
    const release = files.holdFlushes();
    try {
      const first = deposit('tx-1');
      await committed('tx-1');
      // tx-1's lines are still syncing: the next group commits anyway.
      const second = deposit('tx-2');
      await committed('tx-2');
      let flushed = false;
      const flush = ledger.audit.flush().then(() => (flushed = true));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(answered).toEqual([]);
      expect(flushed).toBe(false);
      release();
      await Promise.all([first, second, flush]);
    } finally {
      release();
    }
    expect(answered).toEqual(['tx-1', 'tx-2']);
  });

  it('continues a node chain after a restart and keeps each node on its own chain', async () => {
    const first = await node('node-a');
    first.audit.write(event('one'));
    await first.audit.flush();
    await first.close();
    ledgers.splice(ledgers.indexOf(first), 1);
    const again = await node('node-a');
    const other = await node('node-b');
    again.audit.write(event('two'));
    other.audit.write(event('elsewhere'));
    await Promise.all([again.audit.flush(), other.audit.flush()]);
    expect((await chainEvents(database!.url, 'node-a')).map((e) => e.outcome)).toEqual(['one', 'two']);
    expect((await chainEvents(database!.url, 'node-b')).map((e) => e.outcome)).toEqual(['elsewhere']);
  });

  it('never lets two nodes racing 40 withdrawals take a balance below zero; ledger and audit agree', async () => {
    const [a, b] = [await node('node-a'), await node('node-b')];
    const account = await a.createAccount('grace', 'hash', at);
    const accountId = account?.id ?? 0;
    await a.applyMoney({ accountId, txId: 'fund', kind: 'deposit', amountCents: 2_500, at }, decideMoney, () =>
      event('fund'),
    );
    const withdraw = (ledger: PostgresLedger, i: number) => {
      const request: MoneyRequest = { accountId, txId: `w-${i}`, kind: 'withdraw', amountCents: 100, at };
      return ledger.applyMoney(request, decideMoney, (decided) => event(`w-${i} ${decided.status}`));
    };
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, i) => withdraw(i % 2 === 0 ? a : b, i)));
    const applied = outcomes.filter((outcome) => outcome.status === 'applied').length;
    expect(applied).toBe(25);
    expect(outcomes.filter((outcome) => outcome.status === 'insufficient_funds')).toHaveLength(15);
    expect(await a.balance(accountId)).toBe(0);
    const audited = [...(await chainEvents(database!.url, 'node-a')), ...(await chainEvents(database!.url, 'node-b'))];
    expect(audited.filter((e) => e.outcome.endsWith(' applied'))).toHaveLength(applied);
    const journal = await queryRows<{ n: string }>(
      database!.url,
      "SELECT count(*) AS n FROM journal WHERE kind = 'withdraw' AND status = 'applied'",
    );
    expect(Number(journal[0]?.n)).toBe(applied);
  });

  it('applies a transaction id sent to two nodes at once exactly once; the other answer is a replay', async () => {
    const [a, b] = [await node('node-a'), await node('node-b')];
    const account = await a.createAccount('grace', 'hash', at);
    const accountId = account?.id ?? 0;
    const request: MoneyRequest = { accountId, txId: 'sent-twice', kind: 'deposit', amountCents: 700, at };
    for (let round = 0; round < 5; round += 1) {
      const txId = `sent-twice-${round}`;
      const outcomes = await Promise.all([
        a.applyMoney({ ...request, txId }, decideMoney, () => event(txId)),
        b.applyMoney({ ...request, txId }, decideMoney, () => event(txId)),
      ]);
      expect(outcomes.map((outcome) => outcome.status === 'applied' && outcome.replayed).sort()).toEqual([false, true]);
    }
    expect(await b.balance(accountId)).toBe(3_500);
  });

  it('counts login attempts on every node in one shared counter, racing included', async () => {
    const [a, b] = [await node('node-a'), await node('node-b')];
    const account = await a.createAccount('grace', 'hash', at);
    const accountId = account?.id ?? 0;
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).reserveLoginAttempt(accountId, 100, { beforeLock: 5, perWindow: 10, windowMs: 60_000 }),
      ),
    );
    const reserved = outcomes.flatMap((outcome) => (outcome.status === 'reserved' ? [outcome.attempt] : []));
    expect(reserved.sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5]);
    expect(await b.findAccount('grace')).toMatchObject({ failedLogins: 5, lockedUntil: null });
  });
});
