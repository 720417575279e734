/**
 * `npm run --silent audit -- <decrypt|verify|summary|reconcile> ...`: the
 * auditor's command (audit/cli.ts), given the SQLite ledger reader it needs
 * for reconcile. Lives here because it joins audit/ and server/, which never
 * import each other in that direction.
 */
import path from 'node:path';

import { runAuditCommand } from '../audit/cli.ts';
import { LEDGER_FILE } from '../server/data-dir.ts';
import { readSqliteLedgerSnapshot } from '../server/ledger-snapshot.ts';

process.exitCode = await runAuditCommand(
  process.argv.slice(2),
  (line) => process.stdout.write(`${line}\n`),
  (line) => process.stderr.write(`${line}\n`),
  { readLedger: (dataDir) => readSqliteLedgerSnapshot(path.join(dataDir, LEDGER_FILE)) },
);
