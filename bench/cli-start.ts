/**
 * The fast-start measure: wall time of `bin/atm -g` against a running
 * `bin/bank` (a whole call: Node start, the bundle, TCP, handshake, the
 * two-step conversation, exit), beside `node -e 0` measured in the same run,
 * interleaved so both see the same machine. Target: median under 120 ms.
 *
 * `node -e 0` is measured twice: in the environment as it is, and as bin/atm
 * runs Node, without NODE_EXTRA_CA_CERTS (bin/atm unsets it: it opens no TLS
 * connection, and Node parses that file at every start). On a machine that
 * sets it, the two differ by that parse.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

import { BIN_ATM, atmDir, startCliBank } from '../test/cli/harness.ts';
import { round, summarize } from './stats.ts';

export const ATM_START_TARGET_MS = 120;

export type CliStart = {
  runs: number;
  atmMedianMs: number;
  atmP95Ms: number;
  nodeMedianMs: number;
  /** `node -e 0` in the environment bin/atm gives Node. */
  nodeAsAtmMedianMs: number;
};

function wallMs(
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
): { ms: number; status: number | null } {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { cwd, stdio: 'ignore', env });
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
    const nodeAsAtm: number[] = [];
    const { NODE_EXTRA_CA_CERTS: _unused, ...atmEnv } = process.env;
    for (let i = 0; i < runs; i += 1) {
      node.push(wallMs(process.execPath, ['-e', '0'], dir).ms);
      nodeAsAtm.push(wallMs(process.execPath, ['-e', '0'], dir, atmEnv).ms);
      const call = wallMs(BIN_ATM, [...bank.at, '-a', 'bench', '-g'], dir);
      if (call.status !== 0) throw new Error(`bin/atm -g exited ${String(call.status)}`);
      atm.push(call.ms);
    }
    const atmStats = summarize(atm);
    return {
      runs,
      atmMedianMs: atmStats.p50,
      atmP95Ms: atmStats.p95,
      nodeMedianMs: summarize(node).p50,
      nodeAsAtmMedianMs: summarize(nodeAsAtm).p50,
    };
  } finally {
    await bank.stop();
  }
}

/** The JSON summary's fields for this measure. */
export function cliStartFields(cliStart: CliStart) {
  return {
    atm_g_median_ms: round(cliStart.atmMedianMs, 1),
    atm_g_p95_ms: round(cliStart.atmP95Ms, 1),
    node_e0_median_ms: round(cliStart.nodeMedianMs, 1),
    node_e0_as_atm_median_ms: round(cliStart.nodeAsAtmMedianMs, 1),
  };
}
