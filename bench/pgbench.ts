/**
 * PostgreSQL's pgbench TPC-B-like run on a throwaway cluster: initdb in a
 * temp dir, a free port, synchronous_commit=on, `pgbench -c 8 -j 2`.
 * PostgreSQL refuses to run as root, so as root it runs as `postgres`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const BIN = '/usr/lib/postgresql/15/bin';

export type PgbenchResult = {
  tps: number;
  latencyMs: number;
  scale: number;
  clients: number;
  seconds: number;
  /** The same workload throttled to half the peak rate: its latency percentiles (from pgbench -l). */
  half: { tps: number; p50Ms: number; p99Ms: number };
};

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export function pgbenchAvailable(): boolean {
  return fs.existsSync(path.join(BIN, 'pgbench'));
}

export async function runPgbench(options: {
  seconds: number;
  clients?: number;
  threads?: number;
  scale?: number;
}): Promise<PgbenchResult> {
  const clients = options.clients ?? 8;
  const threads = options.threads ?? 2;
  const scale = options.scale ?? 10;
  const asRoot = process.getuid?.() === 0;
  const run = (command: string, args: string[]): string => {
    const [file, argv] = asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, command), ...args]]
      : [path.join(BIN, command), args];
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atm-pgbench-'));
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    fs.chownSync(dir, uid, gid);
  }
  const data = path.join(dir, 'data');
  const port = await freePort();
  try {
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      path.join(dir, 'server.log'),
      '-w',
      'start',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses='' -c synchronous_commit=on -c fsync=on -c shared_buffers=128MB`,
    ]);
    const connection = ['-h', dir, '-p', String(port), '-U', 'postgres'];
    run('pgbench', [...connection, '-i', '-q', '-s', String(scale), 'postgres']);
    // The TPC-B-like run: 8 clients, 2 threads, for the same time as our phases.
    const workload = [...connection, '-c', String(clients), '-j', String(threads), '-T', String(options.seconds)];
    const output = run('pgbench', [...workload, 'postgres']);
    const tps = Number(/tps = ([0-9.]+)/.exec(output)?.[1] ?? 'NaN');
    const latencyMs = Number(/latency average = ([0-9.]+) ms/.exec(output)?.[1] ?? 'NaN');
    // Throttled to half its peak (-R schedules transactions, so latency counts from the schedule).
    const logPrefix = path.join(dir, 'half');
    const halfOutput = run('pgbench', [
      ...workload,
      '-R',
      String(Math.max(1, Math.round(tps / 2))),
      '-l',
      '--log-prefix',
      logPrefix,
      'postgres',
    ]);
    const latencies = fs
      .readdirSync(dir)
      .filter((name) => name.startsWith('half'))
      .flatMap((name) => fs.readFileSync(path.join(dir, name), 'utf8').trim().split('\n'))
      .map((line) => Number(line.split(' ')[2]) / 1000 + Number(line.split(' ')[6] ?? 0) / 1000)
      .filter((value) => Number.isFinite(value))
      .sort((a, b) => a - b);
    const at = (q: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    const halfTps = Number(/tps = ([0-9.]+)/.exec(halfOutput)?.[1] ?? 'NaN');
    return {
      tps,
      latencyMs,
      scale,
      clients,
      seconds: options.seconds,
      half: { tps: halfTps, p50Ms: at(0.5), p99Ms: at(0.99) },
    };
  } finally {
    try {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
    } catch {
      // Already stopped, or never started.
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
