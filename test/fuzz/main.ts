/**
 * `npm run fuzz [-- --runs 25000 --tcp 5000 --seed N]`: the long fuzzing run.
 * With the defaults: 5 properties x 25,000 cases + 5,000 hostile TCP
 * connections = 130,000 cases. Exits non-zero on the first counterexample
 * (printed with its seed so it can be replayed).
 */
import { parseArgs } from 'node:util';

import { startBankServer } from '../../server/bank-server.ts';
import { tempDir } from '../helpers.ts';
import { fuzzBankOverTcp } from './bank-wire.ts';
import { FUZZ_TARGETS } from './properties.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '25000' },
    tcp: { type: 'string', default: '5000' },
    seed: { type: 'string', default: String(Date.now() % 1_000_000) },
  },
});
const runs = Number(values.runs);
const tcp = Number(values.tcp);
const seed = Number(values.seed);
let total = 0;
const started = Date.now();
console.log(`fuzzing with seed ${seed}`);
for (const target of FUZZ_TARGETS) {
  const t0 = Date.now();
  target.run(runs, seed);
  total += runs;
  console.log(`  ok  ${runs} cases  ${((Date.now() - t0) / 1000).toFixed(1)} s  ${target.name}`);
}
const errors: string[] = [];
const bank = await startBankServer({
  host: '127.0.0.1',
  port: 0,
  dataDir: tempDir('atm-fuzz-'),
  bcryptCost: 4,
  logger: {
    info: () => {},
    warn: () => {},
    error: (fields, message) => errors.push(`${message} ${JSON.stringify(fields)}`),
  },
});
const t0 = Date.now();
await fuzzBankOverTcp({ port: bank.port, credentialFor: bank.credentialFor }, tcp, seed);
await bank.close();
total += tcp;
if (errors.length > 0) {
  console.error(`the bank logged ${errors.length} internal errors:\n${errors.slice(0, 5).join('\n')}`);
  process.exit(1);
}
console.log(
  `  ok  ${tcp} cases  ${((Date.now() - t0) / 1000).toFixed(1)} s  bank over TCP: hostile connections, then still serving`,
);
console.log(`${total} cases in ${((Date.now() - started) / 1000).toFixed(1)} s, no failures`);
