/**
 * Appends every event to the plaintext log and the encrypted chained log.
 * `write` puts the lines in both files at once (a failed write throws and
 * leaves both files as they were, so the caller can refuse the transaction
 * instead of letting it go unlogged); `flush` resolves once everything
 * written so far is on disk. Callers flush before they acknowledge anything,
 * so an acknowledged transaction always has its line, also after `kill -9`
 * or a power cut. Flushes are grouped: one fdatasync per file covers every
 * line written before it started (group commit).
 *
 * Opening checks the end of the trail before anything is added to it: a torn
 * last line (a crash mid-write) is trimmed; the last encrypted line must
 * authenticate, or the writer refuses (so a junk line never makes the bank
 * number on from a bogus number); the plaintext log's end must match the
 * hashes the encrypted lines carry, and lines a crash left in one file but
 * not the other are repaired from the encrypted log, which is authenticated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { secureRandom, type RandomSource } from '../protocol/crypto.ts';
import {
  AuditKeys,
  CHAIN_START,
  LOG_ID_BYTES,
  claimedLineNumber,
  hashLine,
  headOf,
  openLine,
  sealLine,
  type ChainHead,
  type ChainPosition,
} from './chain.ts';
import { AuditLogError } from './errors.ts';
import { formatPlainLine, type AuditEvent } from './event.ts';
import { GroupSync, timedSync } from '../runtime/group-sync.ts';

export const AUDIT_DIR = 'audit';
export const PLAIN_LOG = 'audit_log.txt';
export const ENCRYPTED_LOG = 'audit_log.enc';

export function auditPaths(dataDir: string): { dir: string; plain: string; encrypted: string } {
  const dir = path.join(dataDir, AUDIT_DIR);
  return { dir, plain: path.join(dir, PLAIN_LOG), encrypted: path.join(dir, ENCRYPTED_LOG) };
}

/** Anything that can take audit events; the bank depends on this, not on files. */
export type AuditSink = {
  /** Records the event now, or throws; nothing is half-written. */
  write(event: AuditEvent): void;
  /** Resolves when everything written so far is durable. */
  flush(): Promise<void>;
};

const fdatasync = promisify(fs.fdatasync);

type OpenFile = { fd: number; size: number };

const TAIL_WINDOW = 256 * 1024;

/** The complete lines at the end of a file (oldest first), after trimming a torn last line. */
type Tail = { file: OpenFile; lines: string[]; wholeFile: boolean; tornBytes: number };

function openForAppend(file: string): Tail {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  fs.fchmodSync(fd, 0o600);
  const size = fs.fstatSync(fd).size;
  const window = Math.min(size, TAIL_WINDOW);
  const tail = Buffer.alloc(window);
  fs.readSync(fd, tail, 0, window, size - window);
  const lastNewline = tail.lastIndexOf(0x0a);
  const completeEnd = lastNewline === -1 ? (size > TAIL_WINDOW ? size : 0) : size - window + lastNewline + 1;
  const tornBytes = size - completeEnd;
  if (tornBytes > 0) {
    fs.ftruncateSync(fd, completeEnd);
    fs.fsyncSync(fd);
  }
  const wholeFile = window === size;
  let lines: string[] = [];
  if (lastNewline !== -1) {
    lines = tail.subarray(0, lastNewline).toString('utf8').split('\n');
    // Unless the window starts at the file's start, its first line may be cut.
    if (!wholeFile) lines.shift();
  }
  return { file: { fd, size: completeEnd }, lines, wholeFile, tornBytes };
}

function appendLines(file: OpenFile, lines: string[]): void {
  const bytes = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
  let written = 0;
  while (written < bytes.length) {
    written += fs.writeSync(file.fd, bytes, written, bytes.length - written, file.size + written);
  }
  file.size += bytes.length;
}

function truncate(file: OpenFile, size: number): void {
  fs.ftruncateSync(file.fd, size);
  fs.fsyncSync(file.fd);
  file.size = size;
}

function rollBack(file: OpenFile, size: number): void {
  file.size = size;
  try {
    fs.ftruncateSync(file.fd, size);
  } catch {
    // Nothing more we can do; the next open trims any torn line.
  }
}

/** An encrypted line at the end of the log, opened (authenticated) against the line before it. */
type OpenedTailLine = { lineNumber: number; event: AuditEvent; plainHash: Buffer };

/**
 * Authenticates the encrypted log's last lines: each against the hash of the
 * line before it (line 1 against the genesis hash), so the last one's tag
 * is always checked. Returns the chain position after the last line and the
 * opened lines (oldest first).
 */
