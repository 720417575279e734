import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { inlineHasher, PasswordBusyError, processHasher } from '../../server/password-hasher.ts';

/** A process's nice value (field 19 of /proc/<pid>/stat: its main thread, which starts the threads that run bcrypt). */
function processNice(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

describe('password hashing', { timeout: 30_000 }, () => {
  it('hashes and verifies with bcrypt, inline and in the child process alike', async () => {
    for (const hasher of [inlineHasher(4), processHasher(4)]) {
      const hash = await hasher.hash('correct horse');
      expect(hash).toMatch(/^\$2b\$04\$/);
      expect(await hasher.compare('correct horse', hash)).toBe(true);
      expect(await hasher.compare('wrong horse', hash)).toBe(false);
      await hasher.close();
    }
  });

  // Checks the worker process's nice value, not every thread's: a thread V8
  // starts on its own between two jobs is lowered only before the next job,
  // so a per-thread snapshot was racy (it failed under load). The threads
  // that run bcrypt (libuv's pool) are started by the lowered main thread.
  it('runs every hashing process at lower CPU priority than the bank', async () => {
    const hasher = processHasher(4, { workers: 2 });
    await Promise.all(Array.from({ length: 8 }, () => hasher.hash('warm up the thread pool')));
    expect(hasher.pids()).toHaveLength(2);
    for (const pid of hasher.pids()) expect(processNice(pid)).toBe(10);
    await hasher.close();
    await expect(hasher.hash('after close')).rejects.toThrow(/stopped/);
  });

  it('replaces a killed worker at once and finishes the job it held', async () => {
    const hasher = processHasher(10, { workers: 1 });
    const hash = await hasher.hash('correct horse');
    const [first] = hasher.pids();
    // Cost 10 takes tens of milliseconds: the kill lands while this check runs.
    const inFlight = hasher.compare('correct horse', hash);
    await new Promise((resolve) => setTimeout(resolve, 10));
    process.kill(first ?? 0, 'SIGKILL');
    expect(await inFlight).toBe(true);
    expect(hasher.pids()).toHaveLength(1);
    expect(hasher.pids()[0]).not.toBe(first);
    // And every later check works, as before the kill.
    expect(await hasher.compare('wrong horse', hash)).toBe(false);
    await hasher.close();
  }, 30_000);

  it('refuses at once with PasswordBusyError when one source fills its share, and serves other sources', async () => {
    const hasher = processHasher(10, { workers: 1, maxQueued: 8, maxPerSource: 3, maxWaitMs: 60_000 });
    const hash = await hasher.hash('x-password');
    const flood = Array.from({ length: 10 }, () =>
      hasher.compare('x-password', hash, 'atm 1 flood').then(
        () => 'checked',
        (error: unknown) => (error instanceof PasswordBusyError ? 'busy' : 'failed'),
      ),
    );
    const other = hasher.compare('x-password', hash, 'atm 2 customer');
    const outcomes = await Promise.all(flood);
    // One running plus three waiting from the flood's source; the rest refused, not queued.
    expect(outcomes.filter((outcome) => outcome === 'checked')).toHaveLength(4);
    expect(outcomes.filter((outcome) => outcome === 'busy')).toHaveLength(6);
    expect(await other).toBe(true);
    await hasher.close();
  });

  it('refuses a job that waited past its deadline instead of running it late', async () => {
    const hasher = processHasher(12, { workers: 1, maxWaitMs: 100 });
    // The worker takes longer than 100 ms to start: ask until it is up.
    let hash: string | null = null;
    while (hash === null) hash = await hasher.hash('slow-password').catch(() => null);
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        hasher.compare('slow-password', hash, `source ${i}`).then(
          () => 'checked',
          (error: unknown) => (error instanceof PasswordBusyError ? 'busy' : 'failed'),
        ),
      ),
    );
    // Cost 12 takes far longer than 100 ms: the first runs, those left waiting are refused.
    expect(outcomes[0]).toBe('checked');
    expect(outcomes.filter((outcome) => outcome === 'busy').length).toBeGreaterThanOrEqual(4);
    await hasher.close();
  }, 30_000);
});
