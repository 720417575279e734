/**
 * Real bank processes sharing one PostgreSQL ledger: what one node refuses
 * or decides, the other sees, and every node's audit chain verifies.
 */

import { afterEach, describe, expect, it } from 'vitest';

import { BankError } from '../../protocol/errors.ts';
import { uniqueTxId } from '../helpers.ts';
import { NodePair, SKIP_POSTGRES_REASON, queryRows } from '../postgres.ts';
import { spawnEntry } from '../process.ts';

const pair = new NodePair();
afterEach(() => pair.cleanup());

/** `npm run audit -- verify --ledger URL` in its own process. */
async function verifyChains(dataDir: string, url: string): Promise<{ code: number | null; output: string }> {
  const audit = spawnEntry('bin/audit.ts', ['verify', '--ledger', url, '--data-dir', dataDir]);
  const code = await audit.exited;
  return { code, output: audit.output() };
}

describe.skipIf(SKIP_POSTGRES_REASON)('bank nodes on one PostgreSQL ledger', () => {
  it('locks an account after 5 failed logins spread over two nodes', { timeout: 60_000 }, async () => {
    const { nodes, url } = await pair.start();
    const [onA, onB] = [await pair.connect(nodes[0]), await pair.connect(nodes[1])];
    await onA.signup('ada', 'correct-horse');
    for (let i = 0; i < 5; i += 1) {
      await expect((i % 2 === 0 ? onA : onB).login('ada', 'wrong-password')).rejects.toMatchObject({
        code: 'ERR_AUTH_FAILED',
      });
    }
    // Locked everywhere: the right password is refused on both nodes.
    for (const client of [onA, onB]) {
      await expect(client.login('ada', 'correct-horse')).rejects.toBeInstanceOf(BankError);
    }
    const locked = await queryRows<{ locked_until: string | null }>(
      url,
      "SELECT locked_until FROM accounts WHERE username = 'ada'",
    );
    expect(Number(locked[0]?.locked_until)).toBeGreaterThan(Date.now());
    const verified = await verifyChains(nodes[0].dataDir, url);
    expect(verified.output.match(/audit chain of node \S+ intact/g)).toHaveLength(2);
    expect(verified.code).toBe(0);
  });

  it(
    'never takes a balance below zero when two nodes race 40 withdrawals; ledger and audit agree',
    { timeout: 60_000 },
    async () => {
      const { nodes, url } = await pair.start();
      const [onA, onB] = [await pair.connect(nodes[0], 1), await pair.connect(nodes[1], 2)];
      await onA.signup('bob', 'password1');
      const [sessionA, sessionB] = [await onA.login('bob', 'password1'), await onB.login('bob', 'password1')];
      await onA.deposit(sessionA, uniqueTxId(), 2_000);
      const results = await Promise.allSettled(
        Array.from({ length: 40 }, (_, i) =>
          i % 2 === 0 ? onA.withdraw(sessionA, uniqueTxId(), 100) : onB.withdraw(sessionB, uniqueTxId(), 100),
        ),
      );
      const applied = results.filter((result) => result.status === 'fulfilled').length;
      const refused = results.filter(
        (result) => result.status === 'rejected' && (result.reason as BankError).code === 'ERR_INSUFFICIENT_FUNDS',
      ).length;
      expect([applied, refused]).toEqual([20, 20]);
      expect(await onB.balance(sessionB)).toBe(0);
      const journal = await queryRows<{ n: string }>(
        url,
        "SELECT count(*) AS n FROM journal WHERE kind = 'withdraw' AND status = 'applied'",
      );
      expect(Number(journal[0]?.n)).toBe(applied);

      const decrypted = spawnEntry('bin/audit.ts', [
        'decrypt',
        '--json',
        '--ledger',
        url,
        '--data-dir',
        nodes[0].dataDir,
      ]);
      expect(await decrypted.exited).toBe(0);
      const events = decrypted
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { node: string; action: string; outcome: string });
      const withdrawals = events.filter((event) => event.action === 'withdraw');
      expect(withdrawals.filter((event) => event.outcome === 'ok')).toHaveLength(applied);
      expect(withdrawals.filter((event) => event.outcome === 'insufficient_funds')).toHaveLength(refused);
      // Both nodes wrote to their own chains.
      expect(new Set(withdrawals.map((event) => event.node)).size).toBe(2);
    },
  );
});
