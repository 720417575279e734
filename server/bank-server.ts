/**
 * Wires the bank together: data directory, ledger, audit trail, and a TCP
 * server that hands each connection to a BankConnection. `startBankServer`
 * also listens, on the host and port its caller gives: the commands
 * (`main.ts`, `bin/start.ts`) with theirs, tests on port 0.
 */
import net from 'node:net';
import path from 'node:path';
import { PerformanceObserver, createHistogram } from 'node:perf_hooks';

import type { Registry } from 'prom-client';

import { CheckpointPublisher, checkpointNotice } from '../audit/checkpoint.ts';
import { AuditWriter, type AuditSink } from '../audit/writer.ts';
import { readAuditKey, readAuditSigningKey, type Revocation } from '../runtime/key-files.ts';
import { ed25519Signer, pooledIvRandom, secureRandom, type RandomSource } from '../protocol/crypto.ts';
import type { AtmCredential } from '../protocol/handshake.ts';
import { DEFAULT_MAX_FRAME_BODY } from '../protocol/frame.ts';
import { AuditTap, type GroupAuditSink } from './audit-tap.ts';
import { AuditedCommit } from './audited-commit.ts';
import { checkAuditContinuity, keyedHead } from './audit-continuity.ts';
import { Bank, type Clock } from './bank.ts';
import { CardDesk, loadCardKey } from './card-desk.ts';
import { BankConnection, type BankEvents, type ConnectionLimits } from './connection.ts';
import { LEDGER_FILE, nodeId, prepareDataDir } from './data-dir.ts';
import { silentLogger, type Logger } from '../runtime/logger.ts';
import { listenOn } from '../runtime/listen.ts';
import { witnessLags, type OperatorStatus } from './operator-page.ts';
import { BankOperations, type AdminOptions, type AdminServer, type BankMeter } from './operations.ts';
import { inlineHasher, processHasher, type PoolOptions } from './password-hasher.ts';
import type { Ledger } from './ledger.ts';
import { SqliteLedger } from './sqlite-ledger.ts';
import { Terminals } from './terminals.ts';
import type { ClusterSignals } from './cluster-signals.ts';

/** How often a running bank looks for new revocations, to cut a revoked ATM that is connected. */
export const REVOCATION_POLL_MS = 250;

export type BankLimits = ConnectionLimits & {
  maxConnections: number;
  /** Connections still in the handshake; more are refused at once (slowloris defence). */
  maxHandshaking: number;
};

export const DEFAULT_LIMITS: BankLimits = {
  maxFrameBody: DEFAULT_MAX_FRAME_BODY,
  handshakeTimeoutMs: 5_000,
  idleTimeoutMs: 10 * 60_000,
  maxSessionsPerConnection: 1_000,
  // The atm gives up after 10 s (the contract); the bank lets go no later.
  confirmTimeoutMs: 10_000,
  maxSessionsPerCustomer: 4,
  maxConnections: 1_024,
  maxHandshaking: 128,
};

export const DEFAULT_BCRYPT_COST = 12;

export type BankServerOptions = {
  host: string;
  port: number;
  dataDir: string;
  bcryptCost?: number;
  limits?: Partial<BankLimits>;
  clock?: Clock;
  random?: RandomSource;
  logger?: Logger;
  /**
   * `postgres://...` to keep the ledger (and each node's audit chain) in
   * PostgreSQL, shared with other nodes; default: SQLite in the data dir.
   */
  ledgerUrl?: string;
  /** This node's name in the shared audit table (default: `node.id` in the data dir). */
  nodeId?: string;
  /** With a PostgreSQL ledger: how often this node looks for other nodes' revocations and session ends. */
  clusterPollMs?: number;
  /** What bin/bank prints on its stdout. */
  events?: BankEvents;
  /** How often a moved audit head is signed and sent to every ATM (default 1 s). */
  checkpointIntervalMs?: number;
  /** Hash passwords in a pool of low-priority child processes (the commands do; tests need not). */
  isolatePasswordHashing?: boolean;
  /** The process's metrics registry (one per process); with `admin` and none given, a fresh one. */
  metricsRegistry?: Registry;
  /** Serve /healthz, /metrics and the operator page here (`--admin-port`); none when omitted. */
  admin?: AdminOptions;
  /** The pool's size, queue bounds and wait deadline (defaults in DEFAULT_POOL_OPTIONS). */
  passwordPool?: Partial<PoolOptions>;
};

