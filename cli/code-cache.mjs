// Install-time step of cli/build.mjs: writes `<bundle>.cache`, the V8 code
// cache bin/atm's launcher (cli/atm-start.ts) loads the bundle with.
//
// `node cli/code-cache.mjs <bundle>` runs the bundle once with no arguments
// (bin/atm then refuses at once, exit 255, without touching a file or the
// network), so the cache holds everything a call compiles up to its argument
// check (the module's top level: the message schemas, the protocol), then
// writes the cache when the process exits.
//
// Plain JavaScript on purpose: it runs before anything is compiled.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

const file = path.resolve(process.argv[2]);
// Must match the wrapper in cli/atm-start.ts exactly: V8 keys a cache on the source it was made from.
const wrapped = `(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, 'utf8')}\n})`;
const script = new vm.Script(wrapped, { filename: file });
process.argv = [process.argv[0], file];
process.on('exit', () => fs.writeFileSync(`${file}.cache`, script.createCachedData()));
const module = { exports: {} };
script.runInThisContext().call(module.exports, module.exports, createRequire(file), module, file, path.dirname(file));
