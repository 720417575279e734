/**
 * PostgreSQL's pgbench TPC-B-like workload on a throwaway cluster: initdb in
 * a temp dir, a free port, synchronous_commit=on, `pgbench -c 8 -j 2`. The
 * cluster stays up between runs, so the bench can alternate pgbench with its
 * own peak phase and compare rounds taken side by side (`bench/run.ts`).
 * PostgreSQL refuses to run as root, so as root it runs as `postgres`.
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const BIN = '/usr/lib/postgresql/15/bin';

export type PgbenchRun = { tps: number; latencyMs: number };

/** The workload throttled to a fixed rate: its latency percentiles, from pgbench -l. */
export type PgbenchThrottled = { tps: number; p50Ms: number; p99Ms: number };

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

function commandLine(command: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0
    ? ['runuser', ['-u', 'postgres', '--', path.join(BIN, command), ...args]]
    : [path.join(BIN, command), args];
}

function runAs(command: string, args: string[]): string {
  const [file, argv] = commandLine(command, args);
  return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const execFileAsync = promisify(execFile);

/** pgbench runs for many seconds: asynchronously, so the bench keeps serving its own connections meanwhile. */
async function runAsAsync(command: string, args: string[]): Promise<string> {
  const [file, argv] = commandLine(command, args);
  return (await execFileAsync(file, argv, { encoding: 'utf8' })).stdout;
}

export class PgbenchCluster {
  private constructor(
    private readonly dir: string,
    private readonly connection: string[],
    readonly scale: number,
    readonly clients: number,
    readonly threads: number,
  ) {}

  /** initdb, start, and `pgbench -i` at `scale`; the caller must `stop()`. */
  static async start(options: { scale?: number; clients?: number; threads?: number } = {}): Promise<PgbenchCluster> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atm-pgbench-'));
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      fs.chownSync(dir, uid, gid);
    }
    const port = await freePort();
    const cluster = new PgbenchCluster(
      dir,
      ['-h', dir, '-p', String(port), '-U', 'postgres'],
      options.scale ?? 10,
      options.clients ?? 8,
      options.threads ?? 2,
    );
    try {
      runAs('initdb', ['-D', cluster.data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
      runAs('pg_ctl', [
        '-D',
        cluster.data,
        '-l',
        path.join(dir, 'server.log'),
        '-w',
        'start',
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses='' -c synchronous_commit=on -c fsync=on -c shared_buffers=128MB`,
      ]);
      runAs('pgbench', [...cluster.connection, '-i', '-q', '-s', String(cluster.scale), 'postgres']);
      await cluster.checkpoint();
    } catch (error) {
      cluster.stop();
      throw error;
    }
    return cluster;
  }

  private get data(): string {
    return path.join(this.dir, 'data');
  }

  private workload(seconds: number): string[] {
    return [...this.connection, '-c', String(this.clients), '-j', String(this.threads), '-T', String(seconds)];
  }

  /**
   * Writes out PostgreSQL's dirty pages now, so the checkpointer does not do
   * it later while the bank is being measured: our ledger's own checkpoints
   * happen inside its rounds, so each system pays for its own.
   */
  private async checkpoint(): Promise<void> {
    await runAsAsync('psql', [...this.connection, '-q', '-c', 'CHECKPOINT', 'postgres']);
  }

  /** The TPC-B-like run at full speed for `seconds` (whole seconds, as pgbench -T takes). */
  async run(seconds: number): Promise<PgbenchRun> {
    const output = await runAsAsync('pgbench', [...this.workload(Math.max(1, Math.round(seconds))), 'postgres']);
    await this.checkpoint();
    return {
      tps: Number(/tps = ([0-9.]+)/.exec(output)?.[1] ?? 'NaN'),
      latencyMs: Number(/latency average = ([0-9.]+) ms/.exec(output)?.[1] ?? 'NaN'),
    };
  }

  /** The same workload scheduled at `rate` a second (-R, so latency counts from the schedule). */
  async runThrottled(seconds: number, rate: number): Promise<PgbenchThrottled> {
    const logDir = fs.mkdtempSync(path.join(this.dir, 'log-'));
    if (process.getuid?.() === 0) fs.chmodSync(logDir, 0o777);
    const output = await runAsAsync('pgbench', [
      ...this.workload(Math.max(1, Math.round(seconds))),
      '-R',
      String(Math.max(1, Math.round(rate))),
      '-l',
      '--log-prefix',
      path.join(logDir, 'half'),
      'postgres',
    ]);
    const latencies = fs
      .readdirSync(logDir)
      .flatMap((name) => fs.readFileSync(path.join(logDir, name), 'utf8').trim().split('\n'))
      .map((line) => Number(line.split(' ')[2]) / 1000 + Number(line.split(' ')[6] ?? 0) / 1000)
      .filter((value) => Number.isFinite(value))
      .sort((a, b) => a - b);
    const at = (q: number): number =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    return { tps: Number(/tps = ([0-9.]+)/.exec(output)?.[1] ?? 'NaN'), p50Ms: at(0.5), p99Ms: at(0.99) };
  }

  stop(): void {
    try {
      runAs('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', 'stop']);
    } catch {
      // Already stopped, or never started.
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
