/** Reads the encrypted audit log back, verifying the chain line by line. */
import fs from 'node:fs';

import { CHAIN_START, openLine } from './chain.ts';
import type { AuditEvent } from './event.ts';

export type VerifiedLog = {
  entries: AuditEvent[];
  /** The first line that failed, 1-based as in a text editor; null when intact. */
  firstBad: { line: number; reason: string } | null;
};

export function verifyLogText(key: Buffer, text: string): VerifiedLog {
  const entries: AuditEvent[] = [];
  const lines = text.split('\n');
  // A trailing newline leaves one empty element; anything else empty is damage.
  if (lines.at(-1) === '') lines.pop();
  let position = CHAIN_START;
  for (const [index, line] of lines.entries()) {
    const opened = openLine(key, position, line);
    if (!opened.ok) return { entries, firstBad: { line: index + 1, reason: opened.reason } };
    entries.push(opened.event);
    position = opened.next;
  }
  return { entries, firstBad: null };
}

export function verifyLogFile(key: Buffer, file: string): VerifiedLog {
  return verifyLogText(key, fs.readFileSync(file, 'utf8'));
}
