/**
 * `npm run bank -- provision-atm N [--data-dir ./data] [--out FILE]` and
 * `npm run bank -- revoke-atm N [--data-dir ./data] [--ledger URL]`: the
 * operator's commands for terminals. Provisioning prints the credential file's path (the only
 * thing on stdout); revoking writes the list a running bank polls, which
 * audits the revocation (`atm_revoked`) and cuts the ATM if it is connected;
 * a bank that is not running audits it at its next start. With `--ledger`,
 * the revocation is also written to the shared ledger, which every running
 * node polls (server/cluster-signals.ts), so it reaches a cluster even when
 * the node of that data dir is down.
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
  '       npm run bank -- revoke-atm N [--data-dir ./data] [--ledger postgres://USER@HOST:PORT/DB]';

export function isTerminalCommand(word: string | undefined): word is TerminalCommand {
  return (TERMINAL_COMMANDS as readonly string[]).includes(word ?? '');
}

/** Runs one command; resolves with the exit code. */
export async function runTerminalCommand(
  command: TerminalCommand,
  args: string[],
  out: (line: string) => void,
  err: (line: string) => void,
  now: () => Date = () => new Date(),
): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string', default: './data' },
        out: { type: 'string' },
        ledger: { type: 'string' },
      },
    });
    const number = positionals[0] ?? '';
    if (positionals.length !== 1 || !/^[0-9]{1,5}$/.test(number) || Number(number) > 65535) {
      throw new Error('N must be an ATM number from 0 to 65535');
    }
    const atmId = Number(number);
    const dataDir = values['data-dir'];
    if (command === 'provision-atm') {
      if (values.ledger !== undefined) throw new Error('--ledger is for revoke-atm');
      // Every file here is private to the operator, as the bank's are.
      process.umask(0o077);
      prepareDataDir(dataDir, secureRandom);
      const file = values.out === undefined ? undefined : path.resolve(values.out);
      out(Terminals.open(dataDir).provision(atmId, file).file);
      return 0;
    }
    if (values.out !== undefined) throw new Error('--out is for provision-atm');
    const url = values.ledger;
    if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) {
      throw new Error('--ledger must be a postgres:// or postgresql:// URL');
    }
    const terminals = Terminals.open(dataDir);
    const revoked = terminals.revoke(atmId, now());
    const revocation = terminals.revocations().find(({ atm }) => atm === atmId);
    if (url !== undefined && revocation) {
      // Loaded only here, so the other commands and an embedded bank do not carry the pg client.
      const { publishRevocation } = await import('./cluster-signals.ts');
      await publishRevocation(url, revocation);
    }
    out(revoked ? `ATM ${atmId} revoked` : `ATM ${atmId} was already revoked`);
    return 0;
  } catch (error) {
    err(`${command} failed: ${error instanceof Error ? error.message : String(error)}`);
    err(USAGE);
    return 1;
  }
}
