/**
 * The child process behind `processHasher`: bcrypt at nice 10. On Linux a
 * priority belongs to a thread, so every thread that exists now is lowered,
 * and threads started later (libuv's pool, on first use) inherit it.
 */
import fs from 'node:fs';
import os from 'node:os';

import bcrypt from 'bcrypt';

const cost = Number(process.argv[2] ?? 12);
const NICE = 10;
function lowerPriority(): void {
  let threads: number[] = [0];
  try {
    threads = fs.readdirSync('/proc/self/task').map(Number);
  } catch {
    // No /proc: lower this thread only.
  }
  for (const thread of threads) {
    try {
      os.setPriority(thread, NICE);
    } catch {
      // Not permitted here: still correct, only less polite.
    }
  }
}
lowerPriority();

type Request = { id: number; op: 'hash' | 'compare'; password: string; hash?: string };

process.on('message', (message: Request) => {
  // Threads another thread started before it was lowered (the loader's, V8's)
  // would keep the default priority: lower any such straggler before each job.
  lowerPriority();
  const work =
    message.op === 'hash' ? bcrypt.hash(message.password, cost) : bcrypt.compare(message.password, message.hash ?? '');
  work
    .then(
      (value) => ({ id: message.id, ok: true, value }),
      () => ({ id: message.id, ok: false }),
    )
    .then((reply) => {
      // And after it, for any thread the job itself started.
      lowerPriority();
      process.send?.(reply);
    });
});
process.on('disconnect', () => process.exit(0));
// Jobs come only after this: every thread that exists now runs at the lower priority.
process.send?.({ ready: true });
process.on('SIGTERM', () => process.exit(0));
