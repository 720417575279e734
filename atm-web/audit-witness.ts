/**
 * The ATM as a witness of the bank's audit trail: it keeps the newest signed
 * checkpoint the bank sent it in `<data dir>/atm-N.audit-head` (0600), so an
 * auditor can later prove the bank's log was not cut or rolled back past it
 * (`npm run audit -- verify --head FILE`). A checkpoint older than the one
 * kept (a bank restored from an old copy) never replaces it.
 *
 * When the bank is several nodes, each with its own chain, the file keeps
 * the newest checkpoint of each node the ATM has been linked to: after a
 * failover the ATM goes on witnessing the new node without forgetting what
 * the old one had written.
 */
import fs from 'node:fs';
import path from 'node:path';

import { encodeWitness, parseWitness, type Checkpoint, type WitnessHead } from '../audit/checkpoint.ts';
import { writeFileDurably } from '../runtime/key-files.ts';

export function auditHeadFile(dataDir: string, atmId: number): string {
  return path.join(dataDir, `atm-${atmId}.audit-head`);
}

export class AuditWitness {
  /** The newest head of each node's chain; the key is the node id, '' for a lone bank. */
  private readonly kept = new Map<string, WitnessHead>();

  constructor(
    private readonly file: string,
    private readonly atmId: number,
    private readonly clock: () => Date = () => new Date(),
  ) {
    let text: string | null = null;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      // No head yet: this ATM has not witnessed anything.
    }
    for (const head of (text === null ? null : parseWitness(text))?.heads ?? []) {
      this.kept.set(head.checkpoint.node ?? '', head);
    }
  }

  /** The line number of the newest checkpoint kept of a node's chain (null: a lone bank's); 0 when none. */
  lineNumberOf(node: string | null = null): number {
    return this.kept.get(node ?? '')?.checkpoint.lineNumber ?? 0;
  }

  /**
   * Keeps the checkpoint if it is newer than the one kept of the same node's
   * chain; returns whether it did. Written durably (temp file, fsync,
   * rename), at most as often as the bank signs (once a second).
   */
  offer(checkpoint: Checkpoint): boolean {
    const key = checkpoint.node ?? '';
    const current = this.kept.get(key);
    if (current && checkpoint.lineNumber <= current.checkpoint.lineNumber) return false;
    const heads = new Map(this.kept).set(key, { checkpoint, receivedAt: this.clock().toISOString() });
    const text = encodeWitness({ atm: this.atmId, heads: [...heads.values()] });
    writeFileDurably(this.file, text, { mode: 0o600, replace: true });
    fs.chmodSync(this.file, 0o600);
    this.kept.clear();
    for (const [node, head] of heads) this.kept.set(node, head);
    return true;
  }
}
