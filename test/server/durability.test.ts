import fs from 'node:fs';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { connectToBank, runAudit, tempDir, uniqueTxId } from '../helpers.ts';
import { spawnBank, spawnedProcesses } from '../process.ts';

const children = spawnedProcesses();
afterEach(children.killAll);

describe('durability', () => {
  it('keeps every acknowledged deposit and its audit line across kill -9 and a restart', async () => {
    const dataDir = tempDir();
    const first = await spawnBank(dataDir);
    children.track(first);
    const client = await connectToBank(dataDir, first.port);
    await client.signup('mia', 'password1');
    const session = await client.login('mia', 'password1');
    let acknowledged = 0;
    for (let i = 0; i < 20; i += 1) {
      acknowledged = (await client.deposit(session, uniqueTxId(), 1_000)).balanceCents;
    }
    // Fire more deposits and kill the bank while they are in flight.
    const inFlight = Array.from({ length: 20 }, () => client.deposit(session, uniqueTxId(), 1_000));
    first.child.kill('SIGKILL');
    const settled = await Promise.allSettled(inFlight);
    const acked = settled.filter((result) => result.status === 'fulfilled').length;
    await first.exited;

    const second = await spawnBank(dataDir);
    children.track(second);
    const again = await connectToBank(dataDir, second.port);
    const balance = await again.balance(await again.login('mia', 'password1'));
    // Every acknowledged deposit is there; an unacknowledged one may or may not be.
    expect(balance).toBeGreaterThanOrEqual(acknowledged + acked * 1_000);
    expect(balance).toBeLessThanOrEqual(acknowledged + 20 * 1_000);
    again.close();

    const verified = runAudit(['verify', '--data-dir', dataDir]);
    expect(verified.code, verified.err.join('\n')).toBe(0);
    const deposits = runAudit(['decrypt', '--data-dir', dataDir, '--json'])
      .out.map((line) => JSON.parse(line) as { action: string; outcome: string; user: string })
      .filter((event) => event.action === 'deposit' && event.outcome === 'ok' && event.user === 'mia');
    expect(deposits.length * 1_000).toBeGreaterThanOrEqual(balance);
  });

  it('stops cleanly on SIGTERM: finishes in-flight work, exits 0, logs the stop', async () => {
    const dataDir = tempDir();
    const bank = await spawnBank(dataDir);
    children.track(bank);
    const client = await connectToBank(dataDir, bank.port);
    await client.signup('ned', 'password1');
    const session = await client.login('ned', 'password1');
    // Settled at once: the refusal may come while we wait for the exit, and must not go unhandled.
    const pending = client.deposit(session, uniqueTxId(), 500).then(
      () => 'answered',
      () => 'closed',
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    bank.child.kill('SIGTERM');
    expect(await bank.exited).toBe(0);
    // Either it answered before closing, or it never applied it: never applied-but-unanswered.
    const outcome = await pending;
    const log = fs.readFileSync(path.join(dataDir, 'audit', 'audit_log.txt'), 'utf8');
    expect(log).toMatch(/action=bank_stop/);
    const depositLogged = /user=ned action=deposit amount=5\.00 outcome=ok/.test(log);
    expect(outcome === 'answered' ? depositLogged : true).toBe(true);
    expect(bank.output()).not.toMatch(/password1/);
    // On the way out it reports how long requests spent inside it.
    expect(bank.output()).toMatch(
      /bank served [1-9]\d* requests; time in the bank p50 [0-9.]+ ms, p99 [0-9.]+ ms, max [0-9.]+ ms; garbage collection paused it \d+ times/,
    );
  });
});
