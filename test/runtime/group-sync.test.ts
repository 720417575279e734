import { describe, expect, it } from 'vitest';

import { GroupSync } from '../../runtime/group-sync.ts';

/** A sync whose completions the test controls. */
function manualSync() {
  const pending: Array<() => void> = [];
  return {
    sync: () => new Promise<void>((resolve) => pending.push(resolve)),
    finishNext: () => pending.shift()?.(),
    get started() {
      return pending.length;
    },
  };
}

describe('GroupSync', () => {
  it('lets every write made before a sync started share that one sync', async () => {
    const disk = manualSync();
    const group = new GroupSync(disk.sync);
    const waits = [group.wrote(), group.wrote(), group.wrote()].map((n) => group.durableThrough(n));
    expect(disk.started).toBe(1);
    disk.finishNext();
    await Promise.all(waits);
    expect(group.syncCount).toBe(1);
  });

  it('never lets a write ride on a sync that started before it; with room, starts its own at once', async () => {
    const disk = manualSync();
    const group = new GroupSync(disk.sync, 2);
    let firstDone = false;
    let secondDone = false;
    void group.durableThrough(group.wrote()).then(() => (firstDone = true));
    void group.durableThrough(group.wrote()).then(() => (secondDone = true));
    // The second write came after the first sync started: it gets its own, started at once.
    expect(disk.started).toBe(2);
    disk.finishNext();
    await new Promise((resolve) => setImmediate(resolve));
    expect([firstDone, secondDone]).toEqual([true, false]);
    disk.finishNext();
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondDone).toBe(true);
  });

  it('with one sync in flight at most, queues later writes into a single next sync', async () => {
    const disk = manualSync();
    const group = new GroupSync(disk.sync, 1);
    const first = group.durableThrough(group.wrote());
    const later = [group.wrote(), group.wrote(), group.wrote()].map((n) => group.durableThrough(n));
    await new Promise((resolve) => setImmediate(resolve));
    expect(disk.started).toBe(1);
    disk.finishNext();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    expect(disk.started).toBe(1);
    disk.finishNext();
    await Promise.all(later);
    expect(group.syncCount).toBe(2);
  });

  it('resolves at once when nothing new was written', async () => {
    const disk = manualSync();
    const group = new GroupSync(disk.sync);
    await group.all();
    expect(disk.started).toBe(0);
  });

  it('fails the waiters of a failed sync, and a later write starts afresh', async () => {
    let fail = true;
    const group = new GroupSync(async () => {
      if (fail) throw new Error('EIO');
    });
    await expect(group.durableThrough(group.wrote())).rejects.toThrow('EIO');
    fail = false;
    await expect(group.durableThrough(group.wrote())).resolves.toBeUndefined();
  });
});
