import { runAuditCli } from './cli.ts';

process.exitCode = runAuditCli(
  process.argv.slice(2),
  (line) => console.log(line),
  (line) => console.error(line),
);
