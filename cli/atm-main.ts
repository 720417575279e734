/** Entry point of `bin/atm`; see `atm.ts`. */
import { EXIT_INVALID, runAtm } from './atm.ts';

// Whatever happens, nothing but the one result line is printed: no stack trace, no log.
process.on('uncaughtException', () => process.exit(EXIT_INVALID));
process.on('unhandledRejection', () => process.exit(EXIT_INVALID));

// No top-level await: this entry is bundled as CommonJS (cli/build.mjs), which
// starts without Node's ESM loader, one of the costs of each of the thousands
// of calls a contest script makes.
void runAtm(process.argv.slice(2)).then((outcome) => {
  if (outcome.line === null) process.exit(outcome.code);
  process.stdout.write(`${outcome.line}\n`, () => process.exit(outcome.code));
});