function checkEncryptedTail(
  keys: AuditKeys,
  tail: Tail,
  file: string,
): { position: ChainPosition; opened: OpenedTailLine[] } {
  const { lines } = tail;
  if (lines.length === 0) {
    if (tail.file.size > 0) {
      throw new AuditLogError('ERR_AUDIT_TAIL', `the encrypted audit log ${file} does not end in a complete line`);
    }
    return { position: CHAIN_START, opened: [] };
  }
  const opened: OpenedTailLine[] = [];
  let position: ChainPosition | null = null;
  for (const [index, line] of lines.entries()) {
    const claimed = claimedLineNumber(line);
    if (position === null) {
      if (claimed === 1) position = CHAIN_START;
      else if (claimed !== null && index < lines.length - 1) {
        // The window's first line is only a predecessor: its hash authenticates through the next line.
        position = { lineNumber: claimed, previousHash: hashLine(line) };
        continue;
      } else {
        throw tailError(file, lines.length, line, 'its line number cannot be read, or the line before it is missing');
      }
    }
    const result = openLine(keys, position, line);
    if (!result.ok) throw tailError(file, claimed ?? position.lineNumber + 1, line, result.reason);
    opened.push({ lineNumber: result.next.lineNumber, event: result.event, plainHash: result.plainHash });
    position = result.next;
  }
  if (position === null) throw tailError(file, 0, lines.at(-1) ?? '', 'no line could be authenticated');
  return { position, opened };
}

function tailError(file: string, lineNumber: number, line: string, reason: string): AuditLogError {
  return new AuditLogError(
    'ERR_AUDIT_TAIL',
    `the encrypted audit log ${file} cannot be continued: line ${lineNumber} (${line.slice(0, 24)}...) ` +
      `does not authenticate: ${reason}. Something other than the bank wrote to it. ` +
      `Investigate with \`npm run audit -- verify\`, keep the file as evidence, and restore the log ` +
      `(or move it aside) before starting the bank again.`,
  );
}

/**
 * Brings the plaintext log's end in line with the encrypted log's: lines a
 * crash left only in the plaintext log (written, never sealed, never
 * committed) are cut; lines a power cut lost from it are rendered again from
 * the authenticated encrypted lines. Returns what it repaired, for the trail.
 */
function alignPlainLog(plain: Tail, opened: OpenedTailLine[], file: string): string[] {
  const plainHashes = plain.lines.map((line) => hashLine(line));
  const lastPlain = plainHashes.at(-1) ?? null;
  const lastSealed = opened.at(-1)?.plainHash ?? null;
  if (lastSealed === null && plain.file.size === 0) return [];
  if (lastSealed !== null && lastPlain?.equals(lastSealed)) return [];
  // The plaintext log runs on past the encrypted log's last line: those lines were never sealed.
  const keep =
    lastSealed === null ? (plain.wholeFile ? 0 : -1) : plainHashes.findLastIndex((hash) => hash.equals(lastSealed)) + 1;
  if (keep > 0 || (keep === 0 && lastSealed === null)) {
    const cut = plain.lines.slice(keep);
    truncate(plain.file, plain.file.size - cut.reduce((sum, line) => sum + Buffer.byteLength(line, 'utf8') + 1, 0));
    return [`${cut.length} plaintext line(s) that were never sealed trimmed`];
  }
  // The plaintext log stops short: render the missing lines from the sealed events.
  const stopsAt =
    lastPlain === null
      ? opened[0]?.lineNumber === 1
        ? -1
        : null
      : opened.findLastIndex((line) => line.plainHash.equals(lastPlain));
  if (stopsAt !== null && (stopsAt >= 0 || lastPlain === null)) {
    const missing = opened.slice(stopsAt + 1);
    const rendered = missing.map((line) => formatPlainLine(line.event));
    if (rendered.every((line, k) => hashLine(line).equals(missing[k]?.plainHash ?? Buffer.alloc(0)))) {
      appendLines(plain.file, rendered);
      fs.fsyncSync(plain.file.fd);
      return [`${rendered.length} plaintext line(s) restored from the encrypted log`];
    }
  }
  throw new AuditLogError(
    'ERR_AUDIT_PLAIN',
    `the plaintext audit log ${file} does not match the encrypted log's last lines and cannot be repaired ` +
      `from them. Investigate with \`npm run audit -- verify\` (it names the differing lines).`,
  );
}

