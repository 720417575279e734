/**
 * `bin/bank [-p <port>] [-s <auth-file>]`: this project's bank (same secure
 * channel, ledger and audit trail as `npm run bank`) with the contest's
 * command line and stdout. stdout carries only `created`, one JSON line per
 * command-line transaction applied, and `protocol_error` per conversation
 * that broke; logs go to stderr. Exits 255 on invalid arguments or when the
 * auth file exists, 0 after SIGTERM once everything acknowledged is durable.
 *
 * Every start is a new bank with a new data directory, `<auth-file>.data-XXXXXX`
 * beside the auth file, so two banks in two working directories (or two
 * starts in one) never share a ledger. The auth file is the credential of ATM
 * number 0, which every bin/atm uses; web ATMs are provisioned from that
 * directory (`npm run bank -- provision-atm N --data-dir <it>`).
 */
import fs from 'node:fs';
import path from 'node:path';

import { pino } from 'pino';

import { DEFAULT_BCRYPT_COST, startBankServer, type RunningBank } from '../server/bank-server.ts';
import { exitOnSignals } from '../runtime/exit-on-signals.ts';
import { encodeAtmCredential, writeFileDurably } from '../runtime/key-files.ts';
import { CLI_ATM_ID } from './atm.ts';
import { exists } from './card-file.ts';
import { parseBankArgs, resultLine } from './contract.ts';

const EXIT_INVALID = 255;

/** Each line goes out at once (stdout is a pipe or a file: Node writes those synchronously). */
function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

const args = parseBankArgs(process.argv.slice(2));
if (!args || exists(args.authFile)) process.exit(EXIT_INVALID);
// The ledger, logs and keys are private to this user.
process.umask(0o077);
const dataDir = fs.mkdtempSync(path.resolve(`${args.authFile}.data-`));
// Warnings and errors only: the bank's stderr is for an operator, not for every connection.
const log = pino({ name: 'bank', level: 'warn', base: undefined }, pino.destination({ dest: 2, sync: true }));

let bank: RunningBank;
try {
  bank = await startBankServer({
    // No host option in the contract: the atm may be told any address of this machine.
    host: '0.0.0.0',
    port: args.port,
    dataDir,
    bcryptCost: DEFAULT_BCRYPT_COST,
    logger: { info: () => {}, warn: (fields, message) => log.warn(fields, message), error: (f, m) => log.error(f, m) },
    events: {
      cardCommitted: (result) =>
        print(
          resultLine(result.account, result.mode, result.mode === 'balance' ? result.balanceCents : result.amountCents),
        ),
      protocolError: () => print('protocol_error'),
    },
  });
  // What every command-line ATM needs: the credential of ATM number 0 (its own
  // terminal key and the bank's public key to pin). Durably, and never over a
  // file that appeared meanwhile.
  writeFileDurably(args.authFile, encodeAtmCredential(bank.credentialFor(CLI_ATM_ID)), { mode: 0o600 });
} catch (error) {
  log.error({ err: error instanceof Error ? error.message : String(error) }, 'bank could not start');
  fs.rmSync(dataDir, { recursive: true, force: true });
  process.exit(EXIT_INVALID);
}
print('created');
log.warn({ dataDir, port: bank.port }, 'bank serving');

exitOnSignals(() => bank.close());
