/**
 * Card files: what `bin/atm -n` writes once the bank has opened the account,
 * and what every later call (and the terminal ATM's card login) must show.
 * It holds the account's name and the card's secret, 32 random bytes the bank
 * drew; the bank keeps only a keyed hash of it. Written 0600 and durably,
 * never over an existing file.
 */
import fs from 'node:fs';

import { writeFileDurably } from '../runtime/key-files.ts';

const FORMAT = 'atm-card/v1';
const SECRET = /^[A-Za-z0-9+/]{43}=$/;
/** A real card file is about 120 bytes; anything much larger is not one. */
const MAX_CARD_BYTES = 4096;

export type Card = { account: string; secret: string };

export function encodeCard(card: Card): string {
  return `${JSON.stringify({ format: FORMAT, account: card.account, secret: card.secret })}\n`;
}

/** The card in a file, or null when it is missing, unreadable, too large or not a card. */
export function readCard(file: string): Card | null {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const bytes = Buffer.alloc(MAX_CARD_BYTES + 1);
      const length = fs.readSync(fd, bytes, 0, bytes.length, 0);
      if (length > MAX_CARD_BYTES) return null;
      text = bytes.subarray(0, length).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const { format, account, secret } = parsed as Record<string, unknown>;
  if (format !== FORMAT || typeof account !== 'string' || typeof secret !== 'string' || !SECRET.test(secret)) {
    return null;
  }
  return { account, secret };
}

/** Writes a new card file, complete or absent after a crash; false if the file exists or cannot be written. */
export function writeCard(file: string, card: Card): boolean {
  try {
    writeFileDurably(file, encodeCard(card), { mode: 0o600 });
    return true;
  } catch {
    return false;
  }
}

export function exists(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}
