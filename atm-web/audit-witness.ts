/**
 * The ATM as a witness of the bank's audit trail: it keeps the newest signed
 * checkpoint the bank sent it in `<data dir>/atm-N.audit-head` (0600), so an
 * auditor can later prove the bank's log was not cut or rolled back past it
 * (`npm run audit -- verify --head FILE`). A checkpoint older than the one
 * kept (a bank restored from an old copy) never replaces it.
 */
import fs from 'node:fs';
import path from 'node:path';

import { encodeWitness, parseWitness, type Checkpoint } from '../audit/checkpoint.ts';
import { writeFileDurably } from '../runtime/key-files.ts';

export function auditHeadFile(dataDir: string, atmId: number): string {
  return path.join(dataDir, `atm-${atmId}.audit-head`);
}

export class AuditWitness {
  private kept: Checkpoint | null = null;

  constructor(
    private readonly file: string,
    private readonly atmId: number,
    private readonly clock: () => Date = () => new Date(),
  ) {
    try {
      this.kept = parseWitness(fs.readFileSync(file, 'utf8'))?.checkpoint ?? null;
    } catch {
      // No head yet: this ATM has not witnessed anything.
    }
  }

  /** The line number of the newest checkpoint kept (0 when none). */
  get lineNumber(): number {
    return this.kept?.lineNumber ?? 0;
  }

  /**
   * Keeps the checkpoint if it is newer than the one kept; returns whether it
   * did. Written durably (temp file, fsync, rename), at most as often as the
   * bank signs (once a second).
   */
  offer(checkpoint: Checkpoint): boolean {
    if (this.kept && checkpoint.lineNumber <= this.kept.lineNumber) return false;
    const text = encodeWitness({ atm: this.atmId, checkpoint, receivedAt: this.clock().toISOString() });
    writeFileDurably(this.file, text, { mode: 0o600, replace: true });
    fs.chmodSync(this.file, 0o600);
    this.kept = checkpoint;
    return true;
  }
}
