/**
 * Appends every event to the plaintext log and the encrypted chained log.
 * `write` puts the lines in both files at once (a failed write throws and
 * leaves both files as they were, so the caller can refuse the transaction
 * instead of letting it go unlogged); `flush` resolves once everything
 * written so far is on disk. Callers flush before they acknowledge anything,
 * so an acknowledged transaction always has its line, also after `kill -9`
 * or a power cut. Flushes are grouped: one fdatasync per file covers every
 * line written before it started (group commit).
 */
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { secureRandom, type RandomSource } from '../protocol/crypto.ts';
import { CHAIN_START, hashLine, sealLine, type ChainPosition } from './chain.ts';
import { formatPlainLine, type AuditEvent } from './event.ts';
import { GroupSync } from '../runtime/group-sync.ts';

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
  /** Prepares the event to be written with the rest of a group (see `AuditWriter.stage`). */
  stage(event: AuditEvent): void;
  /** Resolves when everything written so far is durable. */
  flush(): Promise<void>;
};

const fdatasync = promisify(fs.fdatasync);

type OpenFile = { fd: number; size: number };

const TAIL_WINDOW = 64 * 1024;

/**
 * Opens a log for appending. A final line without its newline was torn by a
 * crash before it was acknowledged; it is cut off so the chain stays valid.
 * Returns the last complete line too.
 */
function openForAppend(file: string): { file: OpenFile; lastLine: string | null; tornBytes: number } {
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
  let lastLine: string | null = null;
  if (lastNewline !== -1) {
    const before = tail.lastIndexOf(0x0a, lastNewline - 1);
    lastLine = tail.subarray(before + 1, lastNewline).toString('utf8');
  }
  return { file: { fd, size: completeEnd }, lastLine, tornBytes };
}

function appendLines(file: OpenFile, lines: string[]): void {
  const bytes = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
  let written = 0;
  while (written < bytes.length) {
    written += fs.writeSync(file.fd, bytes, written, bytes.length - written, file.size + written);
  }
  file.size += bytes.length;
}

function rollBack(file: OpenFile, size: number): void {
  file.size = size;
  try {
    fs.ftruncateSync(file.fd, size);
  } catch {
    // Nothing more we can do; the next open trims any torn line.
  }
}

export class AuditWriter implements AuditSink {
  private position: ChainPosition;
  private closed = false;
  private readonly durability: GroupSync;
  /** Lines sealed but not yet written, and the chain position after them. */
  private staged: { plain: string[]; encrypted: string[]; position: ChainPosition };

  private constructor(
    private readonly key: Buffer,
    private readonly plain: OpenFile,
    private readonly encrypted: OpenFile,
    position: ChainPosition,
    private readonly random: RandomSource,
  ) {
    this.position = position;
    this.staged = { plain: [], encrypted: [], position };
    this.durability = new GroupSync(() => Promise.all([fdatasync(plain.fd), fdatasync(encrypted.fd)]));
  }

  /** Opens (creating if needed) both logs under `<dataDir>/audit/`. */
  static open(
    dataDir: string,
    key: Buffer,
    random: RandomSource = secureRandom,
  ): { writer: AuditWriter; tornBytes: number } {
    const paths = auditPaths(dataDir);
    fs.mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
    const plain = openForAppend(paths.plain);
    const encrypted = openForAppend(paths.encrypted);
    let position = CHAIN_START;
    if (encrypted.lastLine !== null) {
      const lineNumber = Number(encrypted.lastLine.split('.', 1)[0]);
      if (!Number.isSafeInteger(lineNumber) || lineNumber < 1) {
        fs.closeSync(plain.file.fd);
        fs.closeSync(encrypted.file.fd);
        throw new Error(`cannot continue the encrypted audit log: its last line is malformed (${paths.encrypted})`);
      }
      position = { lineNumber, previousHash: hashLine(encrypted.lastLine) };
    }
    const writer = new AuditWriter(key, plain.file, encrypted.file, position, random);
    return { writer, tornBytes: plain.tornBytes + encrypted.tornBytes };
  }

  /**
   * Seals the event as the next line but writes nothing yet: a group of
   * events (one ledger group commit) is staged, then written by
   * `writeStaged` in one system call per file.
   */
  stage(event: AuditEvent): void {
    if (this.closed) throw new Error('audit log is closed');
    const sealed = sealLine(this.key, this.staged.position, event, this.random);
    this.staged.plain.push(formatPlainLine(event));
    this.staged.encrypted.push(sealed.line);
    this.staged.position = sealed.next;
  }

  /** Writes every staged line to both files, or throws leaving both files as they were. */
  writeStaged(): void {
    const { plain, encrypted, position } = this.staged;
    if (plain.length === 0) return;
    this.staged = { plain: [], encrypted: [], position: this.position };
    const sizes = { plain: this.plain.size, encrypted: this.encrypted.size };
    try {
      appendLines(this.plain, plain);
      appendLines(this.encrypted, encrypted);
    } catch (error) {
      rollBack(this.plain, sizes.plain);
      rollBack(this.encrypted, sizes.encrypted);
      throw error;
    }
    this.position = position;
    this.staged.position = position;
    this.durability.wrote();
  }

  /** Forgets staged lines whose transaction did not commit. */
  discardStaged(): void {
    this.staged = { plain: [], encrypted: [], position: this.position };
  }

  write(event: AuditEvent): void {
    this.stage(event);
    this.writeStaged();
  }

  /** Many callers, few fdatasyncs: one sync covers every line written before it started. */
  flush(): Promise<void> {
    return this.durability.all();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    fs.closeSync(this.plain.fd);
    fs.closeSync(this.encrypted.fd);
  }
}
