/**
 * PostgreSQL for the tests. CI (`.ci/run`) starts a throwaway cluster and
 * exports TEST_POSTGRES_URL; without it the PostgreSQL halves of the suites
 * are skipped with a message saying so. Each caller gets a database of its
 * own, so test files run in parallel without seeing each other's rows.
 */
import pg from 'pg';

export const TEST_POSTGRES_URL = process.env.TEST_POSTGRES_URL ?? '';

export const SKIP_POSTGRES_REASON = TEST_POSTGRES_URL
  ? ''
  : 'PostgreSQL tests skipped: set TEST_POSTGRES_URL (CI does; see .ci/run) to run them';

if (SKIP_POSTGRES_REASON) console.warn(SKIP_POSTGRES_REASON);

export type TestDatabase = { url: string; drop(): Promise<void> };

let databases = 0;

/** A fresh, empty database on the test cluster. */
export async function createTestDatabase(): Promise<TestDatabase> {
  databases += 1;
  const name = `atm_test_${process.pid}_${Date.now()}_${databases}`;
  const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Runs one query against a test database and returns its rows. */
export async function queryRows<T extends pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}
