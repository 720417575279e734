/**
 * `tsx bin/local-postgres.ts start DIR` starts a throwaway PostgreSQL in
 * DIR and prints its URL (and nothing else) on stdout; `stop DIR` stops it.
 * CI uses it to give the tests a PostgreSQL (`TEST_POSTGRES_URL`).
 */
import { startLocalPostgres, stopLocalPostgres } from '../cluster/local-postgres.ts';

const [command, dir] = process.argv.slice(2);
if ((command !== 'start' && command !== 'stop') || !dir) {
  console.error('usage: tsx bin/local-postgres.ts <start|stop> DIR');
  process.exit(2);
}
if (command === 'stop') {
  stopLocalPostgres(dir);
} else {
  startLocalPostgres(dir, { settings: { max_connections: '300' } }).then(
    (cluster) => console.log(cluster.url),
    (error: unknown) => {
      console.error(`cannot start PostgreSQL in ${dir}: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
