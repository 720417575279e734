/** Entry point of `bin/atm`; see `atm.ts`. */
import { EXIT_INVALID, runAtm } from './atm.ts';

// Whatever happens, nothing but the one result line is printed: no stack trace, no log.
process.on('uncaughtException', () => process.exit(EXIT_INVALID));
process.on('unhandledRejection', () => process.exit(EXIT_INVALID));

const outcome = await runAtm(process.argv.slice(2));
if (outcome.line === null) process.exit(outcome.code);
process.stdout.write(`${outcome.line}\n`, () => process.exit(outcome.code));
