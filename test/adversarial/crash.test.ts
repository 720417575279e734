/**
 * `kill -9` of the bank with deposits in flight from several ATMs. After a
 * restart: every acknowledged deposit is there exactly once (retrying every
 * unanswered one with its transaction id settles it without doubling),
 * each balance equals the sum of its journal, the audit log verifies, and
 * the ATMs reconnect by themselves.
 */
import path from 'node:path';

import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

import { BankLink } from '../../atm-web/bank-link.ts';
import { silentLogger } from '../../runtime/logger.ts';
import { credentialFor, runAudit, tempDir, uniqueTxId } from '../helpers.ts';
import { spawnBank, spawnedProcesses } from '../process.ts';

const children = spawnedProcesses();
const links: BankLink[] = [];
afterEach(async () => {
  for (const link of links.splice(0)) await link.stop();
  children.killAll();
});

type Attempt = { handle: string; user: string; txId: string; cents: number; acked: boolean };

describe('a bank crash', () => {
  it('loses no acknowledged deposit, doubles none, keeps the journal and audit log consistent, and the ATMs recover', async () => {
    const dataDir = tempDir();
    const first = await spawnBank(dataDir);
    children.track(first);
    const atms = [1, 2, 3].map((atmId) => {
      const link = new BankLink({
        banks: [{ host: '127.0.0.1', port: first.port }],
        credential: credentialFor(dataDir, atmId),
        logger: silentLogger,
        initialBackoffMs: 50,
        maxBackoffMs: 300,
      });
      links.push(link);
      return link;
    });
    await Promise.all(atms.map((link) => link.start()));
    const customers = await Promise.all(
      atms.flatMap((link, a) =>
        [0, 1].map(async (c) => {
          const user = `crash${a}${c}`;
          await link.client().signup(user, 'password1');
          return { link, user, handle: (await link.login(user, 'password1')).handle };
        }),
      ),
    );

    // Every customer deposits in a loop until the bank dies under them.
    const attempts: Attempt[] = [];
    let running = true;
    const loops = customers.map(async ({ link, user, handle }) => {
      while (running) {
        const customer = link.customer(handle);
        if (!customer) return;
        const attempt = { handle, user, txId: uniqueTxId(), cents: 100 + attempts.length, acked: false };
        attempts.push(attempt);
        try {
          await customer.client.deposit(customer.session, attempt.txId, attempt.cents);
          attempt.acked = true;
        } catch {
          return;
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    first.child.kill('SIGKILL');
    await first.exited;
    running = false;
    await Promise.all(loops);
    const acked = attempts.filter((attempt) => attempt.acked);
    expect(acked.length).toBeGreaterThan(20);

    const second = await spawnBank(dataDir, ['--port', String(first.port)]);
    children.track(second);
    // The ATMs find the bank again by themselves.
    await Promise.all(atms.map((link) => link.waitUntilAvailable(10_000)));

    const sessions = new Map<string, { link: BankLink; handle: string }>();
    for (const { link, user } of customers)
      sessions.set(user, { link, handle: (await link.login(user, 'password1')).handle });
    const live = (user: string) => {
      const entry = sessions.get(user);
      const customer = entry?.link.customer(entry.handle);
      if (!customer) throw new Error(`${user} has no live session`);
      return customer;
    };
    // Retry every deposit with its own transaction id: an applied one is answered as a replay, a lost one is applied now.
    let replayedAcked = 0;
    for (const attempt of attempts) {
      const customer = live(attempt.user);
      const result = await customer.client.deposit(customer.session, attempt.txId, attempt.cents);
      if (attempt.acked) {
        expect(result.replayed, `acknowledged ${attempt.txId} must already be there`).toBe(true);
        replayedAcked += 1;
      }
    }
    expect(replayedAcked).toBe(acked.length);
    // Now every attempt is applied exactly once: each balance is the sum of its attempts.
    for (const { user } of customers) {
      const customer = live(user);
      const expected = attempts
        .filter((attempt) => attempt.user === user)
        .reduce((sum, attempt) => sum + attempt.cents, 0);
      expect(await customer.client.balance(customer.session)).toBe(expected);
    }

    // Balances equal the sum of the journal, for every account.
    const db = new Database(path.join(dataDir, 'ledger.db'), { readonly: true });
    const mismatches = db
      .prepare(
        `SELECT a.username, a.balance_cents AS balance,
                COALESCE(SUM(CASE j.kind WHEN 'deposit' THEN j.amount_cents ELSE -j.amount_cents END), 0) AS journal
         FROM accounts a LEFT JOIN journal j ON j.account_id = a.id AND j.status = 'applied'
         GROUP BY a.id HAVING balance != journal`,
      )
      .all();
    db.close();
    expect(mismatches).toEqual([]);

    const verified = runAudit(['verify', '--data-dir', dataDir]);
    expect(verified.code, verified.err.join('\n')).toBe(0);
  }, 60_000);
});
