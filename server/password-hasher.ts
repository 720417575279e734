/**
 * bcrypt, kept from slowing down transactions and from being starved.
 *
 * The process hasher runs a pool of child processes at lower CPU priority
 * (nice 10), one per core, each checking one password at a time, so a storm
 * of logins cannot starve the thread that answers deposits. Work waits in a
 * bounded queue that is fair across sources (an ATM and the address its
 * customer came from, `fair-queue.ts`); when it is full, or a job has waited
 * past its deadline, that one request is refused with PasswordBusyError
 * ("busy, try again") instead of waiting until the ATM gives up. A worker
 * that dies is replaced at once and the job it held goes first to the next
 * free worker (up to three tries). Passwords cross only the pipe to our own children, and are never
 * logged.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

import bcrypt from 'bcrypt';

import { FairQueue, type FairQueueLimits } from './fair-queue.ts';

export type PasswordHasher = {
  /** `source` names who is asking (ATM and client address), for fairness; omitted, all share one turn. */
  hash(password: string, source?: string): Promise<string>;
  compare(password: string, hash: string, source?: string): Promise<boolean>;
  close(): Promise<void>;
};

/** The queue is full, or the job waited past its deadline: nothing was checked; try again. */
export class PasswordBusyError extends Error {
  override readonly name = 'PasswordBusyError';
}

/** bcrypt's async API on this process's libuv thread pool (tests). */
export function inlineHasher(cost: number): PasswordHasher {
  return {
    hash: (password) => bcrypt.hash(password, cost),
    compare: (password, hash) => bcrypt.compare(password, hash),
    close: async () => {},
  };
}

export type PoolOptions = FairQueueLimits & {
  /** Worker processes; default one per core. */
  workers: number;
  /** A job still waiting after this long is refused as busy, so the ATM hears back well before its own deadline. */
  maxWaitMs: number;
  /** Told when a worker died and was replaced (the bank logs it). */
  onWorkerExit?: (pid: number | undefined, code: number | null, signal: NodeJS.Signals | null) => void;
};

export const DEFAULT_POOL_OPTIONS: PoolOptions = {
  workers: Math.max(1, os.availableParallelism()),
  maxQueued: 128,
  maxPerSource: 16,
  maxWaitMs: 10_000,
};

type JobMessage = { op: 'hash' | 'compare'; password: string; hash?: string };
type Reply = { id: number; ok: true; value: string | boolean } | { id: number; ok: false } | { ready: true };

type Job = {
  message: JobMessage;
  queuedAt: number;
  attempts: number;
  resolve: (value: string | boolean) => void;
  reject: (error: Error) => void;
};

/** A worker gets jobs once it says it is ready (its priority lowered), one at a time. */
type Worker = { child: ChildProcess; ready: boolean; job: Job | null; jobId: number };

/**
 * Tries of one job on workers that died under it. More than one, because
 * workers killed together die one exit event at a time; bounded, so a job
 * that itself kills workers cannot go on doing so.
 */
const MAX_ATTEMPTS = 3;

const WORKER_ENTRY = path.join(import.meta.dirname, 'password-hasher-worker.ts');
/** The workers' nice value, as the worker sets for its own threads (password-hasher-worker.ts). */
const WORKER_NICE = 10;
const SHARED_SOURCE = '-';

/** bcrypt in a pool of low-priority child processes (`password-hasher-worker.ts`). */
export function processHasher(cost: number, options: Partial<PoolOptions> = {}): PasswordHasher & { pids(): number[] } {
  const settings: PoolOptions = { ...DEFAULT_POOL_OPTIONS, ...options };
  const queue = new FairQueue<Job>(settings);
  const workers = new Set<Worker>();
  /** Jobs whose worker died under them: they go before anything queued. */
  const interrupted: Job[] = [];
  let nextId = 1;
  let closed = false;

  const busy = (): PasswordBusyError => new PasswordBusyError('the password checker is busy');

  const startWorker = (): void => {
    const child = fork(WORKER_ENTRY, [String(cost)], {
      execArgv: ['--import', 'tsx'],
      serialization: 'json',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    // Lower the child's main thread at once, from here: the child lowers its own threads
    // only once its code has loaded, and until then it would run (and start threads) at the bank's priority.
    if (child.pid !== undefined) {
      try {
        os.setPriority(child.pid, WORKER_NICE);
      } catch {
        // Not permitted here: still correct, only less polite.
      }
    }
    const worker: Worker = { child, ready: false, job: null, jobId: 0 };
    workers.add(worker);
    child.on('message', (reply: Reply) => {
      if ('ready' in reply) {
        worker.ready = true;
        dispatch();
        return;
      }
      const job = worker.job;
      if (!job || reply.id !== worker.jobId) return;
      worker.job = null;
      if (reply.ok) job.resolve(reply.value);
      else job.reject(new Error('password hashing failed'));
      dispatch();
    });
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      workers.delete(worker);
      const job = worker.job;
      worker.job = null;
      if (closed) {
        job?.reject(new Error('password hasher stopped'));
        return;
      }
      settings.onWorkerExit?.(child.pid, code, signal);
      // Supervision: a replacement at once; the interrupted job goes to the front of the line.
      startWorker();
      if (job && job.attempts < MAX_ATTEMPTS) runOn(idleWorker(), job);
      else job?.reject(new Error('password hasher stopped'));
      dispatch();
    });
  };

  const idleWorker = (): Worker | null => {
    for (const worker of workers) if (worker.ready && worker.job === null && worker.child.connected) return worker;
    return null;
  };

  const runOn = (worker: Worker | null, job: Job): void => {
    if (!worker) {
      // Every worker busy or starting: this job waits at the front, ahead of the queue.
      interrupted.push(job);
      return;
    }
    job.attempts += 1;
    worker.job = job;
    worker.jobId = nextId;
    nextId = nextId >= 0x7fff_ffff ? 1 : nextId + 1;
    worker.child.send({ id: worker.jobId, ...job.message });
  };

  const dispatch = (): void => {
    for (let worker = idleWorker(); worker; worker = idleWorker()) {
      const job = nextFreshJob();
      if (!job) return;
      runOn(worker, job);
    }
  };

  const nextFreshJob = (): Job | undefined => {
    const resumed = interrupted.shift();
    if (resumed) return resumed;
    for (let job = queue.shift(); job; job = queue.shift()) {
      if (Date.now() - job.queuedAt <= settings.maxWaitMs) return job;
      job.reject(busy());
    }
    return undefined;
  };

  const call = (message: JobMessage, source: string): Promise<string | boolean> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new Error('password hasher stopped'));
      const job: Job = { message, queuedAt: Date.now(), attempts: 0, resolve, reject };
      const admission = queue.push(source, job);
      if (!admission.admitted) return reject(busy());
      admission.evicted?.reject(busy());
      dispatch();
    });

  for (let i = 0; i < settings.workers; i += 1) startWorker();

  return {
    pids: () => [...workers].map((worker) => worker.child.pid ?? 0),
    hash: async (password, source = SHARED_SOURCE) => String(await call({ op: 'hash', password }, source)),
    compare: async (password, hash, source = SHARED_SOURCE) =>
      (await call({ op: 'compare', password, hash }, source)) === true,
    close: async () => {
      if (closed) return;
      closed = true;
      for (const job of [...interrupted.splice(0), ...queue.drain()]) job.reject(new Error('password hasher stopped'));
      await Promise.all(
        [...workers].map(
          (worker) =>
            new Promise<void>((resolve) => {
              if (worker.child.exitCode !== null || worker.child.signalCode !== null) return resolve();
              worker.child.once('exit', () => resolve());
              worker.child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}
