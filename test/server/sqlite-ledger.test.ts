import path from 'node:path';

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

import type { MoneyOutcome } from '../../server/ledger.ts';
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
      Array.from({ length: 200 }, (_, i) => ledger.applyMoney({ accountId, txId: `tx-${i}-group`, kind: 'deposit', amountCents: 100, at }, ignore)),
    );
    expect(outcomes.every((outcome) => outcome.status === 'applied')).toBe(true);
    expect(await ledger.balance(accountId)).toBe(20_000);
    expect(ledger.groupStats.walSyncs - before).toBeLessThanOrEqual(2);
  });

  it('rolls back only the movement whose audit write failed, not the rest of its group', async () => {
    const { ledger, accountId, file } = await withAccount();
    const move = (n: number, hook: (outcome: MoneyOutcome) => void) =>
      ledger.applyMoney({ accountId, txId: `tx-savepoint-${n}`, kind: 'deposit', amountCents: n * 100, at }, hook);
    const results = await Promise.allSettled([
      move(1, ignore),
      move(2, () => {
        throw new Error('audit log full');
      }),
      move(3, ignore),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(ledger.groupStats.groups).toBe(1);
    expect(await ledger.balance(accountId)).toBe(400);
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT tx_id FROM journal ORDER BY id').all()).toEqual([{ tx_id: 'tx-savepoint-1' }, { tx_id: 'tx-savepoint-3' }]);
    db.close();
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
    expect(() => db.prepare('UPDATE accounts SET balance_cents = -1 WHERE id = ?').run(accountId)).toThrow(/CHECK constraint/);
    db.close();
  });
});
