/**
 * `npx tsx bench/profile-summary.ts FILE.cpuprofile [--top N]`
 *
 * Self time by function in a V8 CPU profile (`node --cpu-prof`), as a share
 * of the samples in which the thread was busy (idle and "(program)" left
 * out of the denominator, "(garbage collector)" kept in).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type Profile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

const { values, positionals } = parseArgs({
  options: { top: { type: 'string', default: '20' } },
  allowPositionals: true,
});
const file = positionals[0];
if (!file) {
  console.error('usage: profile-summary FILE.cpuprofile [--top N]');
  process.exit(2);
}
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<string, number>();
let totalUs = 0;
let idleUs = 0;
profile.samples.forEach((id, index) => {
  const node = byId.get(id);
  const delta = profile.timeDeltas[index] ?? 0;
  if (!node) return;
  const { functionName, url, lineNumber } = node.callFrame;
  if (functionName === '(idle)' || functionName === '(program)') {
    idleUs += delta;
    return;
  }
  totalUs += delta;
  const where = url ? `${path.basename(url)}:${lineNumber + 1}` : '';
  const key = `${functionName || '(anonymous)'} ${where}`.trim();
  selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
});
const top = [...selfUs.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
console.log(`busy ${(totalUs / 1e6).toFixed(2)} s of ${((totalUs + idleUs) / 1e6).toFixed(2)} s sampled`);
for (const [key, us] of top) console.log(`${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${key}`);
