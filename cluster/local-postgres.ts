/**
 * A throwaway PostgreSQL cluster in a directory of our choosing: initdb, then
 * pg_ctl start on a free TCP port of 127.0.0.1 (trust authentication, so only
 * for local demos, tests and CI). PostgreSQL refuses to run as root, so as
 * root every PostgreSQL program runs as the `postgres` user, which must own
 * the directory.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const POSTGRES_BIN = process.env.POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';

export type LocalPostgres = { dir: string; port: number; url: string };

export function postgresAvailable(): boolean {
  return fs.existsSync(path.join(POSTGRES_BIN, 'initdb')) && fs.existsSync(path.join(POSTGRES_BIN, 'pg_ctl'));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const asRoot = (): boolean => process.getuid?.() === 0;

/** Runs a PostgreSQL program (as `postgres` when we are root); returns its stdout. */
export function runPostgresProgram(command: string, args: string[]): string {
  const program = path.join(POSTGRES_BIN, command);
  const [file, argv] = asRoot() ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
  return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Makes `dir` (and its parents up to an existing one we created) usable by the `postgres` user when root. */
function handOver(dir: string): void {
  if (!asRoot()) return;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  fs.chownSync(dir, uid, gid);
}

/**
 * Creates (if needed) and starts a cluster under `dir` (the cluster's files
 * go in `dir/pgdata`, its log in `dir/postgres.log`). `settings` are extra
 * `-c name=value` server settings.
 */
export async function startLocalPostgres(
  dir: string,
  options: { port?: number; settings?: Record<string, string> } = {},
): Promise<LocalPostgres> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  handOver(dir);
  const data = path.join(dir, 'pgdata');
  if (!fs.existsSync(path.join(data, 'PG_VERSION'))) {
    runPostgresProgram('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  }
  const port = options.port ?? (await freePort());
  const settings = Object.entries({ listen_addresses: "'127.0.0.1'", ...options.settings })
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
  runPostgresProgram('pg_ctl', [
    '-D',
    data,
    '-l',
    path.join(dir, 'postgres.log'),
    '-w',
    '-t',
    '60',
    'start',
    '-o',
    `-p ${port} -k ${dir} ${settings}`,
  ]);
  return { dir, port, url: `postgres://postgres@127.0.0.1:${port}/postgres` };
}

/** Stops the cluster under `dir` (fast shutdown); quiet if it is not running. */
export function stopLocalPostgres(dir: string): void {
  try {
    runPostgresProgram('pg_ctl', ['-D', path.join(dir, 'pgdata'), '-m', 'fast', '-w', 'stop']);
  } catch {
    // Not running, or never started.
  }
}
