/**
 * Reads the encrypted audit log back, verifying the chain line by line, and
 * (when given) the plaintext log against the hashes the encrypted lines carry.
 *
 * A line that does not open is reported, and reading goes on if the next line
 * chains from the last good one: a junk line inserted (or appended and then
 * written past) hides no genuine line after it. A line that breaks the chain
 * (modified, deleted) ends the reading: what follows cannot be tied to it.
 */
import fs from 'node:fs';

import { AuditKeys, CHAIN_START, headOf, hashLine, openLine, type ChainHead } from './chain.ts';
import type { AuditEvent } from './event.ts';

/** One verified entry and the chain head right after it. */
export type VerifiedEntry = { lineNumber: number; event: AuditEvent; head: ChainHead };

export type LogProblem = {
  /** 1-based line in the file, as in a text editor. */
  line: number;
  reason: string;
};

export type VerifiedLog = {
  entries: VerifiedEntry[];
  /** The first problem, or null when the log is intact. */
  firstBad: LogProblem | null;
  problems: LogProblem[];
  /** The head after the last verified line. */
  head: ChainHead;
  /** Problems found in the plaintext log (only when it was given). */
  plainProblems: LogProblem[];
};

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  // A trailing newline leaves one empty element; anything else empty is damage.
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

export function verifyLogText(key: Buffer | AuditKeys, text: string, plainText?: string): VerifiedLog {
  const keys = key instanceof AuditKeys ? key : new AuditKeys(key);
  const entries: VerifiedEntry[] = [];
  const problems: LogProblem[] = [];
  const plainHashes: Buffer[] = [];
  let position = CHAIN_START;
  let skipping = false;
  for (const [index, line] of splitLines(text).entries()) {
    const opened = openLine(keys, position, line);
    if (!opened.ok) {
      if (skipping) {
        // Two bad lines in a row: the chain cannot be picked up again.
        problems.push({ line: index + 1, reason: `${opened.reason}; verification stops here` });
        break;
      }
      problems.push({ line: index + 1, reason: opened.reason });
      skipping = true;
      continue;
    }
    if (skipping) {
      const last = problems.at(-1);
      if (last) last.reason += ' (not part of the chain: the lines after it continue from the line before it)';
    }
    skipping = false;
    position = opened.next;
    entries.push({ lineNumber: position.lineNumber, event: opened.event, head: headOf(position) });
    plainHashes.push(opened.plainHash);
  }
  return {
    entries,
    firstBad: problems[0] ?? null,
    problems,
    head: headOf(position),
    plainProblems: plainText === undefined ? [] : checkPlainLog(plainText, plainHashes),
  };
}

/** Line n of the plaintext log must hash to what encrypted line n carries. */
function checkPlainLog(plainText: string, expected: Buffer[]): LogProblem[] {
  const lines = splitLines(plainText);
  const problems: LogProblem[] = [];
  for (const [index, hash] of expected.entries()) {
    const line = lines[index];
    if (line === undefined) {
      problems.push({ line: index + 1, reason: `missing: the plaintext log ends at line ${lines.length}` });
      break;
    }
    if (!hashLine(line).equals(hash)) {
      problems.push({ line: index + 1, reason: 'differs from what the encrypted log recorded' });
    }
  }
  if (lines.length > expected.length) {
    problems.push({
      line: expected.length + 1,
      reason: `${lines.length - expected.length} line(s) the encrypted log does not have`,
    });
  }
  return problems;
}

export function verifyLogFile(key: Buffer | AuditKeys, file: string, plainFile?: string): VerifiedLog {
  return verifyLogText(
    key,
    fs.readFileSync(file, 'utf8'),
    plainFile === undefined ? undefined : fs.readFileSync(plainFile, 'utf8'),
  );
}
