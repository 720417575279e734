import path from 'node:path';

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

import { SqliteLedger } from '../../server/sqlite-ledger.ts';
import { tempDir } from '../helpers.ts';

let ledger: SqliteLedger | null = null;
afterEach(async () => {
  await ledger?.close();
  ledger = null;
});

async function withAccount(): Promise<{ ledger: SqliteLedger; accountId: number; file: string }> {
  const file = path.join(tempDir(), 'ledger.db');
  ledger = new SqliteLedger(file);
  const account = await ledger.createAccount('grace', 'hash', '2026-01-01T00:00:00Z');
  if (!account) throw new Error('no account');
  return { ledger, accountId: account.id, file };
}

const at = '2026-01-01T00:00:00Z';
const ignore = (): void => {};

describe('SqliteLedger group commit', () => {
  it('commits many concurrent movements with far fewer WAL syncs than movements', async () => {
    const { ledger, accountId } = await withAccount();
    const before = ledger.groupStats.walSyncs;
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ledger.applyMoney({ accountId, txId: `tx-${i}-group`, kind: 'deposit', amountCents: 100, at }, ignore),
      ),
    );
    expect(outcomes.every((outcome) => outcome.status === 'applied')).toBe(true);
    expect(await ledger.balance(accountId)).toBe(20_000);
    expect(ledger.groupStats.walSyncs - before).toBeLessThanOrEqual(2);
  });

  it('commits none of a group when its audit lines cannot be written, and answers every member with the failure', async () => {
    const file = path.join(tempDir(), 'ledger.db');
    let diskFull = false;
    let rolledBack = 0;
    ledger = new SqliteLedger(file, {
      beforeCommit: () => {
        if (diskFull) throw new Error('no space left on device');
      },
      afterRollback: () => (rolledBack += 1),
    });
    const account = await ledger.createAccount('grace', 'hash', at);
    const accountId = account?.id ?? 0;
    const move = (n: number) =>
      ledger!.applyMoney({ accountId, txId: `tx-group-${n}`, kind: 'deposit', amountCents: n * 100, at }, ignore);
    await move(1);
    diskFull = true;
    const results = await Promise.allSettled([move(2), move(3), move(4)]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(rolledBack).toBe(1);
    diskFull = false;
    expect(await ledger.balance(accountId)).toBe(100);
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT tx_id FROM journal ORDER BY id').all()).toEqual([{ tx_id: 'tx-group-1' }]);
    db.close();
    // The same transaction ids go through once the disk has room again.
    await Promise.all([move(2), move(3), move(4)]);
    expect(await ledger.balance(accountId)).toBe(1_000);
  });

  it('reads balances inside the group, running their hooks before the group commits', async () => {
    const file = path.join(tempDir(), 'ledger.db');
    const steps: string[] = [];
    ledger = new SqliteLedger(file, { beforeCommit: () => steps.push('commit') });
    const account = await ledger.createAccount('grace', 'hash', at);
    const accountId = account?.id ?? 0;
    const groupsBefore = ledger.groupStats.groups;
    const [deposit, balance, unknown] = await Promise.allSettled([
      ledger.applyMoney({ accountId, txId: 'tx-with-reads', kind: 'deposit', amountCents: 250, at }, () =>
        steps.push('deposit'),
      ),
      ledger.balance(accountId, (cents) => steps.push(`balance ${cents}`)),
      ledger.balance(accountId + 1000, () => steps.push('never')),
    ]);
    // One group: the read sees the deposit before it, and its hook runs inside the transaction.
    expect(ledger.groupStats.groups - groupsBefore).toBe(1);
    expect(steps).toEqual(['deposit', 'balance 250', 'commit']);
    expect(deposit.status).toBe('fulfilled');
    expect(balance).toEqual({ status: 'fulfilled', value: 250 });
    // An unknown account fails its own inquiry, not the group around it.
    expect(unknown.status).toBe('rejected');
  });

  it('makes a group of reads wait for the WAL sync of commits they may have seen', async () => {
    const { ledger, accountId } = await withAccount();
    const syncsBefore = ledger.groupStats.walSyncs;
    await ledger.balance(accountId);
    // Nothing was written since the account was created and synced: no new sync.
    expect(ledger.groupStats.walSyncs).toBe(syncsBefore);
  });

  it('answers a repeated transaction id inside the same group as a replay', async () => {
    const { ledger, accountId } = await withAccount();
    const request = { accountId, txId: 'tx-twice-same-group', kind: 'withdraw' as const, amountCents: 100, at };
    await ledger.applyMoney({ ...request, txId: 'tx-seed-deposit', kind: 'deposit' }, ignore);
    const [first, second] = await Promise.all([ledger.applyMoney(request, ignore), ledger.applyMoney(request, ignore)]);
    expect(first).toEqual({ status: 'applied', balanceCents: 0, replayed: false });
    expect(second).toEqual({ status: 'applied', balanceCents: 0, replayed: true });
  });

  it('refuses a negative balance in the schema itself', async () => {
    const { file, accountId } = await withAccount();
    const db = new Database(file);
    expect(() => db.prepare('UPDATE accounts SET balance_cents = -1 WHERE id = ?').run(accountId)).toThrow(
      /CHECK constraint/,
    );
    db.close();
  });
});
