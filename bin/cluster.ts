/**
 * `npm run cluster -- [--data-dir ./data-cluster]`: a throwaway PostgreSQL
 * in the data dir, two bank nodes on it (127.0.0.1:65501 and :65502) and
 * ATMs 1 and 2 (http://127.0.0.1:5001 and :5002) that fail over between
 * the nodes. Prints the addresses; Ctrl-C stops all of it.
 */
import { parseArgs } from 'node:util';

import { startCluster } from '../cluster/cluster.ts';
import { exitOnSignals } from '../runtime/exit-on-signals.ts';

const USAGE = 'usage: npm run cluster -- [--data-dir ./data-cluster]';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { 'data-dir': { type: 'string', default: './data-cluster' } } });
  process.umask(0o077);
  const cluster = await startCluster({
    dir: values['data-dir'],
    nodePorts: [65501, 65502],
    atms: [
      { id: 1, port: 5001 },
      { id: 2, port: 5002 },
    ],
    log: (line) => console.error(line),
  });
  console.log(
    [
      'cluster running:',
      '  PostgreSQL  the ledger, in ' + `${values['data-dir']}/postgres`,
      ...cluster.nodes.map((node) => `  ${node.name}      bank node at ${node.address} (data dir ${node.dataDir})`),
      ...cluster.atms.map((atm) => `  ATM ${atm.id}       ${atm.url}`),
      'Ctrl-C stops all of it.',
    ].join('\n'),
  );
  exitOnSignals(() => cluster.stop());
}

main().catch((error: unknown) => {
  console.error(`cluster failed to start: ${error instanceof Error ? error.message : String(error)}`);
  console.error(USAGE);
  process.exit(1);
});
