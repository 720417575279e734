/**
 * Versioned schema migrations for the PostgreSQL ledger. Each file
 * `migrations/NNN-name.sql` is applied once, in order, in its own
 * transaction together with its row in `schema_migrations`, so a crash
 * mid-way leaves the schema at the previous version. A node refuses to start
 * against a schema newer than the newest migration it knows: it would not
 * know what the newer columns and rules mean.
 *
 * Several nodes may start at once: the loser of a race fails on the
 * version's primary key (or on the table it was creating), rolls back and
 * looks again. No advisory locks, which CockroachDB does not have.
 */
import fs from 'node:fs';
import path from 'node:path';

import type pg from 'pg';

export type Migration = { version: number; name: string; sql: string };

const MIGRATIONS_DIR = path.join(import.meta.dirname, 'migrations');
const FILE_PATTERN = /^([0-9]{3})-([a-z0-9-]+)\.sql$/;

export type SchemaErrorCode = 'ERR_SCHEMA_NEWER' | 'ERR_MIGRATION_FILES';

/** Why a node will not run on this database (listed in docs/errors.md). */
export class SchemaError extends Error {
  override readonly name = 'SchemaError';
  constructor(
    readonly code: SchemaErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = fs
    .readdirSync(dir)
    .map((file) => ({ file, match: FILE_PATTERN.exec(file) }))
    .filter((entry): entry is { file: string; match: RegExpExecArray } => entry.match !== null)
    .map(({ file, match }) => ({
      version: Number(match[1]),
      name: match[2] ?? file,
      sql: fs.readFileSync(path.join(dir, file), 'utf8'),
    }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1)
      throw new SchemaError('ERR_MIGRATION_FILES', `migration versions must run 1, 2, 3...: ${dir}`);
  });
  return migrations;
}

const CREATE_VERSIONS = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`;

async function currentVersion(client: pg.PoolClient): Promise<number> {
  const result = await client.query<{ version: number | null }>(
    'SELECT max(version) AS version FROM schema_migrations',
  );
  return Number(result.rows[0]?.version ?? 0);
}

/**
 * Brings the schema up to the newest migration; returns the version it is
 * at. Throws a SchemaError when the database is newer than this code.
 */
export async function migrate(pool: pg.Pool, migrations: Migration[] = loadMigrations()): Promise<number> {
  const newest = migrations.at(-1)?.version ?? 0;
  const client = await pool.connect();
  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.query(CREATE_VERSIONS);
        const version = await currentVersion(client);
        if (version > newest) {
          throw new SchemaError(
            'ERR_SCHEMA_NEWER',
            `the ledger's schema is at version ${version}, newer than this node knows (${newest}): upgrade the node`,
          );
        }
        for (const migration of migrations.filter((m) => m.version > version)) {
          await client.query('BEGIN');
          try {
            await client.query(migration.sql);
            await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
              migration.version,
              migration.name,
            ]);
            await client.query('COMMIT');
          } catch (error) {
            await client.query('ROLLBACK');
            throw error;
          }
        }
        return newest;
      } catch (error) {
        // Another node applying the same migration at the same moment: look again.
        if (error instanceof SchemaError || attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  } finally {
    client.release();
  }
}
