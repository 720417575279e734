/**
 * Failover with real bank processes: two nodes on one PostgreSQL ledger,
 * three ATMs (their web apps, driven like browsers) depositing in a loop,
 * and one node killed with SIGKILL under them.
 */

import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';

import { credentialFor, runAudit } from '../helpers.ts';
import {
  SKIP_POSTGRES_REASON,
  createTestDatabase,
  queryRows,
  spawnNodes,
  type SpawnedNode,
  type TestDatabase,
} from '../postgres.ts';
import { spawnEntry } from '../process.ts';
import { login, messages, signup, startAtmApp, transact, type TestAtm } from './harness.ts';

const nodes: SpawnedNode[] = [];
const atms: TestAtm[] = [];
let database: TestDatabase | null = null;
afterEach(async () => {
  for (const atm of atms.splice(0)) await atm.close();
  for (const node of nodes.splice(0)) node.child.kill('SIGKILL');
  await database?.drop();
  database = null;
});

describe.skipIf(SKIP_POSTGRES_REASON)('ATMs failing over between bank nodes', () => {
  it(
    'keeps three depositing ATMs going through kill -9 of a node: every acknowledged deposit once, only real outcomes shown',
    { timeout: 120_000 },
    async () => {
      database = await createTestDatabase();
      nodes.push(...(await spawnNodes(database.url, 2)));
      const [doomed, survivor] = nodes;
      if (!doomed || !survivor) throw new Error('nodes did not start');
      // Every ATM knows both nodes and starts on the first: the one that dies.
      const banks = [doomed, survivor].map((node) => ({ host: '127.0.0.1', port: node.port }));
      for (const atmId of [1, 2, 3]) atms.push(await startAtmApp(banks, credentialFor(doomed.dataDir, atmId)));
      const customers = await Promise.all(
        atms.map(async (atm, i) => {
          const agent = request.agent(atm.app);
          await signup(agent, `failover${i}`, 'password1');
          await login(agent, `failover${i}`, 'password1');
          return { agent, username: `failover${i}`, acknowledgedCents: 0, deposits: 0, pages: [] as string[] };
        }),
      );
      expect(atms.every((atm) => atm.link.connectedTo?.port === doomed.port)).toBe(true);

      let running = true;
      const loops = customers.map(async (customer) => {
        while (running) {
          const result = await transact(customer.agent, 'deposit', '1.00');
          customer.pages.push(...messages(result.page));
          if (result.status !== 303) customer.pages.push(`HTTP ${result.status}`);
          const deposited = /^Deposited \$1\.00\. New balance: \$([0-9,]+)\.([0-9]{2})$/.exec(
            messages(result.page)[0] ?? '',
          );
          if (deposited) {
            customer.deposits += 1;
            customer.acknowledgedCents += 100;
            // The page shows the real balance: every deposit so far, once each.
            expect(Number(`${deposited[1]?.replaceAll(',', '')}${deposited[2]}`)).toBe(customer.acknowledgedCents);
          }
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const killedAt = Date.now();
      doomed.child.kill('SIGKILL');
      await doomed.exited;
      // All three links move to the survivor by themselves.
      await expect
        .poll(() => atms.every((atm) => atm.link.connectedTo?.port === survivor.port), {
          timeout: 10_000,
          interval: 20,
        })
        .toBe(true);
      const failoverMs = Date.now() - killedAt;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      running = false;
      await Promise.all(loops);

      for (const customer of customers) {
        // Only real outcomes: every page was a deposit with its true new balance, never "may not have gone through".
        expect(customer.pages.filter((page) => !page.startsWith('Deposited $1.00.'))).toEqual([]);
        expect(customer.deposits).toBeGreaterThan(2);
        const rows = await queryRows<{ balance_cents: string; applied: string }>(
          database.url,
          `SELECT a.balance_cents, (SELECT count(*) FROM journal j WHERE j.account_id = a.id AND j.status = 'applied') AS applied
           FROM accounts a WHERE a.username = $1`,
          [customer.username],
        );
        // Every acknowledged deposit is in the ledger exactly once.
        expect(Number(rows[0]?.balance_cents)).toBe(customer.acknowledgedCents);
        expect(Number(rows[0]?.applied)).toBe(customer.deposits);
      }
      expect(failoverMs).toBeLessThan(10_000);

      // Both nodes' audit chains verify, the killed node's up to its last commit.
      const audit = spawnEntry('bin/audit.ts', ['verify', '--ledger', database.url, '--data-dir', survivor.dataDir]);
      expect(await audit.exited, audit.output()).toBe(0);
      expect(audit.output().match(/audit chain of node node-\d intact/g)).toHaveLength(2);
      // And the survivor's own encrypted file still verifies as it does with SQLite.
      expect(runAudit(['verify', '--data-dir', survivor.dataDir]).code).toBe(0);
    },
  );
});
