import { runAuditCommand } from './cli.ts';

process.exitCode = await runAuditCommand(
  process.argv.slice(2),
  (line) => console.log(line),
  (line) => console.error(line),
);
