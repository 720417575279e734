/**
 * `npx tsx bench/record-cost.ts [--messages N]`
 *
 * The record layer alone, in one process: CPU time to seal and open one
 * padded request and its padded answer (what the bank and an ATM each do per
 * transaction), with the mix's real messages. No sockets, no other process,
 * so it is steady enough to compare record-layer changes on a busy machine,
 * where the whole-bank measure (`bench/peak.ts`) drifts by ±15%.
 */
import { parseArgs } from 'node:util';

import { pooledIvRandom, secureRandom } from '../protocol/crypto.ts';
import { encodeMessage } from '../protocol/messages.ts';
import { ContentType, Direction, RecordSession, deriveSessionKeys } from '../protocol/record.ts';
import { median, round } from './stats.ts';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '50000' } } });
const messages = Number(values.messages);

const keys = (): ReturnType<typeof deriveSessionKeys> =>
  deriveSessionKeys(secureRandom(32), secureRandom(32), Buffer.alloc(8, 1));
const request = encodeMessage({ id: 1234, op: 'deposit', txId: 'bench-123456-78901', amountCents: 100 });
const response = encodeMessage({
  id: 1234,
  ok: true,
  result: { op: 'deposit', txId: 'bench-123456-78901', amountCents: 100, balanceCents: 123_456_00, replayed: false },
});

function run(): number {
  const shared = keys();
  const atm = new RecordSession(Buffer.alloc(8, 1), shared, Direction.AtmToBank, pooledIvRandom);
  const bank = new RecordSession(Buffer.alloc(8, 1), shared, Direction.BankToAtm, pooledIvRandom);
  const start = process.cpuUsage();
  for (let i = 0; i < messages; i += 1) {
    bank.open(atm.seal(ContentType.Request, request));
    atm.open(bank.seal(ContentType.Response, response));
  }
  const used = process.cpuUsage(start);
  return (used.user + used.system) / messages;
}

run(); // warm up
const runs = Array.from({ length: 5 }, run);
console.log(
  `record layer: ${round(median(runs), 2)} µs CPU per transaction (request and answer, each sealed and opened; ` +
    `runs ${runs.map((r) => round(r, 1)).join(', ')})`,
);
