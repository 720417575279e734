import { describe, expect, it } from 'vitest';

import { spawnEntry, waitForOutput } from '../process.ts';

const CHILD = 'test/runtime/fixtures/exit-on-signals-child.ts';

describe('exitOnSignals', () => {
  it('closes once however many signals arrive, then exits 0', async () => {
    const child = spawnEntry(CHILD, []);
    await waitForOutput(child, /ready/);
    child.child.kill('SIGTERM');
    await waitForOutput(child, /closing on SIGTERM/);
    child.child.kill('SIGINT');
    expect(await child.exited).toBe(0);
    expect(child.output().match(/closing on/g)).toHaveLength(1);
    expect(child.output()).toContain('before exit');
  });

  it('exits 1 when closing fails', async () => {
    const child = spawnEntry(CHILD, ['fail']);
    await waitForOutput(child, /ready/);
    child.child.kill('SIGINT');
    expect(await child.exited).toBe(1);
    expect(child.output()).toContain('closing on SIGINT');
    expect(child.output()).toContain('before exit');
  });
});
