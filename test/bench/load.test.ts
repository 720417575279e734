/** The benchmark's own parts, checked small so `npm run bench` cannot rot unnoticed. */
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';

import { afterEach, describe, expect, it } from 'vitest';

import { closedLoop, openLoop, openSessions, pingOperation } from '../../bench/load.ts';
import { schedulingGaps } from '../../bench/machine.ts';
import { cpuSeconds, mainThreadCpuSeconds, processTreeCpuSeconds } from '../../bench/proc.ts';
import { percentile, summarize } from '../../bench/stats.ts';
import { formatServiceReport, parseServiceReports } from '../../server/service-report.ts';
import { auditEvents, startTestBank, type TestBank } from '../helpers.ts';

let bank: TestBank | null = null;
afterEach(async () => {
  await bank?.stop();
  bank = null;
});

describe('bench statistics', () => {
  it('takes nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(summarize([3, 1, 2])).toEqual({ count: 3, p50: 2, p95: 3, p99: 3, max: 3 });
  });
});

describe('bench readings', () => {
  it("tells the main thread's CPU from the rest of the process's", async () => {
    const process0 = cpuSeconds(process.pid);
    const main0 = mainThreadCpuSeconds(process.pid);
    // Another thread does a fixed amount of work (about 0.5 s of CPU here) while this one waits.
    const busy = new Worker("require('node:crypto').pbkdf2Sync('p', 's', 2_000_000, 32, 'sha256')", { eval: true });
    await new Promise((resolve) => busy.once('exit', resolve));
    const processUsed = cpuSeconds(process.pid) - process0;
    const mainUsed = mainThreadCpuSeconds(process.pid) - main0;
    expect(processUsed).toBeGreaterThan(0.15);
    expect(mainUsed).toBeLessThan(processUsed / 2);
  });

  it('keeps the CPU of a child that exited between two readings of a process tree', async () => {
    // A parent that, when asked, runs a busy child (about 0.5 s of CPU here) to its end and reaps it,
    // as PostgreSQL's postmaster does with a backend whose connection closed mid-phase.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `const { spawn } = require('node:child_process');
         process.stdin.once('data', () => {
           const busy = "require('node:crypto').pbkdf2Sync('p', 's', 2000000, 32, 'sha256')";
           spawn(process.execPath, ['-e', busy]).on('exit', () => process.stdout.write('reaped'));
         });
         process.stdout.write('ready');`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const said = (word: string): Promise<void> =>
      new Promise((resolve) =>
        parent.stdout.on('data', (chunk: Buffer) => chunk.toString().includes(word) && resolve()),
      );
    try {
      await said('ready');
      const pid = parent.pid ?? 0;
      const tree0 = processTreeCpuSeconds(pid);
      const own0 = cpuSeconds(pid);
      const reaped = said('reaped');
      parent.stdin.write('go\n');
      await reaped;
      const treeUsed = processTreeCpuSeconds(pid) - tree0;
      expect(treeUsed).toBeGreaterThan(0.15);
      expect(cpuSeconds(pid) - own0).toBeLessThan(treeUsed / 2);
    } finally {
      parent.kill();
    }
  });

  it("parses the bank's service-time report back to the numbers it printed", () => {
    const served = { count: 41, p50: 1.25, p99: 7.5, max: 12.125, gc: { pauses: 3, totalMs: 9.5, maxMs: 4.25 } };
    const output = `noise\n${formatServiceReport({ ...served, count: 1 })}\nmore\n${formatServiceReport(served)}\n`;
    const reports = parseServiceReports(output);
    expect(reports).toHaveLength(2);
    expect(reports[1]).toEqual(served);
  });

  it('measures how steadily the machine runs a busy loop', () => {
    const started = performance.now();
    const gaps = schedulingGaps(30, 0);
    const elapsed = performance.now() - started;
    // With a 0 ms threshold every clock step counts, so the steps add up to the loop's whole run.
    expect(gaps.gaps).toBeGreaterThan(0);
    expect(gaps.maxMs).toBeLessThanOrEqual(gaps.totalMs);
    expect(gaps.totalMs).toBeGreaterThan(29);
    expect(gaps.totalMs).toBeLessThanOrEqual(elapsed);
  });
});

describe('bench load', () => {
  it('drives real sessions in a closed and an open loop and every request completes', async () => {
    bank = await startTestBank();
    const target = { host: bank.bank.host, port: bank.bank.port, credentialFor: bank.bank.credentialFor };
    const sessions = await openSessions(target, 2, 3, 'unit');
    const closed = await closedLoop(sessions, 0.3);
    expect(closed.latencies.length).toBeGreaterThan(10);
    const open = await openLoop(sessions, 200, 0.5);
    expect(open.latencies).toHaveLength(100);
    expect(open.latencies.every((ms) => Number.isFinite(ms) && ms >= 0)).toBe(true);
    // The floor phase: the same loop with pings, which move no money and write no audit line.
    const eventsBefore = auditEvents(bank.dataDir).length;
    const pings = await openLoop(sessions, 200, 0.25, pingOperation);
    expect(pings.latencies).toHaveLength(50);
    expect(auditEvents(bank.dataDir)).toHaveLength(eventsBefore);
    for (const client of new Set(sessions.map((s) => s.client))) client.close();
  });
});