/** Reads a file backwards from `end` (a line boundary), a chunk at a time, yielding its lines newest first. */
function* linesBackward(fd: number, end: number, chunkBytes = 1 << 20): Generator<string> {
  let carry = Buffer.alloc(0);
  let position = end;
  while (position > 0) {
    const size = Math.min(chunkBytes, position);
    position -= size;
    const chunk = Buffer.alloc(size);
    fs.readSync(fd, chunk, 0, size, position);
    const buffer = Buffer.concat([chunk, carry]);
    // `lineEnd` is the newline ending the newest line not yet yielded.
    let lineEnd = buffer.length - 1;
    let start = lineEnd > 0 ? buffer.lastIndexOf(0x0a, lineEnd - 1) : -1;
    while (start !== -1) {
      yield buffer.toString('utf8', start + 1, lineEnd);
      lineEnd = start;
      start = lineEnd > 0 ? buffer.lastIndexOf(0x0a, lineEnd - 1) : -1;
    }
    // The oldest line in this chunk may begin in the one before it.
    carry = buffer.subarray(0, lineEnd + 1);
  }
  if (carry.length > 0) yield carry.toString('utf8', 0, carry.length - 1);
}

/** Where the files stood before and after one `writeStaged`. */
export type WriteMark = {
  readonly before: { plain: number; encrypted: number; position: ChainPosition };
  readonly after: { plain: number; encrypted: number };
};

export type AuditWriterOptions = { random?: RandomSource };

export class AuditWriter implements AuditSink {
  private position: ChainPosition;
  private durable: ChainHead;
  private closed = false;
  private readonly durability: GroupSync;
  /** The current key period: a fresh one at every open and after every failed group. */
  private logId: Buffer;
  /** Lines sealed but not yet written, and the chain position after them. */
  private staged: { plain: string[]; encrypted: string[]; position: ChainPosition };
  /** The last `writeStaged`, which alone may be taken back. */
  private lastWrite: WriteMark | null = null;

  private constructor(
    private readonly keys: AuditKeys,
    private readonly plain: OpenFile,
    private readonly encrypted: OpenFile,
    position: ChainPosition,
    private readonly random: RandomSource,
    onSynced?: (seconds: number) => void,
  ) {
    this.position = position;
    this.durable = headOf(position);
    this.logId = random(LOG_ID_BYTES);
    this.staged = { plain: [], encrypted: [], position };
    this.durability = new GroupSync(
      timedSync(() => Promise.all([fdatasync(plain.fd), fdatasync(encrypted.fd)]), onSynced),
    );
  }

  /**
   * Opens (creating if needed) both logs under `<dataDir>/audit/`, checking
   * their ends first (see the module comment). `repaired` describes anything
   * trimmed or restored, for the caller to record.
   */
  static open(
    dataDir: string,
    key: Buffer,
    random: RandomSource = secureRandom,
    options: { onSynced?: (seconds: number) => void } = {},
  ): { writer: AuditWriter; tornBytes: number; repaired: string[] } {
    const paths = auditPaths(dataDir);
    fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    const keys = new AuditKeys(key);
    const plain = openForAppend(paths.plain);
    const encrypted = openForAppend(paths.encrypted);
    try {
      const { position, opened } = checkEncryptedTail(keys, encrypted, paths.encrypted);
      const repaired = alignPlainLog(plain, opened, paths.plain);
      const writer = new AuditWriter(keys, plain.file, encrypted.file, position, random, options.onSynced);
      return { writer, tornBytes: plain.tornBytes + encrypted.tornBytes, repaired };
    } catch (error) {
      fs.closeSync(plain.file.fd);
      fs.closeSync(encrypted.file.fd);
      throw error;
    }
  }

  /** The head after every line written so far. */
  get head(): ChainHead {
    return headOf(this.position);
  }

  /** The head after every line known to be on disk (what checkpoints may vouch for). */
  get durableHead(): ChainHead {
    return this.durable;
  }

  /** The keys of this log (the chain-head MAC for the ledger). */
  get auditKeys(): AuditKeys {
    return this.keys;
  }

