/**
 * Nothing commits without its audit line: the one place that says how a
 * ledger group and the audit lines of its members commit together. Every
 * ledger calls it at the same three points of a group's transaction:
 *
 *   1. `beforeCommit(events)`, inside the transaction once every member is
 *      decided: the group's lines go to the audit log, one system call per
 *      file. If that throws, the ledger rolls the whole group back, so no
 *      movement commits unlogged.
 *   2. `afterRollback()`: lines prepared for a group that did not commit are
 *      forgotten, and lines already written for it are taken back out of the
 *      files, so nothing is logged that did not commit. When the ledger
 *      cannot know whether its COMMIT took effect (the connection died
 *      under it), it says so and the lines stay.
 *   3. `durable(storeSynced)`, right after the commit: resolves once both the
 *      store's commit and the lines are on disk (their syncs run side by
 *      side). A ledger answers a group's members only after that.
 *
 * The bank therefore never stages, writes or flushes a movement's line
 * itself: it tells the ledger what the line says, and the ledger's answer
 * means both are durable.
 */
import type { AuditEvent } from '../audit/event.ts';
import type { AuditWriter, WriteMark } from '../audit/writer.ts';
import type { KeyedAuditHead } from './ledger.ts';

/** The part of the audit log a group commit uses (`AuditWriter`; tests pass a fake). */
export type GroupAuditLog = Pick<AuditWriter, 'stage' | 'writeStaged' | 'discardStaged' | 'retractWrite' | 'flush'>;

export class AuditedCommit {
  /** The lines the current group wrote, until it committed or rolled back. */
  private written: WriteMark | null = null;

  /**
   * `keyedHead` gives the log's chain head after the lines just written, with
   * its MAC (`audit-continuity.ts`); a ledger stores it in the group's
   * transaction so the bank can hold its log to it at the next start.
   */
  constructor(
    private readonly log: GroupAuditLog,
    private readonly keyedHead: (() => KeyedAuditHead) | null = null,
  ) {}

  /**
   * Writes the group's lines, or throws: the ledger then rolls back and calls
   * `afterRollback`. Returns the head to store with the group, if any.
   */
  beforeCommit(events: readonly AuditEvent[]): KeyedAuditHead | null {
    for (const event of events) this.log.stage(event);
    this.written = this.log.writeStaged();
    return this.keyedHead?.() ?? null;
  }

  /**
   * The group did not commit: its lines go. `outcome: 'unknown'` when the
   * ledger sent COMMIT and lost the answer: the lines stay, since the group
   * may have committed (if it did not, `audit reconcile` names those lines).
   */
  afterRollback(outcome: 'rolled-back' | 'unknown' = 'rolled-back'): void {
    this.log.discardStaged();
    if (this.written && outcome === 'rolled-back') this.log.retractWrite(this.written);
    this.written = null;
  }

  /** Resolves once the committed group and its lines are both on disk. */
  async durable(storeSynced: Promise<unknown>): Promise<void> {
    this.written = null;
    await Promise.all([storeSynced, this.log.flush()]);
  }
}
