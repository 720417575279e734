// Compiles the command-line programs once, at install time (`npm install`
// and `npm ci` run the `prepare` script), so `bin/atm` starts in plain Node
// with one bundled file instead of loading TypeScript through tsx per call.
//
// Plain JavaScript on purpose: it runs before anything is compiled.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const outdir = path.join(root, 'dist');

fs.mkdirSync(outdir, { recursive: true });
const common = {
  absWorkingDir: root,
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  minify: true,
  logLevel: 'warning',
};
await build({
  ...common,
  entryPoints: { bank: 'cli/bank-main.ts', terminal: 'cli/terminal-main.ts' },
  outExtension: { '.js': '.mjs' },
  format: 'esm',
  // Native addons, pino's worker-thread transports and pg (with its optional native
  // binding) load from node_modules at run time.
  external: ['better-sqlite3', 'bcrypt', 'pino', 'pino-pretty', 'pg'],
});
// bin/atm runs thousands of times per contest script, so its start is what
// matters (README, "Fast start"): CommonJS skips Node's ESM loader, the bundle
// holds no external import, and it is loaded through a V8 code cache. The
// bundle's name carries the hash of its contents, which keys the cache.
for (const name of fs.readdirSync(outdir)) {
  if (/^atm(-[A-Z0-9]+)?\.cjs(\.cache)?$/.test(name)) fs.rmSync(path.join(outdir, name));
}
const atm = await build({
  ...common,
  entryPoints: { atm: 'cli/atm-main.ts' },
  entryNames: '[name]-[hash]',
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  metafile: true,
});
const [bundlePath] = Object.keys(atm.metafile.outputs);
const bundle = path.basename(bundlePath);
// (The run exits 255, bin/atm's refusal of no arguments; the cache is what counts.)
spawnSync(process.execPath, [path.join(root, 'cli', 'code-cache.mjs'), path.join(outdir, bundle)], { stdio: 'ignore' });
if (!fs.existsSync(path.join(outdir, `${bundle}.cache`))) {
  console.warn('cli/build.mjs: no code cache for bin/atm (it still works, starting a little slower)');
}
await build({
  ...common,
  entryPoints: { atm: 'cli/atm-start.ts' },
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  define: { ATM_BUNDLE: JSON.stringify(bundle) },
});
// The ledger's checkpoint thread is started from a file beside the code that starts it.
fs.copyFileSync(path.join(root, 'server', 'checkpoint-worker.mjs'), path.join(outdir, 'checkpoint-worker.mjs'));
