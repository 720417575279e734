/**
 * The fast-start measure: wall time of `bin/atm -g` against a running
 * `bin/bank` (a whole call: Node start, the bundle, TCP, handshake, the
 * two-step conversation, exit), beside `node -e 0` measured in the same run,
 * interleaved so both see the same machine. Target: median under 120 ms.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { BIN_ATM, atmDir, startCliBank } from '../test/cli/harness.ts';
import { summarize } from './stats.ts';

export const ATM_START_TARGET_MS = 120;

export type CliStart = { runs: number; atmMedianMs: number; atmP95Ms: number; nodeMedianMs: number };

function wallMs(command: string, args: string[], cwd: string): { ms: number; status: number | null } {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { cwd, stdio: 'ignore' });
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, status: result.status };
}

export async function measureCliStart(runs: number): Promise<CliStart> {
  // Measure the sources as they are, as the tests do: `npm install` built dist/ once, perhaps from older ones.
  const build = spawnSync(process.execPath, [path.join(import.meta.dirname, '..', 'cli', 'build.mjs')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (build.status !== 0) throw new Error('cli/build.mjs failed');
  const bank = await startCliBank();
  try {
    const dir = atmDir(bank);
    if (wallMs(BIN_ATM, [...bank.at, '-a', 'bench', '-n', '10.00'], dir).status !== 0) {
      throw new Error('bin/atm could not open the benchmark account');
    }
    const atm: number[] = [];
    const node: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      node.push(wallMs(process.execPath, ['-e', '0'], dir).ms);
      const call = wallMs(BIN_ATM, [...bank.at, '-a', 'bench', '-g'], dir);
      if (call.status !== 0) throw new Error(`bin/atm -g exited ${String(call.status)}`);
      atm.push(call.ms);
    }
    const atmStats = summarize(atm);
    return { runs, atmMedianMs: atmStats.p50, atmP95Ms: atmStats.p95, nodeMedianMs: summarize(node).p50 };
  } finally {
    await bank.stop();
  }
}
