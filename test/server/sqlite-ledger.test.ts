/** What only the SQLite ledger does: one WAL fdatasync for a whole group. The shared suite is ledger.test.ts. */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { afterEach, describe, expect, it } from 'vitest';

import Database from 'better-sqlite3';

import { AuditedCommit } from '../../server/audited-commit.ts';
import { decideMoney } from '../../server/bank.ts';
import type { MoneyRequest } from '../../server/ledger.ts';
import { SqliteLedger, type SqliteLedgerOptions } from '../../server/sqlite-ledger.ts';
import { tempDir } from '../helpers.ts';
import { TestAuditLog, testLine } from './fixtures.ts';

const fdatasync = promisify(fs.fdatasync);
const at = '2026-01-01T00:00:00Z';

let ledger: SqliteLedger | null = null;
afterEach(async () => {
  await ledger?.close();
  ledger = null;
});

async function withAccount(options: SqliteLedgerOptions = {}): Promise<{ ledger: SqliteLedger; accountId: number }> {
  ledger = new SqliteLedger(path.join(tempDir(), 'ledger.db'), new AuditedCommit(new TestAuditLog()), options);
  const account = await ledger.createAccount('grace', 'hash', at);
  if (!account) throw new Error('no account');
  return { ledger, accountId: account.id };
}

function deposit(
  accountId: number,
  txId: string,
  amountCents = 100,
): [MoneyRequest, typeof decideMoney, () => ReturnType<typeof testLine>] {
  return [{ accountId, txId, kind: 'deposit', amountCents, at }, decideMoney, () => testLine('deposit', 'ok')];
}

describe('SqliteLedger group commit', () => {
  it('commits many concurrent movements with far fewer WAL syncs than movements', async () => {
    const { ledger, accountId } = await withAccount();
    const before = ledger.groupStats.walSyncs;
    await Promise.all(Array.from({ length: 200 }, (_, i) => ledger.applyMoney(...deposit(accountId, `tx-${i}-group`))));
    expect(await ledger.balance(accountId)).toBe(20_000);
    expect(ledger.groupStats.walSyncs - before).toBeLessThanOrEqual(2);
  });

  it('makes a group of reads wait for the WAL sync of commits it may have seen', async () => {
    // A WAL sync that stays open until the test lets it finish.
    let hold = false;
    let syncing: (() => void) | null = null;
    const syncWal = (fd: number): Promise<void> =>
      hold ? new Promise((resolve) => (syncing = () => void fdatasync(fd).then(resolve))) : fdatasync(fd);
    const { ledger, accountId } = await withAccount({ syncWal });
    hold = true;
    const deposited = ledger.applyMoney(...deposit(accountId, 'tx-held'));
    await expect.poll(() => syncing).not.toBeNull();

    let answered = false;
    const groups = ledger.groupStats.groups;
    const read = ledger.balance(accountId).then((cents) => ((answered = true), cents));
    try {
      // The read's group has run and anything it resolved has settled; the deposit's sync is still open.
      await expect.poll(() => ledger.groupStats.groups).toBe(groups + 1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(answered).toBe(false);
    } finally {
      hold = false;
      syncing!();
    }
    expect(await read).toBe(100);
    expect(await deposited).toMatchObject({ status: 'applied', balanceCents: 100 });
  });
});

describe('SqliteLedger on a database made before last logins were kept', () => {
  it('adds the last-login columns on open, keeping the accounts, and starts their history empty', async () => {
    const file = path.join(tempDir(), 'ledger.db');
    const old = new Database(file);
    old.exec(`CREATE TABLE accounts (
      id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE COLLATE NOCASE, password_hash TEXT NOT NULL,
      balance_cents INTEGER NOT NULL DEFAULT 0, failed_logins INTEGER NOT NULL DEFAULT 0,
      locked_until INTEGER, created_at TEXT NOT NULL) STRICT`);
    old
      .prepare('INSERT INTO accounts (username, password_hash, balance_cents, created_at) VALUES (?, ?, ?, ?)')
      .run('grace', 'hash', 1_500, at);
    old.close();
    ledger = new SqliteLedger(file, new AuditedCommit(new TestAuditLog()));
    const account = await ledger.findAccount('grace');
    expect(account).toMatchObject({ balanceCents: 1_500 });
    const login = { at: '2026-01-02T09:30:00.000Z', atmId: 3 };
    expect(await ledger.recordLoginSuccess(account?.id ?? 0, login)).toBeNull();
    expect(await ledger.recordLoginSuccess(account?.id ?? 0, { at, atmId: 1 })).toEqual(login);
  });
});
