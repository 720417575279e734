/**
 * `npm run bank -- [--host 127.0.0.1] [--port 65432] [--data-dir ./data] [--bcrypt-cost 12]`
 *   [--ledger postgres://USER@HOST:PORT/DB] [--node-id NAME] [--log-level info]
 *   plus the denial-of-service limits (defaults in DEFAULT_LIMITS, documented in SECURITY.md):
 *   [--max-frame-bytes 4096] [--handshake-timeout-ms 5000] [--idle-timeout-ms 600000]
 *   [--max-connections 1024] [--max-handshaking 128] [--max-sessions-per-connection 1000] [--max-sessions-per-customer 4]
 *   and the operator interface: [--admin-port P] [--admin-host 127.0.0.1] (off unless a port is given)
 *   and the password checker's pool (defaults in DEFAULT_POOL_OPTIONS):
 *   [--password-workers <cores>] [--password-queue 128] [--password-queue-per-source 16] [--password-wait-ms 10000]
 * `npm run bank -- provision-atm N | revoke-atm N [--data-dir ./data]`: see terminal-commands.ts
 */
import { parseArgs } from 'node:util';

import { FRAME_BODY_LIMIT } from '../protocol/frame.ts';
import { DEFAULT_BCRYPT_COST, DEFAULT_LIMITS, startBankServer, type BankLimits } from './bank-server.ts';
import { exitOnSignals } from '../runtime/exit-on-signals.ts';
import { LOG_LEVELS, createLogger, isLogLevel } from '../runtime/logger.ts';
import { DEFAULT_POOL_OPTIONS, type PoolOptions } from './password-hasher.ts';
import { formatServiceReport } from './service-report.ts';
import { isTerminalCommand, runTerminalCommand } from './terminal-commands.ts';

const USAGE =
  'usage: npm run bank -- [--host 127.0.0.1] [--port 65432] [--data-dir ./data] [--bcrypt-cost 12] ' +
  '[--ledger postgres://USER@HOST:PORT/DB] [--node-id NAME] [--log-level debug|info|warn|error] ' +
  '[--max-frame-bytes N] [--handshake-timeout-ms N] [--idle-timeout-ms N] [--max-connections N] ' +
  '[--max-handshaking N] [--max-sessions-per-connection N] [--max-sessions-per-customer N] [--admin-port P] [--admin-host 127.0.0.1] ' +
  '[--password-workers N] [--password-queue N] [--password-queue-per-source N] [--password-wait-ms N]';

