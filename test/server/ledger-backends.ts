/**
 * The two ledger backends behind one test fixture, so the ledger suite runs
 * the same tests against both (test/server/ledger.test.ts). The PostgreSQL
 * one needs TEST_POSTGRES_URL; each opened ledger gets a database of its own
 * unless it is asked to share one (several nodes on one ledger).
 */
import path from 'node:path';

import Database from 'better-sqlite3';

import { AuditedCommit } from '../../server/audited-commit.ts';
import type { Ledger } from '../../server/ledger.ts';
import { PostgresLedger } from '../../server/postgres-ledger.ts';
import { SqliteLedger } from '../../server/sqlite-ledger.ts';
import { tempDir } from '../helpers.ts';
import { SKIP_POSTGRES_REASON, createTestDatabase, queryRows } from '../postgres.ts';
import { TestAuditLog } from './fixtures.ts';

export const AUDIT_KEY = Buffer.alloc(32, 7);

export type OpenedLedger = {
  ledger: Ledger & { readonly groupStats: { groups: number } };
  /** Transaction ids in the journal, oldest first. */
  journalTxIds(): Promise<string[]>;
  /** Sets a balance behind the ledger's back (to prove the schema refuses it). */
  forceBalance(accountId: number, cents: number): Promise<void>;
  close(): Promise<void>;
};

export type Backend = {
  name: 'sqlite' | 'postgres';
  /** Why this backend's tests are skipped, or '' when they run. */
  skip: string;
  open(log?: TestAuditLog): Promise<OpenedLedger>;
};

const sqlite: Backend = {
  name: 'sqlite',
  skip: '',
  async open(log = new TestAuditLog()) {
    const file = path.join(tempDir(), 'ledger.db');
    const ledger = new SqliteLedger(file, new AuditedCommit(log));
    const read = <T>(work: (db: Database.Database) => T): T => {
      const db = new Database(file);
      try {
        return work(db);
      } finally {
        db.close();
      }
    };
    return {
      ledger,
      journalTxIds: async () =>
        read((db) => db.prepare<[], { tx_id: string }>('SELECT tx_id FROM journal ORDER BY id').all()).map(
          (row) => row.tx_id,
        ),
      forceBalance: async (accountId, cents) =>
        void read((db) => db.prepare('UPDATE accounts SET balance_cents = ? WHERE id = ?').run(cents, accountId)),
      close: () => ledger.close(),
    };
  },
};

export async function openPostgresLedger(
  url: string,
  options: { nodeId?: string; log?: TestAuditLog } = {},
): Promise<PostgresLedger> {
  return PostgresLedger.open({
    url,
    nodeId: options.nodeId ?? 'node-a',
    auditKey: AUDIT_KEY,
    audited: new AuditedCommit(options.log ?? new TestAuditLog()),
  });
}

const postgres: Backend = {
  name: 'postgres',
  skip: SKIP_POSTGRES_REASON,
  async open(log = new TestAuditLog()) {
    const database = await createTestDatabase();
    const ledger = await openPostgresLedger(database.url, { log });
    return {
      ledger,
      journalTxIds: async () =>
        (await queryRows<{ tx_id: string }>(database.url, 'SELECT tx_id FROM journal ORDER BY id')).map(
          (row) => row.tx_id,
        ),
      forceBalance: async (accountId, cents) =>
        void (await queryRows(database.url, 'UPDATE accounts SET balance_cents = $1 WHERE id = $2', [
          cents,
          accountId,
        ])),
      close: async () => {
        await ledger.close();
        await database.drop();
      },
    };
  },
};

export const BACKENDS: Backend[] = [sqlite, postgres];
