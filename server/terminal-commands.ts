/**
 * `npm run bank -- provision-atm N [--data-dir ./data] [--out FILE]` and
 * `npm run bank -- revoke-atm N [--data-dir ./data]`: the operator's commands
 * for terminals. Provisioning prints the credential file's path (the only
 * thing on stdout); revoking writes the list a running bank polls, which
 * audits the revocation (`atm_revoked`) and cuts the ATM if it is connected;
 * a bank that is not running audits it at its next start.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';

import { secureRandom } from '../protocol/crypto.ts';
import { prepareDataDir } from './data-dir.ts';
import { Terminals } from './terminals.ts';

export const TERMINAL_COMMANDS = ['provision-atm', 'revoke-atm'] as const;
export type TerminalCommand = (typeof TERMINAL_COMMANDS)[number];

const USAGE =
  'usage: npm run bank -- provision-atm N [--data-dir ./data] [--out FILE]\n' +
  '       npm run bank -- revoke-atm N [--data-dir ./data]';

export function isTerminalCommand(word: string | undefined): word is TerminalCommand {
  return (TERMINAL_COMMANDS as readonly string[]).includes(word ?? '');
}

/** Runs one command; returns the exit code. */
export function runTerminalCommand(
  command: TerminalCommand,
  args: string[],
  out: (line: string) => void,
  err: (line: string) => void,
  now: () => Date = () => new Date(),
): number {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { 'data-dir': { type: 'string', default: './data' }, out: { type: 'string' } },
    });
    const number = positionals[0] ?? '';
    if (positionals.length !== 1 || !/^[0-9]{1,5}$/.test(number) || Number(number) > 65535) {
      throw new Error('N must be an ATM number from 0 to 65535');
    }
    const atmId = Number(number);
    const dataDir = values['data-dir'];
    if (command === 'provision-atm') {
      // Every file here is private to the operator, as the bank's are.
      process.umask(0o077);
      prepareDataDir(dataDir, secureRandom);
      const file = values.out === undefined ? undefined : path.resolve(values.out);
      out(Terminals.open(dataDir).provision(atmId, file).file);
      return 0;
    }
    if (values.out !== undefined) throw new Error('--out is for provision-atm');
    const revoked = Terminals.open(dataDir).revoke(atmId, now());
    out(revoked ? `ATM ${atmId} revoked` : `ATM ${atmId} was already revoked`);
    return 0;
  } catch (error) {
    err(`${command} failed: ${error instanceof Error ? error.message : String(error)}`);
    err(USAGE);
    return 1;
  }
}