function whole(name: string, value: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new Error(`--${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

/** Each limit flag: its name, the BankLimits field, and its allowed range. */
const LIMIT_FLAGS: Array<[string, keyof BankLimits, number, number]> = [
  ['max-frame-bytes', 'maxFrameBody', 256, FRAME_BODY_LIMIT],
  ['handshake-timeout-ms', 'handshakeTimeoutMs', 100, 60_000],
  ['idle-timeout-ms', 'idleTimeoutMs', 1_000, 86_400_000],
  ['max-connections', 'maxConnections', 1, 100_000],
  ['max-handshaking', 'maxHandshaking', 1, 100_000],
  ['max-sessions-per-connection', 'maxSessionsPerConnection', 1, 100_000],
  ['max-sessions-per-customer', 'maxSessionsPerCustomer', 1, 100_000],
];

/** Only PostgreSQL URLs; the URL itself is never printed, since it may hold a password. */
function ledgerUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^postgres(ql)?:\/\//.test(value)) throw new Error('--ledger must be a postgres:// or postgresql:// URL');
  return value;
}

/** Each password-pool flag: its name, the PoolOptions field, and its allowed range. */
const POOL_FLAGS: Array<[string, 'workers' | 'maxQueued' | 'maxPerSource' | 'maxWaitMs', number, number]> = [
  ['password-workers', 'workers', 1, 256],
  ['password-queue', 'maxQueued', 1, 100_000],
  ['password-queue-per-source', 'maxPerSource', 1, 100_000],
  ['password-wait-ms', 'maxWaitMs', 100, 60_000],
];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '65432' },
      'data-dir': { type: 'string', default: './data' },
      'bcrypt-cost': { type: 'string', default: String(DEFAULT_BCRYPT_COST) },
      ledger: { type: 'string' },
      'node-id': { type: 'string' },
      'log-level': { type: 'string', default: 'info' },
      'admin-port': { type: 'string' },
      'admin-host': { type: 'string', default: '127.0.0.1' },
      ...Object.fromEntries(
        LIMIT_FLAGS.map(([flag, field]) => [flag, { type: 'string' as const, default: String(DEFAULT_LIMITS[field]) }]),
      ),
      ...Object.fromEntries(
        POOL_FLAGS.map(([flag, field]) => [
          flag,
          { type: 'string' as const, default: String(DEFAULT_POOL_OPTIONS[field]) },
        ]),
      ),
    },
  });
  const text = (name: string): string => String(values[name as keyof typeof values]);
  const limits: Partial<BankLimits> = {};
  for (const [flag, field, min, max] of LIMIT_FLAGS) limits[field] = whole(flag, text(flag), min, max);
  const passwordPool: Partial<PoolOptions> = {};
  for (const [flag, field, min, max] of POOL_FLAGS) passwordPool[field] = whole(flag, text(flag), min, max);
  // Every file the bank creates (ledger, WAL, logs, keys) is private to its user.
  process.umask(0o077);
  const adminPort = values['admin-port'] === undefined ? null : whole('admin-port', values['admin-port'], 0, 65535);
  const level = text('log-level');
  if (!isLogLevel(level)) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const logger = createLogger('bank', level);
  const bank = await startBankServer({
    host: text('host'),
    port: whole('port', text('port'), 0, 65535),
    dataDir: text('data-dir'),
    bcryptCost: whole('bcrypt-cost', text('bcrypt-cost'), 4, 31),
    limits,
    ledgerUrl: ledgerUrl(values.ledger),
    nodeId: values['node-id'],
    isolatePasswordHashing: true,
    passwordPool,
    logger,
    ...(adminPort === null
      ? {}
      : {
          admin: { host: text('admin-host'), port: adminPort },
          // Metrics are collected only when an admin port can serve them (prom-client costs ~11 MB).
          metricsRegistry: (await import('../runtime/metrics.ts')).createProcessRegistry(),
        }),
  });
  // `kill -USR2 <pid>`: print the time requests spent inside the bank since
  // the last report, and start a new window (operators and the benchmark use it).
  const reportServiceTimes = (reset: boolean): void => {
    console.log(formatServiceReport(bank.serviceTimes(reset)));
  };
  process.on('SIGUSR2', () => reportServiceTimes(true));
  exitOnSignals(
    async (signal) => {
      logger.info({ action: 'shutdown', outcome: signal }, 'finishing in-flight work');
      reportServiceTimes(false);
      await bank.close();
    },
    () => logger.flush(),
  );
  // A stable line tests and scripts can wait for (the port may be ephemeral). Printed only
  // once the signal handlers are in place: a SIGTERM sent on seeing it stops the bank cleanly.
  console.log(`bank listening on ${bank.host}:${bank.port} (pid ${process.pid})`);
  if (bank.adminUrl) console.log(`bank operator page at ${bank.adminUrl}/ (also /healthz, /metrics)`);
}

const [command, ...rest] = process.argv.slice(2);
if (isTerminalCommand(command)) {
  void runTerminalCommand(command, rest, console.log, console.error).then((code) => (process.exitCode = code));
} else {
  main().catch((error: unknown) => {
    console.error(`bank failed to start: ${error instanceof Error ? error.message : String(error)}`);
    console.error(USAGE);
    process.exit(1);
  });
}
