/**
 * `npx tsx bench/random-pool.ts`: does the IV pool still earn its place?
 * Times one 16-byte IV drawn straight from the CSPRNG (one call into OpenSSL
 * each, as keys are drawn) against one served from the 4 KiB pool. Every
 * record sealed takes one IV, so the difference is paid per record.
 */
import { pooledIvRandom, secureRandom, type RandomSource } from '../protocol/crypto.ts';

const CALLS = 200_000;

function nsPerCall(source: RandomSource): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i += 1) source(16);
  return Number(process.hrtime.bigint() - start) / CALLS;
}

// Warm both up, then alternate so a busy machine hurts both alike.
nsPerCall(secureRandom);
nsPerCall(pooledIvRandom);
const direct: number[] = [];
const pooled: number[] = [];
for (let round = 0; round < 5; round += 1) {
  direct.push(nsPerCall(secureRandom));
  pooled.push(nsPerCall(pooledIvRandom));
}
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
console.log(`16-byte IV straight from the CSPRNG: ${median(direct).toFixed(0)} ns per call (median of 5 x ${CALLS})`);
console.log(`16-byte IV from the 4 KiB pool:      ${median(pooled).toFixed(0)} ns per call`);
console.log(`pool saves ${(median(direct) - median(pooled)).toFixed(0)} ns per sealed record`);