/**
 * How long the bank took to answer requests, measured inside the bank
 * (milliseconds), and the garbage-collection pauses in the same window: a
 * pause holds every request in flight, so it shows up in the tail.
 */
export type ServiceTimes = {
  count: number;
  p50: number;
  p99: number;
  max: number;
  gc: { pauses: number; totalMs: number; maxMs: number };
};

export type RunningBank = {
  host: string;
  port: number;
  /** What ATM `atmId` needs to connect (its derived key, the pinned bank key); tests connect with it. */
  credentialFor(atmId: number): AtmCredential;
  /** The operator interface's address, when an admin port was asked for. */
  adminUrl: string | null;
  connectionCount(): number;
  /** Service times since start or the last reset; `reset` starts a new window. */
  serviceTimes(reset?: boolean): ServiceTimes;
  /** Stops accepting, lets in-flight requests finish, flushes and closes everything. */
  close(): Promise<void>;
};

export async function startBankServer(options: BankServerOptions): Promise<RunningBank> {
  const random = options.random ?? secureRandom;
  // Tests inject one deterministic source for everything.
  const ivRandom = options.random ?? pooledIvRandom;
  const clock = options.clock ?? (() => new Date());
  const logger = options.logger ?? silentLogger;
  const limits: BankLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const paths = prepareDataDir(options.dataDir, random);
  const terminals = Terminals.open(paths.dir);
  const auditKey = readAuditKey(paths.auditKey);
  const connections = new Set<BankConnection>();
  const registry = options.metricsRegistry ?? (options.admin ? new (await import('prom-client')).Registry() : null);
  const operations = await BankOperations.create(
    registry,
    logger,
    {
      connectedAtms: () => connectedAtms().length,
      witnessLagLines: () =>
        witnessLags(connectedWitnesses(), files.head.lineNumber, clock().getTime()).map((lag) => lag.lines),
    },
    () => clock().getTime(),
  );
  const {
    writer: files,
    tornBytes,
    repaired,
  } = AuditWriter.open(paths.dir, auditKey, ivRandom, {
    onSynced: (seconds) => operations.metrics.fsync('audit', seconds),
  });
  // Every event reaches the files through here, whichever ledger is used.
  const tap = new AuditTap(files, operations.auditObserver);
  // A node of a shared ledger has its own audit chain, named by its id in the ledger and in its checkpoints.
  const node = options.ledgerUrl === undefined ? null : nodeId(options.dataDir, random, options.nodeId);
  const { ledger, audit } = await openLedger(options, node, tap, files, auditKey, random, logger, operations.metrics);
  try {
    await checkAuditContinuity(ledger, files);
  } catch (error) {
    await ledger.close().catch(() => undefined);
    await files.close().catch(() => undefined);
    throw error;
  }
  const signals = node === null ? null : await openSignals(options, node, random, logger, connections, terminals);
  const cost = options.bcryptCost ?? DEFAULT_BCRYPT_COST;
  const passwords = options.isolatePasswordHashing
    ? processHasher(cost, {
        ...options.passwordPool,
        onWorkerExit: (pid, code, signal) =>
          logger.warn(
            { action: 'password_worker', outcome: signal ?? String(code) },
            `password worker ${pid ?? '?'} stopped; replaced`,
          ),
      })
    : inlineHasher(cost);
  const tickets = { key: readAuditKey(paths.ticketKey), random };
  const bank = new Bank({ ledger, audit, clock, passwords, tickets });
  const cards = new CardDesk({ bank, ledger, cardKey: loadCardKey(paths.dir, random), random, clock });
  const events = options.events ?? {};
  const system = { atmId: null, username: null, accountId: null };
  if (tornBytes > 0) bank.record(system, 'audit_recovered', 'ok', `${tornBytes} torn bytes trimmed`);
  for (const repair of repaired) bank.record(system, 'audit_recovered', 'ok', repair);
  // Revocations made while the bank was down are audited at start, as in force.
  for (const { atm, at } of terminals.revocations()) {
    bank.record({ ...system, atmId: atm }, 'atm_revoked', 'in_force', at);
  }
  // Every node of a shared ledger refuses what any of them revoked (a repeat changes nothing).
  signals?.publishRevocations(terminals.revocations());

  // Every ATM witnesses the audit chain: the durable head, signed, at most
  // once per interval while events arrive, to each ATM that asked (watch_audit).
  const checkpoints = new CheckpointPublisher({
    head: () => files.durableHead,
    signer: ed25519Signer(readAuditSigningKey(paths.auditSigningKey)),
    intervalMs: options.checkpointIntervalMs ?? 1_000,
    node,
    publish: (checkpoint) => {
      const notice = checkpointNotice(checkpoint);
      for (const connection of connections) connection.sendNotice(notice);
    },
  });
  const currentCheckpoint = () => checkpointNotice(checkpoints.current());
  const serviceTimes = createHistogram();
  const gcPauses = createHistogram();
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcPauses.record(Math.max(1, Math.round(entry.duration * 1e6)));
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  const server = net.createServer((socket) => {
    let handshaking = 0;
    for (const connection of connections) if (connection.isHandshaking) handshaking += 1;
    if (handshaking >= limits.maxHandshaking) {
      socket.destroy();
      return;
    }
    const connection = new BankConnection(socket, {
      bank,
      terminals,
      cards,
      events,
      random,
      ivRandom,
      limits,
      logger,
      serviceTimes,
      endSessionsOf: (accountId, keep) => {
        for (const other of connections)
          other.endSessionsOf(accountId, other === keep.connection ? keep.session : null);
        signals?.publishSessionEnd(accountId);
      },
      answered: (op, outcome, nanoseconds) => operations.answered(op, outcome, nanoseconds),
      nowMs: () => clock().getTime(),
      currentCheckpoint,
    });
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  });
  // `npm run bank -- revoke-atm N` only writes the list: each revocation is
  // audited here once, and a connected ATM it names is cut.
  const revocationPoll = setInterval(() => {
    let revoked: Revocation[];
    try {
      revoked = terminals.takeNewlyRevoked();
    } catch (error) {
      logger.error({ action: 'atm_revoked', outcome: String(error) }, 'cannot read the revocation list');
      return;
    }
    for (const { atm, at } of revoked) {
      try {
        bank.record({ ...system, atmId: atm }, 'atm_revoked', 'ok', at);
      } catch {
        // Unwritable audit log: the ATM is still cut.
      }
      logger.warn({ atm, action: 'atm_revoked', outcome: 'ok' }, 'terminal revoked');
      for (const connection of connections) if (connection.atmId === atm) connection.revoke();
    }
    signals?.publishRevocations(revoked);
  }, REVOCATION_POLL_MS);
  revocationPoll.unref();
  server.maxConnections = limits.maxConnections;
  server.on('error', (error) => logger.error({ action: 'listen', outcome: String(error) }, 'server error'));

  const address = await listenOn(server, options.port, options.host);
  bank.record(system, 'bank_start', 'ok', `${options.host}:${address.port}`);

  const connectedAtms = () => [...connections].flatMap((connection) => connection.summary() ?? []);
  const connectedWitnesses = () => [...connections].flatMap((connection) => connection.witness() ?? []);
  const status = (): OperatorStatus => ({
    nowMs: clock().getTime(),
    atms: connectedAtms(),
    activity: operations.activity.snapshot(),
    auditHead: { line: files.head.lineNumber, hash: files.head.chainHash.toString('hex') },
    witnesses: witnessLags(connectedWitnesses(), files.head.lineNumber, clock().getTime()),
  });
  // Healthy means a commit gets through now: the audit log takes a line
  // (tried only while it is failing, and recorded when it works again) and
  // the ledger commits a write of its own.
  const probe = async (): Promise<void> => {
    if (tap.failing) {
      bank.record(system, 'audit_recovered', 'ok', 'audit log writable again');
      await audit.flush();
    }
    await ledger.probe();
  };
  let admin: AdminServer | null = null;
  try {
    if (options.admin) admin = await operations.listenAdmin(options.admin, { status, probe });
  } catch (error) {
    // The admin port was taken: start nothing rather than a bank nobody can watch.
    server.close();
    gcObserver.disconnect();
    clearInterval(revocationPoll);
    await Promise.allSettled([signals?.close(), ledger.close(), files.close(), passwords.close()]);
    throw error;
  }

  let closing: Promise<void> | null = null;
  return {
    host: options.host,
    port: address.port,
    credentialFor: (atmId) => terminals.credentialFor(atmId),
    adminUrl: admin?.url ?? null,
    connectionCount: () => connections.size,
    serviceTimes: (reset = false) => {
      const summary = {
        count: serviceTimes.count,
        p50: serviceTimes.percentile(50) / 1e6,
        p99: serviceTimes.percentile(99) / 1e6,
        max: serviceTimes.max / 1e6,
        gc: {
          pauses: gcPauses.count,
          totalMs: (gcPauses.mean * gcPauses.count) / 1e6 || 0,
          maxMs: gcPauses.count > 0 ? gcPauses.max / 1e6 : 0,
        },
      };
      if (reset) {
        serviceTimes.reset();
        gcPauses.reset();
      }
      return summary;
    },
    close: () => {
      closing ??= (async () => {
        clearInterval(revocationPoll);
        await signals?.close();
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await admin?.close();
        await Promise.all([...connections].map((connection) => connection.drain()));
        await stopped;
        checkpoints.stop();
        bank.record(system, 'bank_stop', 'ok');
        // The PostgreSQL ledger commits the last audit lines (and hands them to the files) as it closes.
        if (options.ledgerUrl !== undefined) await ledger.close();
        await files.close();
        if (options.ledgerUrl === undefined) await ledger.close();
        await passwords.close();
        gcObserver.disconnect();
      })();
      return closing;
    },
  };
}

