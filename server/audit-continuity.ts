/**
 * Audit continuity at start (issue 12.6, 16.5): before the bank serves
 * anyone, its audit log must reach the chain head the ledger committed with
 * its last movement. A log cut, rolled back or replaced behind the ledger's
 * back makes the bank refuse to start, naming the missing lines, instead of
 * numbering on as if nothing had happened.
 */
import type { ChainHead } from '../audit/chain.ts';
import { AuditLogError } from '../audit/errors.ts';
import type { AuditWriter } from '../audit/writer.ts';
import type { KeyedAuditHead, Ledger } from './ledger.ts';

/** The head to store with a group's transaction: where the log stands now, keyed. */
export function keyedHead(files: AuditWriter): KeyedAuditHead {
  const head: ChainHead = files.head;
  return { ...head, mac: files.auditKeys.headMac(head) };
}

export async function checkAuditContinuity(ledger: Ledger, files: AuditWriter): Promise<void> {
  const { head, journalRows } = await ledger.auditHead();
  const investigate =
    'Investigate with `npm run audit -- verify` and `npm run audit -- reconcile` before serving again.';
  if (head === null) {
    if (journalRows === 0) return;
    throw new AuditLogError(
      'ERR_AUDIT_HEAD',
      `the ledger's journal holds ${journalRows} movement(s) but no audit chain head: it was removed, or the ` +
        `ledger was not written by this bank. ${investigate}`,
    );
  }
  if (!files.auditKeys.checkHeadMac(head, head.mac)) {
    throw new AuditLogError(
      'ERR_AUDIT_HEAD',
      `the audit chain head in the ledger (line ${head.lineNumber}) does not carry a valid MAC under this ` +
        `data directory's audit key: it was edited, or the ledger belongs to another bank. ${investigate}`,
    );
  }
  files.checkReaches(head, "the ledger's journal (with its last committed movement)");
}
