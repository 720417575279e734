/**
 * Sits between the bank and its audit writer and reports each event once it
 * is in the log (so metrics, the operator page and the console count what
 * was recorded, not what was attempted), and each write that failed. It also
 * knows whether the log is failing right now, for the health check.
 */
import type { AuditEvent } from '../audit/event.ts';
import type { AuditSink, WriteMark } from '../audit/writer.ts';
import type { GroupAuditLog } from './audited-commit.ts';

/** The audit writer as the bank and a group commit use it. */
export type GroupAuditSink = AuditSink & GroupAuditLog;

export type AuditObserver = {
  written(events: readonly AuditEvent[]): void;
  failed(): void;
};

export class AuditTap implements GroupAuditSink {
  /** Staged in the writer, in the same order, not yet written. */
  private pending: AuditEvent[] = [];
  private lastWriteFailed = false;

  constructor(
    private readonly inner: GroupAuditSink,
    private readonly observer: AuditObserver,
  ) {}

  /** True after a write failed, until one succeeds again. */
  get failing(): boolean {
    return this.lastWriteFailed;
  }

  stage(event: AuditEvent): void {
    this.inner.stage(event);
    this.pending.push(event);
  }

  write(event: AuditEvent): void {
    // The writer writes whatever was staged before this event too.
    this.pending.push(event);
    this.settle(() => this.inner.write(event));
  }

  writeStaged(): WriteMark | null {
    let mark: WriteMark | null = null;
    this.settle(() => {
      mark = this.inner.writeStaged();
    });
    return mark;
  }

  /** The console and metrics have already counted these lines; the files will not keep them. */
  retractWrite(mark: WriteMark): boolean {
    return this.inner.retractWrite(mark);
  }

  discardStaged(): void {
    this.inner.discardStaged();
    this.pending = [];
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  private settle(write: () => void): void {
    const events = this.pending;
    this.pending = [];
    try {
      write();
    } catch (error) {
      this.lastWriteFailed = true;
      this.observer.failed();
      throw error;
    }
    this.lastWriteFailed = false;
    if (events.length > 0) this.observer.written(events);
  }
}
