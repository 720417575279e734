/**
 * The PostgreSQL section of `npm run bench`: the same closed-loop mix
 * through the full protocol, against one bank node and then two nodes on
 * one throwaway PostgreSQL (synchronous_commit=on, as pgbench runs it), the
 * load split evenly between the nodes.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { SHARED_KEY_FILES } from '../cluster/cluster.ts';
import { startLocalPostgres, stopLocalPostgres } from '../cluster/local-postgres.ts';
import { Terminals } from '../server/terminals.ts';
import { spawnEntry, waitForOutput } from '../test/process.ts';
import { closedLoop, openSessions, type Session } from './load.ts';
import { summarize } from './stats.ts';

export type PostgresBench = {
  oneNode: { tps: number; p99Ms: number };
  twoNodes: { tps: number; p99Ms: number };
};

async function startNode(dataDir: string, url: string, name: string): Promise<{ child: ChildProcess; port: number }> {
  const spawned = spawnEntry('server/main.ts', [
    '--port',
    '0',
    '--data-dir',
    dataDir,
    '--ledger',
    url,
    '--node-id',
    name,
    '--bcrypt-cost',
    '10',
  ]);
  const match = await waitForOutput(spawned, /bank listening on 127\.0\.0\.1:(\d+)/, 60_000);
  return { child: spawned.child, port: Number(match[1]) };
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function measure(sessions: Session[], seconds: number): Promise<{ tps: number; p99Ms: number }> {
  await closedLoop(sessions, 1); // warm up
  const run = await closedLoop(sessions, seconds);
  for (const client of new Set(sessions.map((s) => s.client))) client.close();
  return { tps: run.tps, p99Ms: summarize(run.latencies).p99 };
}

export async function runPostgresBench(options: {
  seconds: number;
  connections: number;
  sessionsEach: number;
}): Promise<PostgresBench> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'atm-bench-pg-'));
  fs.chmodSync(dir, 0o711);
  const postgres = await startLocalPostgres(path.join(dir, 'postgres'), {
    settings: { synchronous_commit: 'on', fsync: 'on', shared_buffers: '128MB' },
  });
  const children: ChildProcess[] = [];
  try {
    const [first, second] = [path.join(dir, 'node-1'), path.join(dir, 'node-2')];
    const a = await startNode(first, postgres.url, 'node-1');
    children.push(a.child);
    const terminals = Terminals.open(first);
    const credentialFor = (atmId: number) => terminals.credentialFor(atmId);
    const oneNode = await measure(
      await openSessions(
        { host: '127.0.0.1', port: a.port, credentialFor },
        options.connections,
        options.sessionsEach,
        'pg1',
      ),
      options.seconds,
    );
    fs.mkdirSync(second, { mode: 0o700 });
    for (const file of SHARED_KEY_FILES) fs.copyFileSync(path.join(first, file), path.join(second, file));
    const b = await startNode(second, postgres.url, 'node-2');
    children.push(b.child);
    const half = Math.max(1, Math.round(options.connections / 2));
    const sessions = [
      ...(await openSessions({ host: '127.0.0.1', port: a.port, credentialFor }, half, options.sessionsEach, 'pg2a')),
      ...(await openSessions({ host: '127.0.0.1', port: b.port, credentialFor }, half, options.sessionsEach, 'pg2b')),
    ];
    const twoNodes = await measure(sessions, options.seconds);
    return { oneNode, twoNodes };
  } finally {
    await Promise.all(children.map(stop));
    stopLocalPostgres(path.join(dir, 'postgres'));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
