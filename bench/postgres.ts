/**
 * The PostgreSQL section of `npm run bench`: the same closed-loop mix
 * through the full protocol, against one bank node and then two nodes on
 * one throwaway PostgreSQL (synchronous_commit=on, as pgbench runs it), the
 * load split evenly between the nodes. Each phase also says where the time
 * goes: the CPU per transaction of the bank nodes, of PostgreSQL's processes
 * and of this load generator, and the requests per group commit (from the
 * nodes' own metrics).
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
import { cpuSeconds, loadCpuSeconds, processTreeCpuSeconds } from './proc.ts';
import { summarize } from './stats.ts';

/** One phase: throughput, tail, and the CPU per transaction of each party on the machine. */
export type PostgresPhase = {
  tps: number;
  p99Ms: number;
  nodeCpuUsPerTx: number;
  postgresCpuUsPerTx: number;
  loadCpuUsPerTx: number;
  /** Mean requests settled per group commit (one PostgreSQL transaction each). */
  groupSize: number;
};

export type PostgresBench = { oneNode: PostgresPhase; twoNodes: PostgresPhase };

type Node = { child: ChildProcess; port: number; adminUrl: string };

async function startNode(dataDir: string, url: string, name: string): Promise<Node> {
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
    // Only for its /metrics: the group sizes. Operators would run nodes with it too.
    '--admin-port',
    '0',
  ]);
  const match = await waitForOutput(spawned, /bank listening on 127\.0\.0\.1:(\d+)/, 60_000);
  const admin = await waitForOutput(spawned, /bank operator page at (http:\/\/[0-9.:]+)\//, 60_000);
  return { child: spawned.child, port: Number(match[1]), adminUrl: admin[1] ?? '' };
}

/** The nodes' group commits so far: how many, and how many requests they settled. */
async function groups(nodes: Node[]): Promise<{ count: number; requests: number }> {
  let count = 0;
  let requests = 0;
  for (const node of nodes) {
    const text = await (await fetch(`${node.adminUrl}/metrics`)).text();
    count += Number(/^bank_commit_group_size_count (\S+)$/m.exec(text)?.[1] ?? 'NaN');
    requests += Number(/^bank_commit_group_size_sum (\S+)$/m.exec(text)?.[1] ?? 'NaN');
  }
  return { count, requests };
}

/** CPU seconds of the postmaster and every process it started (backends, WAL writer, checkpointer...). */
function postgresCpuSeconds(pgdata: string): number {
  return processTreeCpuSeconds(Number(fs.readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]));
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

async function measure(sessions: Session[], seconds: number, nodes: Node[], pgdata: string): Promise<PostgresPhase> {
  await closedLoop(sessions, 1); // warm up
  const nodeCpu = (): number => nodes.reduce((sum, node) => sum + cpuSeconds(node.child.pid ?? 0), 0);
  const [node0, postgres0, load0, groups0] = [
    nodeCpu(),
    postgresCpuSeconds(pgdata),
    process.cpuUsage(),
    await groups(nodes),
  ];
  const run = await closedLoop(sessions, seconds);
  const [node1, postgres1, load1, groups1] = [
    nodeCpu(),
    postgresCpuSeconds(pgdata),
    loadCpuSeconds(load0),
    await groups(nodes),
  ];
  for (const client of new Set(sessions.map((s) => s.client))) client.close();
  const transactions = run.latencies.length;
  const perTx = (cpu: number): number => (cpu * 1e6) / transactions;
  return {
    tps: run.tps,
    p99Ms: summarize(run.latencies).p99,
    nodeCpuUsPerTx: perTx(node1 - node0),
    postgresCpuUsPerTx: perTx(postgres1 - postgres0),
    loadCpuUsPerTx: perTx(load1),
    groupSize: (groups1.requests - groups0.requests) / (groups1.count - groups0.count),
  };
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
    const pgdata = path.join(dir, 'postgres', 'pgdata');
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
      [a],
      pgdata,
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
    const twoNodes = await measure(sessions, options.seconds, [a, b], pgdata);
    return { oneNode, twoNodes };
  } finally {
    await Promise.all(children.map(stop));
    stopLocalPostgres(path.join(dir, 'postgres'));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
