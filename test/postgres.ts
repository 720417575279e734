/**
 * PostgreSQL for the tests. CI (`.ci/run`) starts a throwaway cluster and
 * exports TEST_POSTGRES_URL; without it the PostgreSQL halves of the suites
 * are skipped with a message saying so. Each caller gets a database of its
 * own, so test files run in parallel without seeing each other's rows.
 */
import fs from 'node:fs';
import path from 'node:path';

import pg from 'pg';

import { SHARED_KEY_FILES } from '../cluster/cluster.ts';
import { BankClient } from '../protocol/client.ts';
import { credentialFor, tempDir } from './helpers.ts';
import { spawnBank, type Spawned } from './process.ts';

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

export type SpawnedNode = Spawned & { dataDir: string; port: number };

/**
 * Bank nodes as real processes on one PostgreSQL ledger, each with its own
 * data dir holding copies of the first node's shared keys (as an operator
 * would copy them). The caller kills them.
 */
export async function spawnNodes(url: string, count: number): Promise<SpawnedNode[]> {
  const nodes: SpawnedNode[] = [];
  for (let i = 0; i < count; i += 1) {
    const dataDir = tempDir();
    const first = nodes[0];
    if (first) {
      for (const file of SHARED_KEY_FILES) fs.copyFileSync(path.join(first.dataDir, file), path.join(dataDir, file));
    }
    const node = await spawnBank(dataDir, ['--ledger', url, '--node-id', `node-${i + 1}`]);
    nodes.push({ ...node, dataDir });
  }
  return nodes;
}

/**
 * Two bank nodes on one fresh database, and the clients a test connects to
 * them. Call `cleanup()` in `afterEach`: it closes the clients, kills the
 * nodes and drops the database.
 */
export class NodePair {
  private readonly clients: BankClient[] = [];
  private spawned: SpawnedNode[] = [];
  private database: TestDatabase | null = null;

  async start(): Promise<{ nodes: [SpawnedNode, SpawnedNode]; url: string }> {
    this.database = await createTestDatabase();
    this.spawned = await spawnNodes(this.database.url, 2);
    const [a, b] = this.spawned;
    if (!a || !b) throw new Error('nodes did not start');
    return { nodes: [a, b], url: this.database.url };
  }

  /** A client of `node` as ATM `atmId`, with that ATM's credential; closed by `cleanup()`. */
  async connect(node: SpawnedNode, atmId = 1): Promise<BankClient> {
    const client = await BankClient.connect({
      host: '127.0.0.1',
      port: node.port,
      credential: credentialFor(node.dataDir, atmId),
      handshakeTimeoutMs: 5_000,
    });
    this.clients.push(client);
    return client;
  }

  async cleanup(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    for (const node of this.spawned.splice(0)) node.child.kill('SIGKILL');
    await this.database?.drop();
    this.database = null;
  }
}
