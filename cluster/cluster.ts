/**
 * The scale-out shape on one machine: a throwaway PostgreSQL, two bank nodes
 * sharing it (each with its own data dir holding copies of the same
 * bank.keys, audit.key, audit-signing.key and ticket.key), and ATMs that
 * know both nodes, each with its own provisioned key file.
 * `bin/cluster.ts` is the command; tests use it too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { atmKeyFileName, createSecretFile, encodeAtmCredential } from '../runtime/key-files.ts';
import { Terminals } from '../server/terminals.ts';
import { startLocalPostgres, stopLocalPostgres } from './local-postgres.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

/** The key files every node of one bank must share. */
export const SHARED_KEY_FILES = ['bank.keys', 'audit.key', 'audit-signing.key', 'ticket.key'];

export type ClusterOptions = {
  dir: string;
  nodePorts: number[];
  atms: Array<{ id: number; port: number }>;
  host?: string;
  bcryptCost?: number;
  /** Where the children's output goes, one prefixed line at a time. */
  log?: (line: string) => void;
};

export type RunningCluster = {
  ledgerUrl: string;
  nodes: Array<{ name: string; address: string; dataDir: string; child: ChildProcess }>;
  atms: Array<{ id: number; url: string; child: ChildProcess }>;
  stop(): Promise<void>;
};

type Child = { child: ChildProcess; waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray> };

function start(entry: string, args: string[], name: string, log: (line: string) => void): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const take = (chunk: Buffer): void => {
    const text = chunk.toString();
    output += text;
    for (const line of text.split('\n')) if (line.trim() !== '') log(`[${name}] ${line}`);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  return {
    child,
    async waitFor(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = pattern.exec(output);
        if (match) return match;
        if (child.exitCode !== null) throw new Error(`${name} exited early:\n${output}`);
        if (Date.now() > deadline) throw new Error(`${name} did not start in time:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function startCluster(options: ClusterOptions): Promise<RunningCluster> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? (() => {});
  // Traversable but not listable: as root, PostgreSQL runs as `postgres` and must reach its own folder.
  fs.mkdirSync(options.dir, { recursive: true, mode: 0o711 });
  fs.chmodSync(options.dir, 0o711);
  const postgresDir = path.join(options.dir, 'postgres');
  const postgres = await startLocalPostgres(postgresDir);
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all([...children].reverse().map(stopChild));
    stopLocalPostgres(postgresDir);
  };
  try {
    const nodes: RunningCluster['nodes'] = [];
    for (const [index, port] of options.nodePorts.entries()) {
      const name = `node-${index + 1}`;
      const dataDir = path.join(options.dir, name);
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const first = nodes[0];
      if (first) {
        for (const file of SHARED_KEY_FILES) {
          const from = path.join(first.dataDir, file);
          if (fs.existsSync(from) && !fs.existsSync(path.join(dataDir, file))) {
            fs.copyFileSync(from, path.join(dataDir, file));
          }
        }
      }
      const node = start(
        'server/main.ts',
        [
          '--host',
          host,
          '--port',
          String(port),
          '--data-dir',
          dataDir,
          '--ledger',
          postgres.url,
          '--node-id',
          name,
          '--bcrypt-cost',
          String(options.bcryptCost ?? 12),
        ],
        name,
        log,
      );
      children.push(node.child);
      const match = await node.waitFor(/bank listening on (\S+):(\d+)/);
      nodes.push({ name, address: `${match[1]}:${match[2]}`, dataDir, child: node.child });
    }
    const atmDir = path.join(options.dir, 'atms');
    fs.mkdirSync(atmDir, { recursive: true, mode: 0o700 });
    const firstNode = nodes[0];
    if (firstNode) {
      // Provisioned as `npm run bank -- provision-atm N` would: each ATM its own key file.
      const terminals = Terminals.open(firstNode.dataDir);
      for (const atm of options.atms) {
        createSecretFile(
          path.join(atmDir, atmKeyFileName(atm.id)),
          encodeAtmCredential(terminals.credentialFor(atm.id)),
        );
      }
    }
    const banks = nodes.map((node) => node.address).join(',');
    const atms: RunningCluster['atms'] = [];
    for (const atm of options.atms) {
      const name = `atm-${atm.id}`;
      const running = start(
        'atm-web/main.ts',
        [String(atm.id), '--bank', banks, '--data-dir', atmDir, '--host', host, '--port', String(atm.port)],
        name,
        log,
      );
      children.push(running.child);
      const match = await running.waitFor(/ATM \d+ ready at (\S+)/);
      atms.push({ id: atm.id, url: match[1] ?? '', child: running.child });
    }
    return { ledgerUrl: postgres.url, nodes, atms, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
