/**
 * The encrypted, chained audit log format. Line n is
 *
 *   n.base64(iv).base64(ciphertext).base64(tag)
 *
 * where the ciphertext is AES-256-GCM of the event's JSON under the audit key,
 * and the additional data is label | n | SHA-256(previous line). So a line
 * cannot be modified (tag), deleted or reordered (n and the previous line's
 * hash are authenticated) without `verify` naming the first bad line.
 */
import { GCM_IV_BYTES, aes256GcmOpen, aes256GcmSeal, sha256, type RandomSource } from '../protocol/crypto.ts';
import type { AuditEvent } from './event.ts';

const AAD_LABEL = Buffer.from('atm-bank/v1 audit line');
/** The "previous line" hash used for line 1. */
export const GENESIS_HASH = Buffer.alloc(32);

export type ChainPosition = { lineNumber: number; previousHash: Buffer };

export const CHAIN_START: ChainPosition = { lineNumber: 0, previousHash: GENESIS_HASH };

function aad(lineNumber: number, previousHash: Buffer): Buffer {
  const n = Buffer.alloc(8);
  n.writeBigUInt64BE(BigInt(lineNumber));
  return Buffer.concat([AAD_LABEL, n, previousHash]);
}

export function hashLine(line: string): Buffer {
  return sha256(Buffer.from(line, 'utf8'));
}

/** Seals the event as the line after `position`; returns the line and the new position. */
export function sealLine(
  key: Buffer,
  position: ChainPosition,
  event: AuditEvent,
  random: RandomSource,
): { line: string; next: ChainPosition } {
  const lineNumber = position.lineNumber + 1;
  const sealed = aes256GcmSeal(
    key,
    random(GCM_IV_BYTES),
    Buffer.from(JSON.stringify(event), 'utf8'),
    aad(lineNumber, position.previousHash),
  );
  const line = [String(lineNumber), sealed.iv, sealed.ciphertext, sealed.tag]
    .map((part) => (typeof part === 'string' ? part : part.toString('base64')))
    .join('.');
  return { line, next: { lineNumber, previousHash: hashLine(line) } };
}

export type OpenedLine = { ok: true; event: AuditEvent; next: ChainPosition } | { ok: false; reason: string };

const B64 = '[A-Za-z0-9+/]*={0,2}';
const LINE_PATTERN = new RegExp(`^([1-9][0-9]{0,15})\\.(${B64})\\.(${B64})\\.(${B64})$`);

/** Opens the line that should follow `position`, explaining any failure. */
export function openLine(key: Buffer, position: ChainPosition, line: string): OpenedLine {
  const match = LINE_PATTERN.exec(line);
  if (!match) return { ok: false, reason: 'malformed line' };
  const lineNumber = Number(match[1]);
  const expected = position.lineNumber + 1;
  if (lineNumber !== expected) {
    return {
      ok: false,
      reason: `line number ${lineNumber} where ${expected} was expected (deleted or reordered lines)`,
    };
  }
  const plaintext = aes256GcmOpen(
    key,
    {
      iv: Buffer.from(match[2] ?? '', 'base64'),
      ciphertext: Buffer.from(match[3] ?? '', 'base64'),
      tag: Buffer.from(match[4] ?? '', 'base64'),
    },
    aad(lineNumber, position.previousHash),
  );
  if (!plaintext) return { ok: false, reason: 'authentication failed (line modified, or the chain before it broken)' };
  let event: AuditEvent;
  try {
    event = JSON.parse(plaintext.toString('utf8')) as AuditEvent;
  } catch {
    return { ok: false, reason: 'authenticated line holds malformed JSON' };
  }
  return { ok: true, event, next: { lineNumber, previousHash: hashLine(line) } };
}
