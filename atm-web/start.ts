/**
 * `npm start`: the bank and ATM 1 in one process with embedded defaults
 * (./data, bank on 127.0.0.1:65432, ATM 1 on http://127.0.0.1:5001).
 * The first run on a fresh clone creates everything; Ctrl-C stops both cleanly.
 */
import { DEFAULT_BCRYPT_COST, startBankServer } from '../server/bank-server.ts';
import { createLogger } from '../server/logger.ts';
import { startAtm } from './atm.ts';

const DATA_DIR = process.env.ATM_DATA_DIR ?? './data';
const HOST = '127.0.0.1';
const BANK_PORT = 65432;

async function main(): Promise<void> {
  process.umask(0o077);
  const bank = await startBankServer({
    host: HOST,
    port: BANK_PORT,
    dataDir: DATA_DIR,
    bcryptCost: DEFAULT_BCRYPT_COST,
    logger: createLogger('bank'),
  });
  const atm = await startAtm({ atmId: 1, bankHost: HOST, bankPort: bank.port, dataDir: DATA_DIR, host: HOST, logger: createLogger('atm-1') });
  console.log(`\n  Bank listening on ${HOST}:${bank.port} (data in ${DATA_DIR})`);
  console.log(`  ATM 1 ready: open ${atm.url} in your browser`);
  console.log('  Press Ctrl-C to stop.\n');
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    atm
      .close()
      .then(() => bank.close())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(`could not start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
