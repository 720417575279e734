/** What only the SQLite ledger does: one WAL fdatasync for a whole group. The shared suite is ledger.test.ts. */
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { SqliteLedger } from '../../server/sqlite-ledger.ts';
import { tempDir } from '../helpers.ts';

let ledger: SqliteLedger | null = null;
afterEach(async () => {
  await ledger?.close();
  ledger = null;
});

async function withAccount(): Promise<{ ledger: SqliteLedger; accountId: number }> {
  ledger = new SqliteLedger(path.join(tempDir(), 'ledger.db'));
  const account = await ledger.createAccount('grace', 'hash', at);
  if (!account) throw new Error('no account');
  return { ledger, accountId: account.id };
}

const at = '2026-01-01T00:00:00Z';

describe('SqliteLedger group commit', () => {
  it('commits many concurrent movements with far fewer WAL syncs than movements', async () => {
    const { ledger, accountId } = await withAccount();
    const before = ledger.groupStats.walSyncs;
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ledger.applyMoney({ accountId, txId: `tx-${i}-group`, kind: 'deposit', amountCents: 100, at }, () => {}),
      ),
    );
    expect(await ledger.balance(accountId)).toBe(20_000);
    expect(ledger.groupStats.walSyncs - before).toBeLessThanOrEqual(2);
  });

  it('makes a group of reads wait for the WAL sync of commits they may have seen', async () => {
    const { ledger, accountId } = await withAccount();
    const syncsBefore = ledger.groupStats.walSyncs;
    await ledger.balance(accountId);
    // Nothing was written since the account was created and synced: no new sync.
    expect(ledger.groupStats.walSyncs).toBe(syncsBefore);
  });
});