/**
 * The ledger and the sink the bank audits through. Either ledger commits each
 * group with its audit lines in the files (`AuditedCommit`). With SQLite the
 * bank writes its other lines to the files itself; with PostgreSQL every
 * audit line goes through the ledger's groups (into this node's chain in the
 * database, in the same transaction as the money).
 */
async function openLedger(
  options: BankServerOptions,
  node: string | null,
  files: GroupAuditSink,
  /** The log itself, whose durable head each money group stores (the tap only passes events through). */
  writer: AuditWriter,
  auditKey: Buffer,
  random: RandomSource,
  logger: Logger,
  metrics: BankMeter,
): Promise<{ ledger: Ledger; audit: AuditSink }> {
  // Each group's lines are written just before it commits, and the chain head
  // after them is stored in its transaction: the start-up check holds the log to it.
  const audited = new AuditedCommit(files, () => keyedHead(writer));
  if (options.ledgerUrl === undefined || node === null) {
    const ledger = new SqliteLedger(path.join(options.dataDir, LEDGER_FILE), audited, {
      committedGroup: (requests) => metrics.commitGroup(requests),
      walSynced: (seconds) => metrics.fsync('wal', seconds),
    });
    return { ledger, audit: files };
  }
  // Loaded only for a PostgreSQL ledger, so an embedded bank does not carry the pg client in memory.
  const { PostgresLedger } = await import('./postgres-ledger.ts');
  const ledger = await PostgresLedger.open({
    url: options.ledgerUrl,
    nodeId: node,
    auditKey,
    random,
    audited,
    onIdleError: (error) => logger.warn({ action: 'ledger', outcome: error.message }, 'PostgreSQL connection lost'),
    committedGroup: (requests) => metrics.commitGroup(requests),
  });
  return { ledger, audit: ledger.audit };
}