  /**
   * Refuses to continue a log that lacks lines the ledger says were written:
   * `head` is the chain head the ledger committed with its last group. The
   * log must reach that line, and that line must be the one the ledger saw.
   */
  checkReaches(head: ChainHead, source: string): void {
    const ends = this.position.lineNumber;
    const investigate =
      'Investigate with `npm run audit -- verify` and `npm run audit -- reconcile`, and restore the audit log ' +
      'from a backup or a witness before serving again.';
    if (ends < head.lineNumber) {
      throw new AuditLogError(
        'ERR_AUDIT_GAP',
        `the audit log ends at line ${ends}, but ${source} recorded that lines through ${head.lineNumber} were ` +
          `written: lines ${ends + 1}-${head.lineNumber} are missing (cut, rolled back or replaced). ${investigate}`,
      );
    }
    if (head.lineNumber === 0) return;
    if (ends === head.lineNumber) {
      if (this.position.previousHash.equals(head.chainHash)) return;
    } else {
      for (const line of linesBackward(this.encrypted.fd, this.encrypted.size)) {
        const claimed = claimedLineNumber(line);
        if (claimed === null || claimed > head.lineNumber) continue;
        if (claimed === head.lineNumber && hashLine(line).equals(head.chainHash)) return;
        break;
      }
    }
    throw new AuditLogError(
      'ERR_AUDIT_GAP',
      `the audit log's line ${head.lineNumber} is not the line ${source} recorded: the log was rewritten or ` +
        `replaced from that line on. ${investigate}`,
    );
  }

  /**
   * Seals the event as the next line but writes nothing yet: a group of
   * events (one ledger group commit) is staged, then written by
   * `writeStaged` in one system call per file.
   */
  stage(event: AuditEvent): void {
    if (this.closed) throw new Error('audit log is closed');
    const plainLine = formatPlainLine(event);
    const sealed = sealLine(this.keys, this.logId, this.staged.position, event, plainLine);
    this.staged.plain.push(plainLine);
    this.staged.encrypted.push(sealed.line);
    this.staged.position = sealed.next;
  }

  /**
   * Writes every staged line to both files, or throws leaving both files as
   * they were. Returns a mark `retractWrite` can take these lines back with
   * (null when nothing was staged).
   */
  writeStaged(): WriteMark | null {
    const { plain, encrypted, position } = this.staged;
    if (plain.length === 0) return null;
    const before = this.position;
    this.staged = { plain: [], encrypted: [], position: this.position };
    const sizes = { plain: this.plain.size, encrypted: this.encrypted.size };
    try {
      appendLines(this.plain, plain);
      appendLines(this.encrypted, encrypted);
    } catch (error) {
      rollBack(this.plain, sizes.plain);
      rollBack(this.encrypted, sizes.encrypted);
      // Those line numbers will be sealed again with other events: never under the same subkey and nonce.
      this.logId = this.random(LOG_ID_BYTES);
      throw error;
    }
    this.position = position;
    this.staged.position = position;
    this.durability.wrote();
    this.lastWrite = {
      before: { ...sizes, position: before },
      after: { plain: this.plain.size, encrypted: this.encrypted.size },
    };
    return this.lastWrite;
  }

  /**
   * Takes back the lines `mark` names, for a group whose transaction did not
   * commit after they were written (a COMMIT the database refused), so the
   * files never record what did not happen. Refuses (returns false) unless
   * they are still the last lines written, and no sync has covered them yet
   * (a checkpoint may already vouch for lines a sync covered).
   */
  retractWrite(mark: WriteMark): boolean {
    const last = this.lastWrite;
    if (last !== mark) return false;
    this.lastWrite = null;
    if (this.plain.size !== last.after.plain || this.encrypted.size !== last.after.encrypted) return false;
    if (this.durable.lineNumber > last.before.position.lineNumber) return false;
    truncate(this.plain, last.before.plain);
    truncate(this.encrypted, last.before.encrypted);
    this.position = last.before.position;
    this.staged = { plain: [], encrypted: [], position: this.position };
    // Those line numbers will be sealed again with other events: never under the same subkey and nonce.
    this.logId = this.random(LOG_ID_BYTES);
    return true;
  }

  /** Forgets staged lines whose transaction did not commit. */
  discardStaged(): void {
    if (this.staged.plain.length > 0) this.logId = this.random(LOG_ID_BYTES);
    this.staged = { plain: [], encrypted: [], position: this.position };
  }

  write(event: AuditEvent): void {
    this.stage(event);
    this.writeStaged();
  }

  /** Many callers, few fdatasyncs: one sync covers every line written before it started. */
  async flush(): Promise<void> {
    const head = this.head;
    await this.durability.all();
    if (head.lineNumber > this.durable.lineNumber) this.durable = head;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    fs.closeSync(this.plain.fd);
    fs.closeSync(this.encrypted.fd);
  }
}
