/**
 * The auditor's command:
 *   npm run audit -- decrypt [--data-dir D] [--json]
 *   npm run audit -- verify  [--data-dir D]
 *   npm run audit -- decrypt|verify --ledger postgres://... [--data-dir D] [--json]
 * `verify` exits 0 when the encrypted log is intact and 1 naming the first bad line.
 * With `--ledger` it reads every node's chain from the shared PostgreSQL
 * ledger instead (the key still comes from the data dir's audit.key).
 */
import path from 'node:path';
import { parseArgs } from 'node:util';

import { plainCents } from '../protocol/money.ts';
import { AUDIT_KEY_FILE, readAuditKey } from '../runtime/key-files.ts';
import type { AuditEvent } from './event.ts';
import { verifyLedgerChains, type VerifiedChain } from './postgres-reader.ts';
import { verifyLogFile, type VerifiedLog } from './reader.ts';
import { auditPaths } from './writer.ts';

const USAGE = 'usage: npm run audit -- <decrypt|verify> [--data-dir DIR] [--ledger postgres://...] [--json]';

function describe(event: AuditEvent): string {
  const amount = event.amountCents === null ? '-' : plainCents(event.amountCents);
  const detail = event.detail === undefined ? '' : `  (${event.detail})`;
  return `${event.at}  atm=${event.atm ?? '-'}  user=${event.user ?? '-'}  ${event.action}  ${amount}  ${event.outcome}${detail}`;
}

export function runAuditCli(argv: string[], out: (line: string) => void, err: (line: string) => void): number {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { 'data-dir': { type: 'string', default: './data' }, json: { type: 'boolean', default: false } },
    });
  } catch (error) {
    err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const command = parsed.positionals[0];
  if ((command !== 'decrypt' && command !== 'verify') || parsed.positionals.length !== 1) {
    err(USAGE);
    return 2;
  }
  const dataDir = parsed.values['data-dir'];
  let log: VerifiedLog;
  try {
    const key = readAuditKey(path.join(dataDir, AUDIT_KEY_FILE));
    log = verifyLogFile(key, auditPaths(dataDir).encrypted);
  } catch (error) {
    err(
      `cannot read the audit log in ${dataDir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
    return 2;
  }
  if (command === 'decrypt') {
    for (const entry of log.entries) out(parsed.values.json ? JSON.stringify(entry) : describe(entry));
  }
  if (log.firstBad) {
    err(`audit log NOT intact: line ${log.firstBad.line}: ${log.firstBad.reason}`);
    return 1;
  }
  if (command === 'verify') out(`audit log intact: ${log.entries.length} lines verified`);
  return 0;
}

/** The command as `npm run audit` runs it: the files, or with `--ledger` every node's chain in PostgreSQL. */
export async function runAuditCommand(
  argv: string[],
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  if (!argv.some((arg) => arg === '--ledger' || arg.startsWith('--ledger='))) return runAuditCli(argv, out, err);
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string', default: './data' },
        json: { type: 'boolean', default: false },
        ledger: { type: 'string' },
      },
    });
  } catch (error) {
    err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const command = parsed.positionals[0];
  const url = parsed.values.ledger ?? '';
  if ((command !== 'decrypt' && command !== 'verify') || parsed.positionals.length !== 1 || !url) {
    err(USAGE);
    return 2;
  }
  let chains: VerifiedChain[];
  try {
    const key = readAuditKey(path.join(parsed.values['data-dir'], AUDIT_KEY_FILE));
    chains = await verifyLedgerChains(url, key);
  } catch (error) {
    // Never the URL itself: it may hold a password.
    err(
      `cannot read the audit chains from the ledger: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
    return 2;
  }
  let intact = true;
  for (const chain of chains) {
    if (command === 'decrypt') {
      for (const entry of chain.entries) {
        out(
          parsed.values.json ? JSON.stringify({ node: chain.nodeId, ...entry }) : `${chain.nodeId}  ${describe(entry)}`,
        );
      }
    }
    if (chain.firstBad) {
      intact = false;
      err(`audit chain of node ${chain.nodeId} NOT intact: line ${chain.firstBad.seq}: ${chain.firstBad.reason}`);
    } else if (command === 'verify') {
      out(`audit chain of node ${chain.nodeId} intact: ${chain.entries.length} lines verified`);
    }
  }
  return intact ? 0 : 1;
}
