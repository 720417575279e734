/**
 * A read-only look at the SQLite ledger for `npm run audit -- reconcile`:
 * every account's balance and every journal row, read in one transaction so
 * the two agree with each other even while the bank is running.
 */
import Database from 'better-sqlite3';

import type { LedgerSnapshot, LedgerMovement } from '../audit/reconcile.ts';

export function readSqliteLedgerSnapshot(file: string): LedgerSnapshot {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return db.transaction(() => ({
      accounts: db
        .prepare<[], { username: string; balanceCents: number }>(
          'SELECT username, balance_cents AS balanceCents FROM accounts ORDER BY id',
        )
        .all(),
      journal: db
        .prepare<[], LedgerMovement>(
          `SELECT a.username AS username, j.tx_id AS txId, j.kind AS kind, j.amount_cents AS amountCents,
                  j.status AS status
           FROM journal j JOIN accounts a ON a.id = j.account_id ORDER BY j.id`,
        )
        .all(),
    }))();
  } finally {
    db.close();
  }
}
