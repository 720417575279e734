/**
 * The commands as an operator runs them: `npm start` and `npm run bank` with
 * `--admin-port`, and `kill -USR2` for the service-time report under both.
 */
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { tempDir } from '../helpers.ts';
import { count, sample } from '../metrics-text.ts';
import { spawnBank, spawnEntry, waitForOutput, type Spawned } from '../process.ts';

const children: Spawned[] = [];
afterEach(() => {
  for (const spawned of children.splice(0)) spawned.child.kill('SIGKILL');
});

const REPORT = /bank served \d+ requests; time in the bank p50/g;

async function reportsAfterUsr2(spawned: Spawned): Promise<void> {
  const before = spawned.output().match(REPORT)?.length ?? 0;
  spawned.child.kill('SIGUSR2');
  const deadline = Date.now() + 20_000;
  while ((spawned.output().match(REPORT)?.length ?? 0) === before) {
    if (spawned.child.exitCode !== null || spawned.child.signalCode !== null) {
      throw new Error(`SIGUSR2 ended the process:\n${spawned.output()}`);
    }
    if (Date.now() > deadline) throw new Error(`no report after SIGUSR2:\n${spawned.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('the commands for operators', () => {
  it('npm start serves the operator page with one registry for bank and ATM, and reports on SIGUSR2 without stopping', async () => {
    const dataDir = path.join(tempDir(), 'data');
    const started = spawnEntry('bin/start.ts', [
      '--data-dir',
      dataDir,
      '--bank-port',
      '0',
      '--port',
      '0',
      '--admin-port',
      '0',
    ]);
    children.push(started);
    const admin = (await waitForOutput(started, /Operator page: (http:\/\/127\.0\.0\.1:\d+)\//))[1] ?? '';
    const atm =
      (await waitForOutput(started, /ATM 1 ready: open (http:\/\/127\.0\.0\.1:\d+) in your browser/))[1] ?? '';
    expect(started.output()).toContain(`kill -USR2 ${started.child.pid}`);
    expect((await fetch(`${admin}/healthz`)).status).toBe(200);
    expect((await fetch(`${atm}/healthz`)).status).toBe(200);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(sample(metrics, 'bank_connected_atms')).toBe(1);
    expect(sample(metrics, 'atm_bank_link_up')).toBe(1);
    expect(sample(metrics, 'nodejs_eventloop_lag_p99_seconds')).not.toBeNull();
    expect(metrics).toContain('# TYPE nodejs_gc_duration_seconds histogram');
    expect(count(await (await fetch(`${atm}/metrics`)).text(), 'bank_connected_atms')).toBe(1);

    await reportsAfterUsr2(started);
    expect((await fetch(`${admin}/healthz`)).status).toBe(200);
    started.child.kill('SIGINT');
    expect(await started.exited).toBe(0);
  }, 60_000);

  it('npm run bank serves the admin port on loopback and reports on SIGUSR2 without stopping', async () => {
    const bank = await spawnBank(tempDir(), ['--admin-port', '0']);
    children.push(bank);
    const admin = (await waitForOutput(bank, /bank operator page at (http:\/\/127\.0\.0\.1:\d+)\//))[1] ?? '';
    expect(bank.output()).toContain(`(pid ${bank.child.pid})`);
    const page = await fetch(`${admin}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<h1>Bank operator</h1>');
    await reportsAfterUsr2(bank);
    bank.child.kill('SIGTERM');
    expect(await bank.exited).toBe(0);
  }, 60_000);

  it('npm run bank refuses an admin port that is not a port', async () => {
    const bank = spawnEntry('server/main.ts', ['--port', '0', '--data-dir', tempDir(), '--admin-port', 'http']);
    expect(await bank.exited).toBe(1);
    expect(bank.output()).toContain('--admin-port must be a whole number from 0 to 65535');
  }, 60_000);
});
