/**
 * How the ATM shows times and transaction references to people. Money is
 * formatted in one place too, `formatCents` in protocol/money.ts; this module
 * re-exports it so views get everything they display from here.
 */
import type { Request } from 'express';

import { secureRandom, type RandomSource } from '../protocol/crypto.ts';
import type { BankError } from '../protocol/errors.ts';

export { formatCents } from '../protocol/money.ts';

/**
 * The options behind every date a customer reads. public/local-time.js uses
 * the same ones to re-render a time in the browser's own zone when scripts
 * run; without scripts the ATM's zone is shown, with its name.
 */
export const TIME_FORMAT: Intl.DateTimeFormatOptions = {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
  timeZoneName: 'short',
};

/** `Nov 23, 2026, 3:44 PM UTC` in the given IANA zone. */
export function formatTime(iso: string | Date, timeZone: string): string {
  const date = typeof iso === 'string' ? new Date(iso) : iso;
  return new Intl.DateTimeFormat('en-US', { ...TIME_FORMAT, timeZone }).format(date);
}

/** A locked account's refusal as a page shows it: the bank's sentence and until when, in words and ISO. */
export function lockedNotice(error: BankError, req: Request): { text: string; iso: string; when: string } | null {
  if (error.lockedUntil === undefined) return null;
  return {
    text: error.message,
    iso: error.lockedUntil,
    when: formatTime(error.lockedUntil, String(req.app.locals.timeZone)),
  };
}

/** The zone this process runs in (the ATM's location), e.g. `Europe/Paris`. */
export function processTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** Crockford's base32: no I, L, O or U, so a reference read aloud or retyped is unambiguous. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const REFERENCE_CHARS = 16;

/**
 * A fresh transaction id that is also the customer's reference number:
 * 80 random bits as 16 base32 characters (the protocol allows
 * `[A-Za-z0-9_-]{8,64}`), unique per account for all practical purposes.
 */
export function newTxId(random: RandomSource = secureRandom): string {
  const bytes = random(10);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out.slice(0, REFERENCE_CHARS);
}

/** `7K3M-9QXZ-AB12-CD34`: the transaction id in groups of four, as printed on the receipt. */
export function formatReference(txId: string): string {
  return (txId.match(/.{1,4}/g) ?? [txId]).join('-');
}
