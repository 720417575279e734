/**
 * `bin/atm`'s first file (dist/atm.cjs): loads the real program, the bundle
 * `dist/atm-<hash>.cjs`, through a V8 code cache made at install time
 * (cli/code-cache.mjs), so a call skips compiling most of what it runs.
 *
 * The bundle's name carries esbuild's hash of its contents and the cache is
 * named after the bundle, so a cache can only ever meet the code it was made
 * from; V8 itself refuses a cache from another Node or V8 version
 * (`cachedDataRejected`), and a missing or refused cache only costs the
 * compile it would have saved. Nothing here prints or throws past what the
 * bundle itself does.
 */
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

/** The bundle's file name, fixed by cli/build.mjs at build time. */
declare const ATM_BUNDLE: string;

const file = path.join(__dirname, ATM_BUNDLE);
let cachedData: Buffer | undefined;
try {
  cachedData = fs.readFileSync(`${file}.cache`);
} catch {
  cachedData = undefined;
}
// The same wrapper Node's CommonJS loader puts around a module.
const wrapped = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, 'utf8')}\n})`;
const run: unknown = new vm.Script(wrapped, { filename: file, cachedData }).runInThisContext();
if (typeof run === 'function') {
  const module = { exports: {} };
  run.call(module.exports, module.exports, require, module, file, __dirname);
}