/**
 * With a PostgreSQL ledger, what this node hears from the others: a terminal
 * revoked on another node is added to this node's revocation list (the
 * revocation poll then audits it and cuts the ATM, as for a local
 * `revoke-atm`), and a password change on another node ends the customer's
 * sessions here.
 */
async function openSignals(
  options: BankServerOptions,
  node: string,
  random: RandomSource,
  logger: Logger,
  connections: ReadonlySet<BankConnection>,
  terminals: Terminals,
): Promise<ClusterSignals> {
  const { ClusterSignals } = await import('./cluster-signals.ts');
  let failing = false;
  return ClusterSignals.open({
    url: options.ledgerUrl ?? '',
    nodeId: node,
    random,
    ...(options.clusterPollMs === undefined ? {} : { pollMs: options.clusterPollMs }),
    onRevoked: ({ atm, at }) => {
      if (terminals.isRevoked(atm)) return;
      // The time as the revoking node wrote it; a garbled one (not ours) is taken as now.
      const when = new Date(at);
      try {
        terminals.revoke(atm, Number.isNaN(when.getTime()) ? new Date() : when);
      } catch (error) {
        logger.error({ atm, action: 'atm_revoked', outcome: String(error) }, 'cannot write the revocation list');
      }
    },
    onSessionsEnded: (accountId) => {
      let ended = 0;
      for (const connection of connections) ended += connection.endSessionsOf(accountId, null);
      if (ended > 0)
        logger.warn({ action: 'sessions_ended', outcome: 'ok' }, `${ended} sessions ended by another node`);
    },
    onError: (error) => {
      // Once per outage, not at every poll.
      if (failing) return;
      failing = true;
      logger.warn({ action: 'cluster_signals', outcome: error.message }, "cannot reach the other nodes' signals");
      setTimeout(() => (failing = false), 60_000).unref();
    },
  });
}
