/**
 * `npm run atm -- N [--bank 127.0.0.1:65432[,host:port...]] [--data-dir ./data] [--host 127.0.0.1] [--port P] [--secure-cookies] [--auth-rate-limit 20] [--signup-rate-limit 5]`
 *   plus the HTTP server's limits (defaults in DEFAULT_HTTP_LIMITS, documented in SECURITY.md):
 *   [--max-connections 2000] [--max-connections-per-address 64] [--request-timeout-ms 30000]
 *   [--keep-alive-timeout-ms 5000] [--max-requests-per-socket 1000] [--max-web-sessions 10000]
 */
import { parseArgs } from 'node:util';

import { exitOnSignals } from '../runtime/exit-on-signals.ts';
import { createLogger } from '../runtime/logger.ts';
import { createProcessRegistry } from '../runtime/metrics.ts';
import { MAX_ATM_NUMBER, startAtm } from './atm.ts';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from './http-limits.ts';
import { DEFAULT_MAX_SESSIONS } from './session-store.ts';

const USAGE =
  'usage: npm run atm -- N [--bank 127.0.0.1:65432[,host:port...]] [--data-dir ./data] [--host 127.0.0.1] [--port P] [--secure-cookies] ' +
  '[--auth-rate-limit 20 (login and signup attempts per address per 15 minutes)] ' +
  '[--signup-rate-limit 5 (signups per address per hour)] ' +
  '[--max-connections N] [--max-connections-per-address N] [--request-timeout-ms N] [--keep-alive-timeout-ms N] ' +
  '[--max-requests-per-socket N] [--max-web-sessions N]';

/** Each HTTP limit flag: its name, the HttpLimits field, and its allowed range. */
const LIMIT_FLAGS: Array<[string, keyof HttpLimits, number, number]> = [
  ['max-connections', 'maxConnections', 1, 100_000],
  ['max-connections-per-address', 'maxConnectionsPerAddress', 1, 100_000],
  ['request-timeout-ms', 'requestTimeoutMs', 1_000, 300_000],
  ['keep-alive-timeout-ms', 'keepAliveTimeoutMs', 100, 600_000],
  ['max-requests-per-socket', 'maxRequestsPerSocket', 1, 1_000_000],
];

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
      'signup-rate-limit': { type: 'string', default: '5' },
      'max-web-sessions': { type: 'string', default: String(DEFAULT_MAX_SESSIONS) },
      ...Object.fromEntries(
        LIMIT_FLAGS.map(([flag, field]) => [
          flag,
          { type: 'string' as const, default: String(DEFAULT_HTTP_LIMITS[field]) },
        ]),
      ),
    },
  });
  const httpLimits: Partial<HttpLimits> = {};
  for (const [flag, field, min, max] of LIMIT_FLAGS) {
    httpLimits[field] = parseWhole(`--${flag}`, String(values[flag as keyof typeof values]), min, max);
  }
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
    signupRateLimit: {
      windowMs: 60 * 60_000,
      limit: parseWhole('--signup-rate-limit', values['signup-rate-limit'], 1, 1_000_000),
    },
    httpLimits,
    maxWebSessions: parseWhole('--max-web-sessions', values['max-web-sessions'], 1, 10_000_000),
    logger,
    metricsRegistry: createProcessRegistry(),
  });
  console.log(`ATM ${atmId} ready at ${atm.url}`);
  exitOnSignals(
    () => atm.close(),
    () => logger.flush(),
  );
}

main().catch((error: unknown) => {
  console.error(`ATM failed to start: ${error instanceof Error ? error.message : String(error)}`);
  console.error(USAGE);
  process.exit(1);
});
