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
 *      forgotten, so nothing is logged that did not commit.
 *   3. `durable(storeSynced)`, right after the commit: resolves once both the
 *      store's commit and the lines are on disk (their syncs run side by
 *      side). A ledger answers a group's members only after that.
 *
 * The bank therefore never stages, writes or flushes a movement's line
 * itself: it tells the ledger what the line says, and the ledger's answer
 * means both are durable.
 */
import type { AuditEvent } from '../audit/event.ts';
import type { AuditWriter } from '../audit/writer.ts';

/** The part of the audit log a group commit uses (`AuditWriter`; tests pass a fake). */
export type GroupAuditLog = Pick<AuditWriter, 'stage' | 'writeStaged' | 'discardStaged' | 'flush'>;

export class AuditedCommit {
  constructor(private readonly log: GroupAuditLog) {}

  /** Writes the group's lines, or throws: the ledger then rolls back and calls `afterRollback`. */
  beforeCommit(events: readonly AuditEvent[]): void {
    for (const event of events) this.log.stage(event);
    this.log.writeStaged();
  }

  afterRollback(): void {
    this.log.discardStaged();
  }

  /** Resolves once the committed group and its lines are both on disk. */
  async durable(storeSynced: Promise<unknown>): Promise<void> {
    await Promise.all([storeSynced, this.log.flush()]);
  }
}
