/**
 * The key files in a data directory, read and written here so the bank, the
 * ATMs and the auditor's command share one format and none imports another.
 *
 * `bank.auth`: the credential an ATM must hold to talk to this bank (the idea
 * of seed 000's auth file). It holds a 32-byte terminal key that both sides
 * mix into the handshake; it never crosses the wire.
 *
 * `audit.key`: the key of the encrypted audit log (base64), used for nothing else.
 */
import fs from 'node:fs';

import { KEY_BYTES } from '../protocol/crypto.ts';

export const BANK_AUTH_FILE = 'bank.auth';
export const AUDIT_KEY_FILE = 'audit.key';
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

/** Creates a 0600 key file unless it exists; an existing key is never replaced. */
export function createSecretFile(file: string, contents: string): void {
  try {
    // 'wx' refuses to overwrite: two banks starting at once cannot clobber a key.
    fs.writeFileSync(file, contents, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  fs.chmodSync(file, 0o600);
}
