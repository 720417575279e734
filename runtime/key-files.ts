/**
 * The key files in a data directory, read and written here so the bank, the
 * ATMs and the auditor's command share one format and none imports another.
 *
 * `bank.auth`: the credential an ATM must hold to talk to this bank (the idea
 * of seed 000's auth file). It holds a 32-byte terminal key that both sides
 * mix into the handshake; it never crosses the wire.
 *
 * `audit.key`: the key of the encrypted audit log (base64), used for nothing else.
 *
 * `audit-signing.key`: the Ed25519 seed (RFC 8032, base64) with which the bank
 * signs checkpoints of its audit chain for the ATMs to witness.
 *
 * Every key file is created by `createSecretFile`: complete or absent after a
 * crash, 0600, never replaced.
 */
import fs from 'node:fs';
import path from 'node:path';

import { KEY_BYTES, secureRandom } from '../protocol/crypto.ts';

export const BANK_AUTH_FILE = 'bank.auth';
export const AUDIT_KEY_FILE = 'audit.key';
export const AUDIT_SIGNING_KEY_FILE = 'audit-signing.key';
const FORMAT = 'atm-bank-auth/v1';

export function encodeBankAuth(terminalKey: Buffer): string {
  return `${JSON.stringify({ format: FORMAT, terminalKey: terminalKey.toString('base64') }, null, 2)}\n`;
}

export function readBankAuth(file: string): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'not valid JSON';
    throw new Error(`cannot read the bank credential ${file}: ${reason}`);
  }
  if (typeof parsed === 'object' && parsed !== null && 'format' in parsed && 'terminalKey' in parsed) {
    const { format, terminalKey } = parsed;
    if (format === FORMAT && typeof terminalKey === 'string') {
      const key = Buffer.from(terminalKey, 'base64');
      if (key.length === KEY_BYTES) return key;
    }
  }
  throw new Error(`${file} is not a valid ${FORMAT} credential`);
}

export function encodeAuditKey(key: Buffer): string {
  return `${key.toString('base64')}\n`;
}

export function readAuditKey(file: string): Buffer {
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return key;
}

/** The audit signing key's seed; same file format as `audit.key`. */
export const encodeAuditSigningKey = encodeAuditKey;
export const readAuditSigningKey = readAuditKey;

/**
 * Writes `contents` to `file` so that, whatever moment power is lost, `file`
 * is either absent (or its old version) or complete: the bytes go to a temp
 * file beside it (created with `mode`), are fsynced, the temp file is linked
 * into place (or renamed over the old file with `replace`), and the directory
 * is fsynced so the new name is durable too. Without `replace`, an existing
 * `file` is never touched and the call throws EEXIST.
 */
export function writeFileDurably(
  file: string,
  contents: string | Buffer,
  options: { mode?: number; replace?: boolean } = {},
): void {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${secureRandom(6).toString('hex')}.tmp`);
  const fd = fs.openSync(temp, 'wx', options.mode ?? 0o600);
  try {
    try {
      fs.writeFileSync(fd, contents);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (options.replace) fs.renameSync(temp, file);
    // link(2), unlike rename(2), refuses to replace: two processes creating
    // the same key at once cannot clobber each other.
    else fs.linkSync(temp, file);
  } finally {
    fs.rmSync(temp, { force: true });
  }
  fsyncDirectory(dir);
}

function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates a 0600 key file unless it exists (an existing key is never
 * replaced); durable and complete or absent after a crash (`writeFileDurably`).
 * Returns true when this call created it.
 */
export function createSecretFile(file: string, contents: string | Buffer): boolean {
  let created = true;
  try {
    writeFileDurably(file, contents, { mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    created = false;
  }
  fs.chmodSync(file, 0o600);
  return created;
}
