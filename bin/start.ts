/**
 * `npm start [-- --data-dir ./data --bank-port 65432 --port 5001 --admin-port P]`:
 * the bank and ATM 1 in one process with embedded defaults. The first run on
 * a fresh clone creates everything; Ctrl-C stops both cleanly (ATM first,
 * then the bank finishes in-flight work); `kill -USR2 <pid>` prints the
 * bank's service-time report, as under `npm run bank`.
 */
import { parseArgs } from 'node:util';

import { DEFAULT_BCRYPT_COST, startBankServer } from '../server/bank-server.ts';
import { Terminals } from '../server/terminals.ts';
import { exitOnSignals } from '../runtime/exit-on-signals.ts';
import { createLogger } from '../runtime/logger.ts';
import { createProcessRegistry } from '../runtime/metrics.ts';
import { formatServiceReport } from '../server/service-report.ts';
import { ATM_PORT_BASE, startAtm } from '../atm-web/atm.ts';

const HOST = '127.0.0.1';

function port(label: string, value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) > 65535) throw new Error(`${label} must be a port number`);
  return Number(value);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string', default: './data' },
      'bank-port': { type: 'string', default: '65432' },
      port: { type: 'string', default: String(ATM_PORT_BASE + 1) },
      'admin-port': { type: 'string' },
    },
  });
  const dataDir = values['data-dir'];
  process.umask(0o077);
  const bankLogger = createLogger('bank');
  const atmLogger = createLogger('atm-1');
  // One registry for the process: the bank's and the ATM's /metrics both show it.
  const metricsRegistry = createProcessRegistry();
  const bank = await startBankServer({
    host: HOST,
    port: port('--bank-port', values['bank-port']),
    dataDir,
    bcryptCost: DEFAULT_BCRYPT_COST,
    isolatePasswordHashing: true,
    logger: bankLogger,
    metricsRegistry,
    ...(values['admin-port'] === undefined
      ? {}
      : { admin: { host: HOST, port: port('--admin-port', values['admin-port']) } }),
  });
  // ATM 1 shares the bank's data directory here, so it gets its own key file there.
  Terminals.open(dataDir).provision(1);
  const atm = await startAtm({
    atmId: 1,
    banks: [{ host: HOST, port: bank.port }],
    dataDir,
    host: HOST,
    port: port('--port', values.port),
    logger: atmLogger,
    metricsRegistry,
  });
  console.log(`\n  Bank listening on ${HOST}:${bank.port} (data in ${dataDir})`);
  console.log(`  ATM 1 ready: open ${atm.url} in your browser`);
  if (bank.adminUrl) console.log(`  Operator page: ${bank.adminUrl}/ (also /healthz, /metrics)`);
  console.log(`  Service-time report: kill -USR2 ${process.pid}`);
  console.log('  Press Ctrl-C to stop.\n');
  process.on('SIGUSR2', () => console.log(formatServiceReport(bank.serviceTimes(true))));
  exitOnSignals(
    () => atm.close().then(() => bank.close()),
    () => {
      bankLogger.flush();
      atmLogger.flush();
    },
  );
}

main().catch((error: unknown) => {
  console.error(`could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
