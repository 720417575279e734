/**
 * `npm run atm -- N [--bank 127.0.0.1:65432[,host:port...]] [--data-dir ./data] [--host 127.0.0.1] [--port P] [--secure-cookies] [--auth-rate-limit 20]`
 */
import { parseArgs } from 'node:util';

import { createLogger } from '../runtime/logger.ts';
import { createProcessRegistry } from '../runtime/metrics.ts';
import { MAX_ATM_NUMBER, startAtm } from './atm.ts';

const USAGE =
  'usage: npm run atm -- N [--bank 127.0.0.1:65432[,host:port...]] [--data-dir ./data] [--host 127.0.0.1] [--port P] [--secure-cookies] ' +
  '[--auth-rate-limit 20 (login and signup attempts per address per 15 minutes)]';

function parseWhole(label: string, value: string | undefined, min: number, max: number): number {
  if (value === undefined || !/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`${label} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      bank: { type: 'string', default: '127.0.0.1:65432' },
      'data-dir': { type: 'string', default: './data' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      'secure-cookies': { type: 'boolean', default: false },
      'auth-rate-limit': { type: 'string', default: '20' },
    },
  });
  if (positionals.length !== 1) throw new Error('give exactly one ATM number');
  const atmId = parseWhole('the ATM number', positionals[0], 1, MAX_ATM_NUMBER);
  const banks = values.bank.split(',').map((address) => {
    const match = /^(.+):([0-9]+)$/.exec(address.trim());
    if (!match) throw new Error('--bank must be host:port, or several separated by commas');
    return { host: match[1] ?? '127.0.0.1', port: parseWhole('--bank port', match[2], 1, 65535) };
  });
  process.umask(0o077);
  const logger = createLogger(`atm-${atmId}`);
  const atm = await startAtm({
    atmId,
    banks,
    dataDir: values['data-dir'],
    host: values.host,
    ...(values.port === undefined ? {} : { port: parseWhole('--port', values.port, 0, 65535) }),
    secureCookies: values['secure-cookies'],
    authRateLimit: {
      windowMs: 15 * 60_000,
      limit: parseWhole('--auth-rate-limit', values['auth-rate-limit'], 1, 1_000_000),
    },
    logger,
    metricsRegistry: createProcessRegistry(),
  });
  console.log(`ATM ${atmId} ready at ${atm.url}`);
  const exit = (code: number): never => {
    logger.flush();
    process.exit(code);
  };
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    atm.close().then(
      () => exit(0),
      () => exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(`ATM failed to start: ${error instanceof Error ? error.message : String(error)}`);
  console.error(USAGE);
  process.exit(1);
});
