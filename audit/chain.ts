/**
 * The encrypted, chained audit log format (v2). Line n is
 *
 *   n.logId.ciphertext.tag            (each part canonical base64url, no padding)
 *
 * - `logId` is 16 random bytes naming a key period: the line is sealed with
 *   AES-256-GCM under HKDF-SHA256(audit key, salt = logId) and the nonce is
 *   the line number (NIST SP 800-38D §8.2.1 deterministic construction), so
 *   no nonce is ever drawn at random or repeated under one key. A writer
 *   takes a fresh log id whenever it opens the log or a write fails, so a
 *   line number is never sealed twice under one subkey.
 * - The additional data is label | logId | n | SHA-256(previous line), so a
 *   line cannot be modified, deleted, reordered or moved to another log
 *   without `verify` naming it.
 * - The plaintext is `{"event":...,"plain":...}`: the event and the
 *   SHA-256 of its line in the plaintext log, so `verify` checks that log too.
 *
 * The chain hash after line n is SHA-256(line n); `ChainHead` is what the
 * ledger, the signed checkpoints and the witnesses keep.
 */
import { z } from 'zod';

import {
  GCM_TAG_BYTES,
  KEY_BYTES,
  aes256GcmOpen,
  aes256GcmSeal,
  hkdfSha256,
  hmacSha256,
  constantTimeEqual,
  secretKey,
  sha256Text,
  wipe,
  type SecretKey,
} from '../protocol/crypto.ts';
import { AUDIT_ACTIONS, type AuditEvent } from './event.ts';
import { CHANNELS } from '../protocol/messages.ts';

const AAD_LABEL = Buffer.from('atm-bank/v2 audit line');
const SUBKEY_INFO = Buffer.from('atm-bank/v2 audit log subkey');
const HEAD_KEY_INFO = Buffer.from('atm-bank/v2 audit chain head');
export const LOG_ID_BYTES = 16;
const MAX_CACHED_SUBKEYS = 256;
/** The "previous line" hash used for line 1. */
export const GENESIS_HASH = Buffer.alloc(32);

export type ChainPosition = { lineNumber: number; previousHash: Buffer };

export const CHAIN_START: ChainPosition = { lineNumber: 0, previousHash: GENESIS_HASH };

/** Where a chain stands: its last line's number and SHA-256 (line 0 and zeros for an empty log). */
export type ChainHead = { lineNumber: number; chainHash: Buffer };

export function headOf(position: ChainPosition): ChainHead {
  return { lineNumber: position.lineNumber, chainHash: position.previousHash };
}

/** The 12-byte GCM nonce for line n: four zero bytes, then n as 64 bits big-endian. */
function nonceFor(lineNumber: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(lineNumber), 4);
  return nonce;
}

function aad(logId: Buffer, lineNumber: number, previousHash: Buffer): Buffer {
  const n = Buffer.alloc(8);
  n.writeBigUInt64BE(BigInt(lineNumber));
  return Buffer.concat([AAD_LABEL, logId, n, previousHash]);
}

export function hashLine(line: string): Buffer {
  return sha256Text(line);
}

/** Decodes base64url only when it is the one canonical encoding of its bytes (no padding, no stray bits). */
export function canonicalBase64url(text: string): Buffer | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : null;
}

/** Subkeys per log id, derived once: every line of a key period uses the same one. */
export class AuditKeys {
  private readonly subkeys = new Map<string, SecretKey>();
  /** The writer's current key period, looked up once per line: no hex key for the map each time. */
  private last: { logId: Buffer; subkey: SecretKey } | null = null;
  private readonly headKey: Buffer;

  constructor(private readonly key: Buffer) {
    if (key.length !== KEY_BYTES) throw new RangeError('the audit key is 32 bytes');
    this.headKey = hkdfSha256(key, Buffer.alloc(0), HEAD_KEY_INFO, KEY_BYTES);
  }

  subkey(logId: Buffer): SecretKey {
    if (this.last?.logId.equals(logId)) return this.last.subkey;
    const id = logId.toString('hex');
    let subkey = this.subkeys.get(id);
    if (!subkey) {
      const bytes = hkdfSha256(this.key, logId, SUBKEY_INFO, KEY_BYTES);
      subkey = secretKey(bytes);
      wipe(bytes);
      // Bounded: a writer that keeps failing takes a new log id each time.
      if (this.subkeys.size >= MAX_CACHED_SUBKEYS) {
        const oldest = this.subkeys.keys().next().value;
        if (oldest !== undefined) this.subkeys.delete(oldest);
      }
      this.subkeys.set(id, subkey);
    }
    this.last = { logId: Buffer.from(logId), subkey };
    return subkey;
  }

