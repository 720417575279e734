/**
 * `npx tsx bench/audit-cost.ts [--lines N]`
 *
 * Sealing audit lines alone, in one process: CPU time to build, seal and
 * chain one line in each log (what the bank does per transaction in
 * `AuditWriter.stage`), without writing. Steady enough to compare changes to
 * `audit/chain.ts` on a busy machine.
 */
import { parseArgs } from 'node:util';

import { AuditKeys, CHAIN_START, sealLine, type ChainPosition } from '../audit/chain.ts';
import { formatPlainLine, type AuditEvent } from '../audit/event.ts';
import { secureRandom } from '../protocol/crypto.ts';
import { median, round } from './stats.ts';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '50000' } } });
const lines = Number(values.lines);
const event: AuditEvent = {
  at: '2026-11-23T18:00:00.000Z',
  atm: 101,
  channel: 'web',
  user: 'load1x12',
  action: 'deposit',
  amountCents: 100,
  outcome: 'ok',
};

function run(): number {
  const keys = new AuditKeys(secureRandom(32));
  const logId = secureRandom(16);
  let position: ChainPosition = CHAIN_START;
  const start = process.cpuUsage();
  for (let i = 0; i < lines; i += 1) {
    position = sealLine(keys, logId, position, event, formatPlainLine(event)).next;
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / lines;
}

run(); // warm up
const runs = Array.from({ length: 5 }, run);
console.log(
  `audit line: ${round(median(runs), 2)} µs CPU to format, seal and chain one event ` +
    `(runs ${runs.map((r) => round(r, 1)).join(', ')})`,
);
