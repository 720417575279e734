import { describe, expect, it } from 'vitest';

import { FairQueue } from '../../server/fair-queue.ts';

function drainOrder(queue: FairQueue<string>): string[] {
  const order: string[] = [];
  for (let item = queue.shift(); item !== undefined; item = queue.shift()) order.push(item);
  return order;
}

describe('FairQueue', () => {
  it('serves sources in turn, so a newcomer waits behind one job per source, not behind a flood', () => {
    const queue = new FairQueue<string>({ maxQueued: 100, maxPerSource: 100 });
    for (let i = 0; i < 5; i += 1) queue.push('flood', `f${i}`);
    queue.push('alice', 'a0');
    queue.push('bob', 'b0');
    expect(drainOrder(queue)).toEqual(['f0', 'a0', 'b0', 'f1', 'f2', 'f3', 'f4']);
    expect(queue.size).toBe(0);
  });

  it('refuses a source past its own share', () => {
    const queue = new FairQueue<string>({ maxQueued: 100, maxPerSource: 2 });
    expect(queue.push('flood', 'f0').admitted).toBe(true);
    expect(queue.push('flood', 'f1').admitted).toBe(true);
    expect(queue.push('flood', 'f2').admitted).toBe(false);
    expect(queue.push('alice', 'a0').admitted).toBe(true);
    expect(queue.size).toBe(3);
  });

  it('when full, lets a newcomer in by refusing the greediest source its newest job', () => {
    const queue = new FairQueue<string>({ maxQueued: 4, maxPerSource: 10 });
    for (let i = 0; i < 3; i += 1) queue.push('flood', `f${i}`);
    queue.push('bob', 'b0');
    expect(queue.push('alice', 'a0')).toEqual({ admitted: true, evicted: 'f2' });
    expect(queue.size).toBe(4);
    // Now every source holds at most two: a fourth source still gets in at the flood's expense...
    expect(queue.push('carol', 'c0')).toEqual({ admitted: true, evicted: 'f1' });
    // ...but once all are even, a source cannot push out another to queue a second job.
    expect(queue.push('alice', 'a1')).toEqual({ admitted: false });
    expect(drainOrder(queue)).toEqual(['f0', 'b0', 'a0', 'c0']);
  });
});
