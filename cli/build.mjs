// Compiles the command-line programs once, at install time (`npm install`
// and `npm ci` run the `prepare` script), so `bin/atm` starts in plain Node
// with one bundled file instead of loading TypeScript through tsx per call.
//
// Plain JavaScript on purpose: it runs before anything is compiled.
import fs from 'node:fs';
import path from 'node:path';

import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const outdir = path.join(root, 'dist');

fs.mkdirSync(outdir, { recursive: true });
await build({
  absWorkingDir: root,
  entryPoints: {
    atm: 'cli/atm-main.ts',
    bank: 'cli/bank-main.ts',
    terminal: 'cli/terminal-main.ts',
  },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  // Native addons, pino's worker-thread transports and pg (with its optional native
  // binding) load from node_modules at run time.
  external: ['better-sqlite3', 'bcrypt', 'pino', 'pino-pretty', 'pg'],
  logLevel: 'warning',
});
// The ledger's checkpoint thread is started from a file beside the code that starts it.
fs.copyFileSync(path.join(root, 'server', 'checkpoint-worker.mjs'), path.join(outdir, 'checkpoint-worker.mjs'));
