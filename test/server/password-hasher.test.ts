import fs from 'node:fs';

import { describe, expect, it } from 'vitest';

import { inlineHasher, processHasher } from '../../server/password-hasher.ts';

/** The nice value of every thread of a process (field 19 of /proc/<pid>/task/<tid>/stat). */
function niceValues(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

describe('password hashing', () => {
  it('hashes and verifies with bcrypt, inline and in the child process alike', async () => {
    for (const hasher of [inlineHasher(4), processHasher(4)]) {
      const hash = await hasher.hash('correct horse');
      expect(hash).toMatch(/^\$2b\$04\$/);
      expect(await hasher.compare('correct horse', hash)).toBe(true);
      expect(await hasher.compare('wrong horse', hash)).toBe(false);
      await hasher.close();
    }
  });

  it('runs every thread of the hashing process at lower CPU priority than the bank', async () => {
    const hasher = processHasher(4);
    await Promise.all(Array.from({ length: 4 }, () => hasher.hash('warm up the thread pool')));
    const pid = hasher.pid ?? 0;
    const values = niceValues(pid);
    expect(values.length).toBeGreaterThan(1);
    expect(values.every((nice) => nice === 10)).toBe(true);
    await hasher.close();
    await expect(hasher.hash('after close')).rejects.toThrow(/stopped/);
  });
});
