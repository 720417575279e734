/**
 * `bank.auth`: the credential an ATM must hold to talk to this bank (the idea
 * of seed 000's auth file). It holds a 32-byte terminal key that both sides
 * mix into the handshake; it never crosses the wire.
 */
import fs from 'node:fs';

import { KEY_BYTES } from './crypto.ts';

export const BANK_AUTH_FILE = 'bank.auth';
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
