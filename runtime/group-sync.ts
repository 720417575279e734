/**
 * Group commit for one or more files: writers count what they wrote, then
 * wait until a sync that started after their write has finished. A sync
 * already in flight that started late enough is shared. Otherwise a new one
 * starts, unless `maxInFlight` syncs are already running: then the writer
 * waits for one to finish and the next sync covers everyone who queued
 * meanwhile (fewer, larger groups under load; shorter waits when idle).
 * Used by the audit log and by the ledger's WAL.
 */
export class GroupSync {
  private written = 0;
  private durable = 0;
  private latest: { covering: number; done: Promise<void> } | null = null;
  private readonly running = new Set<Promise<void>>();
  private syncs = 0;

  constructor(
    private readonly sync: () => Promise<unknown>,
    private readonly maxInFlight = 1,
  ) {}

  /** Counts one write; returns the number to wait for. */
  wrote(): number {
    this.written += 1;
    return this.written;
  }

  /** Resolves once everything counted up to `target` is on disk. */
  async durableThrough(target: number): Promise<void> {
    while (this.durable < target) {
      if (this.latest && this.latest.covering >= target) {
        await this.latest.done;
        continue;
      }
      if (this.running.size >= this.maxInFlight) {
        await Promise.race(this.running).catch(() => undefined);
        continue;
      }
      await this.start();
    }
  }

  /** Resolves once everything written so far is on disk. */
  all(): Promise<void> {
    return this.durableThrough(this.written);
  }

  get syncCount(): number {
    return this.syncs;
  }

  private start(): Promise<void> {
    const covering = this.written;
    this.syncs += 1;
    const done: Promise<void> = this.sync()
      .then(() => {
        this.durable = Math.max(this.durable, covering);
      })
      .finally(() => this.running.delete(done));
    this.running.add(done);
    this.latest = { covering, done };
    return done;
  }
}

/** Wraps a sync so each one that succeeds reports how long it took, in seconds (for the fsync metric). */
export function timedSync<T>(sync: () => Promise<T>, onSynced?: (seconds: number) => void): () => Promise<T> {
  if (!onSynced) return sync;
  return async () => {
    const started = process.hrtime.bigint();
    const result = await sync();
    onSynced(Number(process.hrtime.bigint() - started) / 1e9);
    return result;
  };
}
