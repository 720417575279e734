/**
 * The key files in a data directory, read and written here so the bank, the
 * ATMs and the auditor's command share one format and none imports another.
 * Every key file is created by `createSecretFile`: complete or absent after a
 * crash, 0600, never replaced. Formats (README, "Key file formats"):
 *
 * `bank.keys` (the bank only): the master terminal key, from which each ATM's
 * own key is derived, and the private scalar of the bank's static X25519 key,
 * whose public half every ATM pins.
 *   {"format":"atm-bank-keys/v1","terminalMasterKey":"<base64, 32 bytes>","staticPrivateKey":"<base64, 32 bytes>"}
 *
 * `atm-N.key` (ATM N only; written by `npm run bank -- provision-atm N`):
 * everything ATM N needs to connect, and nothing that lets it be any other
 * ATM or the bank.
 *   {"format":"atm-terminal/v1","atm":N,"terminalKey":"<base64, 32 bytes>","bankPublicKey":"<base64, 32 bytes>"}
 *
 * `revoked-atms` (the bank only): the terminals refused from then on.
 *   {"format":"atm-revocations/v1","revoked":[{"atm":N,"at":"<ISO time>"}]}
 *
 * `audit.key`: the key of the encrypted audit log (base64), used for nothing else.
 *
 * `audit-signing.key`: the Ed25519 seed (RFC 8032, base64) with which the bank
 * signs checkpoints of its audit chain for the ATMs to witness.
 */
import fs from 'node:fs';
import path from 'node:path';

import { KEY_BYTES, secureRandom } from '../protocol/crypto.ts';
import { MAX_ATM_ID, type AtmCredential } from '../protocol/handshake.ts';

export const BANK_KEYS_FILE = 'bank.keys';
export const REVOCATIONS_FILE = 'revoked-atms';
export const AUDIT_KEY_FILE = 'audit.key';
export const AUDIT_SIGNING_KEY_FILE = 'audit-signing.key';
/** A bank node's name in a shared PostgreSQL ledger (server/data-dir.ts); `verify --head` reads it too. */
export const NODE_ID_FILE = 'node.id';

const BANK_KEYS_FORMAT = 'atm-bank-keys/v1';
const CREDENTIAL_FORMAT = 'atm-terminal/v1';
const REVOCATIONS_FORMAT = 'atm-revocations/v1';

/** The file ATM `atmId` reads its credential from, in its data directory. */
export function atmKeyFileName(atmId: number): string {
  return `atm-${atmId}.key`;
}

/** The bank's own long-term secrets. */
export type BankKeys = { terminalMasterKey: Buffer; staticPrivateKey: Buffer };

export type Revocation = { atm: number; at: string };

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** Reads a JSON key file; a missing or unreadable file gets an error that names it and says why. */
function readJson(file: string, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'not valid JSON';
    throw new Error(`cannot read ${what} ${file}: ${reason}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${file} is not a valid ${what}`);
  }
  return parsed as Record<string, unknown>;
}

/** A canonical base64 32-byte key, or null (no silent acceptance of a near miss). */
function key32(value: unknown): Buffer | null {
  if (typeof value !== 'string') return null;
  const key = Buffer.from(value, 'base64');
  return key.length === KEY_BYTES && key.toString('base64') === value ? key : null;
}

function isAtmNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_ATM_ID;
}

export function encodeBankKeys(keys: BankKeys): string {
  return json({
    format: BANK_KEYS_FORMAT,
    terminalMasterKey: keys.terminalMasterKey.toString('base64'),
    staticPrivateKey: keys.staticPrivateKey.toString('base64'),
  });
}

export function readBankKeys(file: string): BankKeys {
  const parsed = readJson(file, 'the bank keys');
  const terminalMasterKey = key32(parsed.terminalMasterKey);
  const staticPrivateKey = key32(parsed.staticPrivateKey);
  if (parsed.format !== BANK_KEYS_FORMAT || !terminalMasterKey || !staticPrivateKey) {
    throw new Error(`${file} is not a valid ${BANK_KEYS_FORMAT} file`);
  }
  return { terminalMasterKey, staticPrivateKey };
}

export function encodeAtmCredential(credential: AtmCredential): string {
  return json({
    format: CREDENTIAL_FORMAT,
    atm: credential.atmId,
    terminalKey: credential.terminalKey.toString('base64'),
    bankPublicKey: credential.bankPublicKey.toString('base64'),
  });
}

/** Reads an ATM's credential; `expectedAtmId`, when given, must be the number it was provisioned for. */
export function readAtmCredential(file: string, expectedAtmId?: number): AtmCredential {
  const parsed = readJson(file, 'the ATM credential');
  const terminalKey = key32(parsed.terminalKey);
  const bankPublicKey = key32(parsed.bankPublicKey);
  if (parsed.format !== CREDENTIAL_FORMAT || !isAtmNumber(parsed.atm) || !terminalKey || !bankPublicKey) {
    throw new Error(`${file} is not a valid ${CREDENTIAL_FORMAT} credential`);
  }
  if (expectedAtmId !== undefined && parsed.atm !== expectedAtmId) {
    throw new Error(`${file} is ATM ${parsed.atm}'s credential, not ATM ${expectedAtmId}'s`);
  }
  return { atmId: parsed.atm, terminalKey, bankPublicKey };
}

export function encodeRevocations(revoked: readonly Revocation[]): string {
  return json({ format: REVOCATIONS_FORMAT, revoked });
}

/** The revoked terminals; a missing file means none. */
export function readRevocations(file: string): Revocation[] {
  if (!fs.existsSync(file)) return [];
  const parsed = readJson(file, 'the revocation list');
  const list = parsed.revoked;
  const valid =
    parsed.format === REVOCATIONS_FORMAT &&
    Array.isArray(list) &&
    list.every(
      (entry: unknown) =>
        typeof entry === 'object' &&
        entry !== null &&
        isAtmNumber((entry as Record<string, unknown>).atm) &&
        typeof (entry as Record<string, unknown>).at === 'string',
    );
  if (!valid) throw new Error(`${file} is not a valid ${REVOCATIONS_FORMAT} file`);
  return (list as Revocation[]).map(({ atm, at }) => ({ atm, at }));
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
  // Not named after `file`: a 255-character name (the longest a card or auth file may have) plus a suffix would be too long.
  const temp = path.join(dir, `.tmp-${process.pid}-${secureRandom(8).toString('hex')}`);
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
