/**
 * bcrypt, kept from slowing down transactions. Both implementations run
 * bcrypt off the event loop; the process hasher also runs it in a child
 * process at lower CPU priority (nice 10), so a storm of logins cannot starve
 * the thread that answers deposits on a small machine. Passwords cross only
 * the pipe to our own child, and are never logged.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import bcrypt from 'bcrypt';

export type PasswordHasher = {
  hash(password: string): Promise<string>;
  compare(password: string, hash: string): Promise<boolean>;
  close(): Promise<void>;
};

/** bcrypt's async API on this process's libuv thread pool. */
export function inlineHasher(cost: number): PasswordHasher {
  return {
    hash: (password) => bcrypt.hash(password, cost),
    compare: (password, hash) => bcrypt.compare(password, hash),
    close: async () => {},
  };
}

type Reply = { id: number; ok: true; value: string | boolean } | { id: number; ok: false };

/** bcrypt in a low-priority child process (`password-hasher-worker.ts`). */
export function processHasher(cost: number): PasswordHasher & { readonly pid: number | undefined } {
  const worker: ChildProcess = fork(path.join(import.meta.dirname, 'password-hasher-worker.ts'), [String(cost)], {
    execArgv: ['--import', 'tsx'],
    serialization: 'json',
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (value: string | boolean) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let closed = false;
  worker.on('message', (reply: Reply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.ok) waiter?.resolve(reply.value);
    else waiter?.reject(new Error('password hashing failed'));
  });
  worker.on('exit', () => {
    closed = true;
    for (const waiter of pending.values()) waiter.reject(new Error('password hasher stopped'));
    pending.clear();
  });
  const call = (message: { op: 'hash' | 'compare'; password: string; hash?: string }): Promise<string | boolean> =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new Error('password hasher stopped'));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      worker.send({ id, ...message });
    });
  return {
    pid: worker.pid,
    hash: async (password) => String(await call({ op: 'hash', password })),
    compare: async (password, hash) => (await call({ op: 'compare', password, hash })) === true,
    close: () =>
      new Promise((resolve) => {
        if (closed) return resolve();
        worker.once('exit', () => resolve());
        worker.kill('SIGTERM');
      }),
  };
}
