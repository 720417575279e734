/**
 * Real bank processes on one PostgreSQL ledger: a terminal revoked through
 * one node is cut and refused on the other, and a password change through
 * one node ends the customer's session on the other
 * (server/cluster-signals.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';

import type { BankClient } from '../../protocol/client.ts';
import { NodePair, SKIP_POSTGRES_REASON } from '../postgres.ts';
import { spawnEntry } from '../process.ts';

const pair = new NodePair();
afterEach(() => pair.cleanup());

/** Generous: the signal takes about a second; this only catches "never". */
const WITHIN_MS = 15_000;

/** How `client`'s link ends within WITHIN_MS (its close code), or 'still connected'. */
function linkEnd(client: BankClient): Promise<string> {
  const closed = new Promise<string>((resolve) => client.onClose((reason) => resolve(reason.code)));
  return Promise.race([
    closed,
    new Promise<string>((resolve) => setTimeout(() => resolve('still connected'), WITHIN_MS)),
  ]);
}

describe.skipIf(SKIP_POSTGRES_REASON)('signals between bank nodes on one PostgreSQL ledger', () => {
  it(
    'cuts an ATM connected to node B when node A revokes it, and B refuses its reconnection',
    { timeout: 60_000 },
    async () => {
      const {
        nodes: [a, b],
      } = await pair.start();
      const atm = await pair.connect(b, 2);
      await atm.ping();
      // The bank ends a revoked terminal's link with an alert.
      const cut = linkEnd(atm);
      // The operator revokes ATM 2 with node A's data directory only.
      const revoke = spawnEntry('server/main.ts', ['revoke-atm', '2', '--data-dir', a.dataDir]);
      expect(await revoke.exited).toBe(0);
      const started = Date.now();
      await expect(cut).resolves.toBe('ERR_PEER_ALERT');
      expect(Date.now() - started).toBeLessThan(WITHIN_MS);
      await expect(pair.connect(b, 2)).rejects.toThrow();
      // Another terminal on B is not affected.
      await (await pair.connect(b, 3)).ping();
    },
  );

  it(
    'reaches node B with revoke-atm --ledger while node A, whose data dir is used, is down',
    { timeout: 60_000 },
    async () => {
      const {
        nodes: [a, b],
        url,
      } = await pair.start();
      const atm = await pair.connect(b, 2);
      await atm.ping();
      const cut = linkEnd(atm);
      a.child.kill('SIGKILL');
      const revoke = spawnEntry('server/main.ts', ['revoke-atm', '2', '--data-dir', a.dataDir, '--ledger', url]);
      expect(await revoke.exited).toBe(0);
      expect(revoke.output()).toContain('ATM 2 revoked');
      await expect(cut).resolves.toBe('ERR_PEER_ALERT');
      await expect(pair.connect(b, 2)).rejects.toThrow();
    },
  );

  it(
    'ends the customer’s session on node B when the password is changed through node A',
    { timeout: 60_000 },
    async () => {
      const {
        nodes: [a, b],
      } = await pair.start();
      const [onA, onB] = [await pair.connect(a, 1), await pair.connect(b, 2)];
      await onA.signup('ada', 'correct-horse');
      const [sessionA, sessionB] = [await onA.login('ada', 'correct-horse'), await onB.login('ada', 'correct-horse')];
      expect(await onB.balance(sessionB)).toBe(0);
      await onA.changePassword(sessionA, 'correct-horse', 'battery-staple');
      const deadline = Date.now() + WITHIN_MS;
      let outcome = 'still logged in';
      while (Date.now() < deadline) {
        try {
          await onB.balance(sessionB);
        } catch (error) {
          outcome = (error as { code?: string }).code ?? String(error);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(outcome).toBe('ERR_NOT_LOGGED_IN');
      // The session that changed the password goes on; the new password opens a session on B.
      expect(await onA.balance(sessionA)).toBe(0);
      expect(await onB.balance(await onB.login('ada', 'battery-staple'))).toBe(0);
    },
  );
});
