/**
 * `npm run bank -- [--host 127.0.0.1] [--port 65432] [--data-dir ./data] [--bcrypt-cost 12]`
 */
import { parseArgs } from 'node:util';

import { DEFAULT_BCRYPT_COST, startBankServer } from './bank-server.ts';
import { createLogger } from './logger.ts';

const USAGE = 'usage: npm run bank -- [--host 127.0.0.1] [--port 65432] [--data-dir ./data] [--bcrypt-cost 12]';

function parseIntegerOption(name: string, value: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`--${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '65432' },
      'data-dir': { type: 'string', default: './data' },
      'bcrypt-cost': { type: 'string', default: String(DEFAULT_BCRYPT_COST) },
    },
  });
  // Every file the bank creates (ledger, WAL, logs, keys) is private to its user.
  process.umask(0o077);
  const logger = createLogger('bank');
  const bank = await startBankServer({
    host: values.host,
    port: parseIntegerOption('port', values.port, 0, 65535),
    dataDir: values['data-dir'],
    bcryptCost: parseIntegerOption('bcrypt-cost', values['bcrypt-cost'], 4, 31),
    logger,
  });
  // A stable line tests and scripts can wait for (the port may be ephemeral).
  console.log(`bank listening on ${bank.host}:${bank.port}`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ action: 'shutdown', outcome: signal }, 'finishing in-flight work');
    bank.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error(`bank failed to start: ${error instanceof Error ? error.message : String(error)}`);
  console.error(USAGE);
  process.exit(1);
});
