/**
 * How the ledger's PostgreSQL client library was chosen: the same group
 * transaction (lock the group's accounts, read their journal rows, update
 * balances and append journal and audit rows in bulk, commit), run back to
 * back on one connection and on four, with `pg` and with `postgres`.
 *
 *   npx tsx bench/pg-clients.ts postgres://USER@HOST:PORT/DB [seconds]
 *
 * Prints one JSON line per library and shape. Results are in bench/RESULTS.md.
 */
import pg from 'pg';
import postgres from 'postgres';

const url = process.argv[2];
const seconds = Number(process.argv[3] ?? '5');
if (!url) {
  console.error('usage: npx tsx bench/pg-clients.ts URL [seconds]');
  process.exit(2);
}

const GROUP = 16;
const ACCOUNTS = 1_000;

const SETUP = [
  'DROP TABLE IF EXISTS clients_bench_accounts, clients_bench_journal',
  'CREATE TABLE clients_bench_accounts (id BIGINT PRIMARY KEY, balance_cents BIGINT NOT NULL)',
  `CREATE TABLE clients_bench_journal (account_id BIGINT NOT NULL, tx_id TEXT NOT NULL, amount_cents BIGINT NOT NULL,
     PRIMARY KEY (account_id, tx_id))`,
  `INSERT INTO clients_bench_accounts SELECT g, 0 FROM generate_series(1, ${ACCOUNTS}) g`,
];
const LOCK = 'SELECT id, balance_cents FROM clients_bench_accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE';
const SEEN =
  'SELECT account_id, tx_id FROM clients_bench_journal WHERE account_id = ANY($1::bigint[]) AND tx_id = ANY($2::text[])';
const UPDATE = `UPDATE clients_bench_accounts a SET balance_cents = a.balance_cents + u.amount
  FROM unnest($1::bigint[], $2::bigint[]) AS u(id, amount) WHERE a.id = u.id`;
const INSERT = `INSERT INTO clients_bench_journal (account_id, tx_id, amount_cents)
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[])`;

let counter = 0;
function group(): { ids: string[]; txIds: string[]; amounts: string[] } {
  const ids = new Set<number>();
  while (ids.size < GROUP) ids.add(1 + Math.floor(Math.random() * ACCOUNTS));
  const sorted = [...ids].sort((a, b) => a - b).map(String);
  return { ids: sorted, txIds: sorted.map(() => `tx-${(counter += 1)}`), amounts: sorted.map(() => '100') };
}

async function loop(once: () => Promise<void>, connections: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let groups = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) {
        await once();
        groups += 1;
      }
    }),
  );
  return (groups * GROUP) / seconds;
}

async function withPg(connections: number): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: connections });
  const once = async (): Promise<void> => {
    const client = await pool.connect();
    try {
      const g = group();
      await client.query('BEGIN');
      await client.query(LOCK, [g.ids]);
      await client.query(SEEN, [g.ids, g.txIds]);
      // Queued together; this library still sends one after the other's answer.
      await Promise.all([client.query(UPDATE, [g.ids, g.amounts]), client.query(INSERT, [g.ids, g.txIds, g.amounts])]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  };
  const rate = await loop(once, connections);
  await pool.end();
  return rate;
}

async function withPostgres(connections: number): Promise<number> {
  const sql = postgres(url!, { max: connections, onnotice: () => {} });
  const once = async (): Promise<void> => {
    const g = group();
    await sql.begin(async (tx) => {
      await tx.unsafe(LOCK, [g.ids]);
      await tx.unsafe(SEEN, [g.ids, g.txIds]);
      // The writes do not depend on each other: this library pipelines them.
      await Promise.all([tx.unsafe(UPDATE, [g.ids, g.amounts]), tx.unsafe(INSERT, [g.ids, g.txIds, g.amounts])]);
    });
  };
  const rate = await loop(once, connections);
  await sql.end();
  return rate;
}

const setup = new pg.Client({ connectionString: url });
await setup.connect();
for (const statement of SETUP) await setup.query(statement);
for (const connections of [1, 4]) {
  for (const [library, run] of [
    ['pg', withPg],
    ['postgres', withPostgres],
  ] as const) {
    const movementsPerSecond = await run(connections);
    console.log(
      JSON.stringify({ library, connections, groupSize: GROUP, movementsPerSecond: Math.round(movementsPerSecond) }),
    );
  }
}
await setup.query('DROP TABLE clients_bench_accounts, clients_bench_journal');
await setup.end();
