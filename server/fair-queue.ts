/**
 * A bounded queue that is fair across sources (an ATM and the address a
 * customer came from). Jobs leave round-robin, one per source in turn, so a
 * source with 100 jobs waiting delays a newcomer by one job, not 100. When
 * the queue is full, a newcomer still gets in if some source holds more jobs
 * than it does: that source's newest job makes way (it is refused, "busy,
 * try again"). A flood can therefore only crowd out itself.
 */
export type FairQueueLimits = {
  /** Jobs waiting in total. */
  maxQueued: number;
  /** Jobs one source may have waiting. */
  maxPerSource: number;
};

export type Admission<T> = { admitted: true; evicted: T | null } | { admitted: false };

export class FairQueue<T> {
  /** Insertion-ordered: the next source to be served is the first key. */
  private readonly bySource = new Map<string, T[]>();
  private count = 0;

  constructor(private readonly limits: FairQueueLimits) {}

  get size(): number {
    return this.count;
  }

  /** Queues `item` for `source`, or refuses it; a job that made way for it is returned as `evicted`. */
  push(source: string, item: T): Admission<T> {
    const own = this.bySource.get(source);
    const ownCount = own?.length ?? 0;
    if (ownCount >= this.limits.maxPerSource) return { admitted: false };
    let evicted: T | null = null;
    if (this.count >= this.limits.maxQueued) {
      const greediest = this.greediestSource();
      if (!greediest || greediest[1].length <= ownCount + 1) return { admitted: false };
      evicted = greediest[1].pop() ?? null;
      this.count -= 1;
      if (greediest[1].length === 0) this.bySource.delete(greediest[0]);
    }
    if (own) own.push(item);
    else this.bySource.set(source, [item]);
    this.count += 1;
    return { admitted: true, evicted };
  }

  /** The next job, taking sources in turn. */
  shift(): T | undefined {
    const next = this.bySource.entries().next();
    if (next.done) return undefined;
    const [source, items] = next.value;
    const item = items.shift();
    this.bySource.delete(source);
    // Served once: to the back of the line, if it has more waiting.
    if (items.length > 0) this.bySource.set(source, items);
    this.count -= 1;
    return item;
  }

  /** Empties the queue, returning everything that was waiting. */
  drain(): T[] {
    const all = [...this.bySource.values()].flat();
    this.bySource.clear();
    this.count = 0;
    return all;
  }

  private greediestSource(): [string, T[]] | null {
    let best: [string, T[]] | null = null;
    for (const entry of this.bySource) if (!best || entry[1].length > best[1].length) best = entry;
    return best;
  }
}