  /**
   * HMAC-SHA256 of a chain head under a key derived from the audit key, so
   * whoever can edit the ledger but lacks the audit key cannot make the
   * ledger vouch for a shortened log.
   */
  headMac(head: ChainHead): Buffer {
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(BigInt(head.lineNumber));
    return hmacSha256(this.headKey, n, head.chainHash);
  }

  checkHeadMac(head: ChainHead, mac: Buffer): boolean {
    return constantTimeEqual(this.headMac(head), mac);
  }
}

/** Seals the event as the line after `position` in key period `logId`; returns the line and the new position. */
export function sealLine(
  keys: AuditKeys,
  logId: Buffer,
  position: ChainPosition,
  event: AuditEvent,
  plainLine: string,
): { line: string; next: ChainPosition } {
  const lineNumber = position.lineNumber + 1;
  const payload = JSON.stringify({ event, plain: hashLine(plainLine).toString('base64url') });
  const sealed = aes256GcmSeal(
    keys.subkey(logId),
    nonceFor(lineNumber),
    Buffer.from(payload, 'utf8'),
    aad(logId, lineNumber, position.previousHash),
  );
  const line = [
    String(lineNumber),
    logId.toString('base64url'),
    sealed.ciphertext.toString('base64url'),
    sealed.tag.toString('base64url'),
  ].join('.');
  return { line, next: { lineNumber, previousHash: hashLine(line) } };
}

const EventSchema = z.strictObject({
  at: z.iso.datetime(),
  atm: z.number().int().nullable(),
  client: z.string().max(64).optional(),
  channel: z.enum(CHANNELS).optional(),
  // Card accounts are `card:` and up to 250 characters.
  user: z.string().max(256).nullable(),
  action: z.enum(AUDIT_ACTIONS),
  amountCents: z.number().int().min(0).nullable(),
  outcome: z.string().max(128),
  detail: z.string().max(256).optional(),
});

const PayloadSchema = z.strictObject({ event: EventSchema, plain: z.string().regex(/^[A-Za-z0-9_-]{43}$/) });

export type OpenedLine =
  | { ok: true; event: AuditEvent; plainHash: Buffer; logId: Buffer; next: ChainPosition }
  | { ok: false; reason: string };

const LINE_PATTERN = /^([1-9][0-9]{0,15})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/;

/** Opens the line that should follow `position`, explaining any failure. */
export function openLine(keys: AuditKeys, position: ChainPosition, line: string): OpenedLine {
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
  const logId = canonicalBase64url(match[2] ?? '');
  const ciphertext = canonicalBase64url(match[3] ?? '');
  const tag = canonicalBase64url(match[4] ?? '');
  if (!logId || !ciphertext || !tag || logId.length !== LOG_ID_BYTES || tag.length !== GCM_TAG_BYTES) {
    return { ok: false, reason: 'malformed line (not canonical base64url, or a part of the wrong length)' };
  }
  const plaintext = aes256GcmOpen(
    keys.subkey(logId),
    { iv: nonceFor(lineNumber), ciphertext, tag },
    aad(logId, lineNumber, position.previousHash),
  );
  if (!plaintext) return { ok: false, reason: 'authentication failed (line modified, or the chain before it broken)' };
  let payload: z.infer<typeof PayloadSchema>;
  try {
    payload = PayloadSchema.parse(JSON.parse(plaintext.toString('utf8')));
  } catch {
    return { ok: false, reason: 'authenticated line holds malformed content' };
  }
  const event: AuditEvent = { ...payload.event };
  return {
    ok: true,
    event,
    plainHash: Buffer.from(payload.plain, 'base64url'),
    logId,
    next: { lineNumber, previousHash: hashLine(line) },
  };
}

/** The line number a line claims, for messages about lines that do not open; null when it claims none. */
export function claimedLineNumber(line: string): number | null {
  const match = /^([1-9][0-9]{0,15})\./.exec(line);
  return match ? Number(match[1]) : null;
}
