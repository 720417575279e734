/**
 * `npm run terminal -- [--bank 127.0.0.1:65432] [--auth ./data/atm-9000.key] [--idle-timeout-seconds 120]`
 * `--auth` is a terminal's credential: one from `npm run bank -- provision-atm N`, or bin/bank's auth file.
 * (also `bin/terminal`): the interactive terminal ATM; see `terminal.ts`.
 */
import { parseArgs } from 'node:util';

import { BankClient } from '../protocol/client.ts';
import type { AtmCredential } from '../protocol/handshake.ts';
import { readAtmCredential } from '../runtime/key-files.ts';
import { Prompter } from './prompter.ts';
import { EXIT_BANK_LOST, EXIT_INTERRUPTED, runTerminal } from './terminal.ts';

const USAGE = 'usage: npm run terminal -- [--bank host:port] [--auth FILE] [--idle-timeout-seconds N]';

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

let values: { bank: string; auth: string; 'idle-timeout-seconds': string };
try {
  ({ values } = parseArgs({
    options: {
      bank: { type: 'string', default: '127.0.0.1:65432' },
      auth: { type: 'string', default: 'data/atm-9000.key' },
      'idle-timeout-seconds': { type: 'string', default: '120' },
    },
  }));
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const address = /^(.+):([0-9]{1,5})$/.exec(values.bank);
const port = Number(address?.[2]);
if (!address || port < 1 || port > 65535) fail('--bank must be host:port');
const idleSeconds = values['idle-timeout-seconds'];
if (!/^[1-9][0-9]{0,5}$/.test(idleSeconds)) fail('--idle-timeout-seconds must be a whole number from 1 to 999999');
let credential: AtmCredential;
try {
  credential = readAtmCredential(values.auth);
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
const prompter = new Prompter(process.stdin, process.stdout, tty);
// On a pipe Ctrl-C arrives as a signal (on a terminal readline reports it itself).
process.on('SIGINT', () => prompter.interrupt('interrupt'));
process.on('SIGTERM', () => prompter.interrupt('interrupt'));

let client: BankClient;
try {
  client = await BankClient.connect({ host: address[1] ?? '', port, credential });
} catch {
  prompter.say(`The bank at ${values.bank} is unavailable. Please try again later.`);
  prompter.close();
  process.exit(EXIT_BANK_LOST);
}
prompter.say(`Secure ATM terminal, connected to the bank at ${values.bank}.`);
const code = await runTerminal({ prompter, client, idleMs: Number(idleSeconds) * 1000 });
client.close();
prompter.close();
process.exitCode = code;
// Do not wait on the bank or the terminal any longer than it takes to flush.
setTimeout(() => process.exit(code), code === EXIT_INTERRUPTED ? 0 : 100).unref();
