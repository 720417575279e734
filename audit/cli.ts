/**
 * The auditor's command:
 *   npm run audit -- decrypt [--data-dir D] [--json]
 *   npm run audit -- verify  [--data-dir D]
 * `verify` exits 0 when the encrypted log is intact and 1 naming the first bad line.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';

import { plainCents } from '../protocol/money.ts';
import { AUDIT_KEY_FILE, readAuditKey } from '../runtime/key-files.ts';
import type { AuditEvent } from './event.ts';
import { verifyLogFile, type VerifiedLog } from './reader.ts';
import { auditPaths } from './writer.ts';

const USAGE = 'usage: npm run audit -- <decrypt|verify> [--data-dir DIR] [--json]';

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
