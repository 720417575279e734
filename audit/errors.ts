/**
 * Why the bank will not open its audit log. Each of these stops the bank
 * before it serves anyone: a trail that cannot be continued honestly is
 * investigated first (docs/errors.md says how).
 */
export type AuditLogErrorCode =
  /** The encrypted log's last line does not authenticate (junk appended, or the end rewritten). */
  | 'ERR_AUDIT_TAIL'
  /** The plaintext log's end does not match the encrypted log and cannot be repaired from it. */
  | 'ERR_AUDIT_PLAIN'
  /** The log lacks lines the ledger's chain head says were written (cut, rolled back or replaced). */
  | 'ERR_AUDIT_GAP'
  /** The chain head stored in the ledger does not carry a valid MAC under the audit key. */
  | 'ERR_AUDIT_HEAD';

export class AuditLogError extends Error {
  override readonly name = 'AuditLogError';

  constructor(
    readonly code: AuditLogErrorCode,
    message: string,
  ) {
    super(message);
  }
}
