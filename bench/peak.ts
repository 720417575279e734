/**
 * `npx tsx bench/peak.ts [--seconds T] [--rate R] [--profile DIR] [--json]`
 *
 * Only the peak phase of `npm run bench`: the same bank (its own process,
 * default durability), the same 4 x 16 sessions and mix in a closed loop.
 * Prints tps, the bank's CPU and its CPU per transaction (all its threads,
 * the measure issue 15 is about, and its main thread alone), so a change to
 * the hot path can be tried back to back in seconds. `--rate R` runs the same
 * mix open loop at R requests a second instead: the bank's CPU per
 * transaction at a fixed rate does not move with the group sizes a busy
 * machine's peak happens to reach, so it is the steadier measure for an A/B
 * comparison. `--profile DIR` runs the bank under `node --cpu-prof` and
 * leaves the .cpuprofile in DIR (`bench/profile-summary.ts` reads it).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Terminals } from '../server/terminals.ts';
import { waitForOutput, type Spawned } from '../test/process.ts';
import { closedLoop, openLoop, openSessions } from './load.ts';
import { cpuSeconds, loadCpuSeconds, mainThreadCpuSeconds } from './proc.ts';
import { round, summarize } from './stats.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string' },
    profile: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const seconds = Number(values.seconds);
const ROOT = path.resolve(import.meta.dirname, '..');

function spawnBank(dataDir: string): Spawned {
  const profile = values.profile ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(values.profile)] : [];
  const child = spawn(
    process.execPath,
    [
      ...profile,
      '--import',
      'tsx',
      path.join(ROOT, 'server/main.ts'),
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--bcrypt-cost',
      '4',
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function main(): Promise<void> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'atm-peak-'));
  const bank = spawnBank(dataDir);
  try {
    const match = await waitForOutput(bank, /bank listening on 127\.0\.0\.1:(\d+)/, 60_000);
    const pid = bank.child.pid ?? 0;
    const terminals = Terminals.open(dataDir);
    const sessions = await openSessions(
      { host: '127.0.0.1', port: Number(match[1]), credentialFor: (atmId) => terminals.credentialFor(atmId) },
      4,
      16,
      'peak',
    );
    await closedLoop(sessions, 1); // warm up
    const cpu0 = cpuSeconds(pid);
    const main0 = mainThreadCpuSeconds(pid);
    const load0 = process.cpuUsage();
    const peak = values.rate
      ? await openLoop(sessions, Number(values.rate), seconds)
      : await closedLoop(sessions, seconds);
    const bankCpu = (cpuSeconds(pid) - cpu0) / seconds;
    const mainCpu = (mainThreadCpuSeconds(pid) - main0) / seconds;
    const loadCpu = loadCpuSeconds(load0) / seconds;
    const latency = summarize(peak.latencies);
    for (const client of new Set(sessions.map((s) => s.client))) client.close();
    const summary = {
      tps: round(peak.tps, 1),
      p99_ms: round(latency.p99, 3),
      bank_cpu: round(bankCpu, 3),
      bank_cpu_us_per_tx: round((bankCpu * 1e6) / peak.tps, 1),
      // The event loop's share; the rest is mostly the pool threads' fdatasyncs.
      main_thread_us_per_tx: round((mainCpu * 1e6) / peak.tps, 1),
      // This process plays the ATMs on the same cores: what it takes is not the bank's.
      load_cpu_us_per_tx: round((loadCpu * 1e6) / peak.tps, 1),
    };
    if (values.json) console.log(JSON.stringify(summary));
    else {
      console.log(
        `${values.rate ? 'open loop' : 'peak'}: ${summary.tps} tps  p99 ${summary.p99_ms} ms  bank CPU ${round(bankCpu * 100, 0)}%  ` +
          `${summary.bank_cpu_us_per_tx} µs of bank CPU per transaction (${summary.main_thread_us_per_tx} on its main thread); ` +
          `the load generator ${summary.load_cpu_us_per_tx} µs`,
      );
    }
  } finally {
    bank.child.kill('SIGTERM');
    await bank.exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
