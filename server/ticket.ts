/**
 * Resumption tickets: what lets a logged-in customer's ATM reopen the
 * customer's bank session on another node (or after a reconnect) without the
 * password. A ticket is the customer's account, the ATM it was issued to and
 * its expiry, sealed with AES-256-GCM under `ticket.key`, a key every node of
 * one bank shares and no ATM holds, so an ATM can carry a ticket but neither
 * read nor forge one. The ATM number is in the additional data, so a ticket
 * only opens for a connection that completed the handshake as that ATM
 * (which takes the terminal key), and only until it expires.
 */
import { GCM_IV_BYTES, GCM_TAG_BYTES, aes256GcmOpen, aes256GcmSeal, type RandomSource } from '../protocol/crypto.ts';
import { CHANNELS, type Channel } from '../protocol/messages.ts';

/** How long a ticket opens; the ATM's web sessions idle out after as long (atm-web/app.ts). */
export const TICKET_LIFETIME_MS = 15 * 60_000;
/** Base64url of 12 IV bytes + at most ~150 plaintext bytes + 16 tag bytes, with room to spare. */
export const MAX_TICKET_CHARS = 512;

const AAD_LABEL = Buffer.from('atm-bank/v1 resumption ticket');

/** `channel` is the kind of terminal the session came from, so a resumed session keeps its limits and audit name. */
export type TicketClaims = { accountId: number; username: string; atmId: number; expiresAt: number; channel: Channel };

function isChannel(value: unknown): value is Channel {
  return CHANNELS.some((channel) => channel === value);
}

function aad(atmId: number): Buffer {
  const atm = Buffer.alloc(4);
  atm.writeUInt32BE(atmId);
  return Buffer.concat([AAD_LABEL, atm]);
}

export function sealTicket(key: Buffer, claims: TicketClaims, random: RandomSource): string {
  const plaintext = Buffer.from(
    JSON.stringify({ a: claims.accountId, u: claims.username, e: claims.expiresAt, c: claims.channel }),
  );
  const sealed = aes256GcmSeal(key, random(GCM_IV_BYTES), plaintext, aad(claims.atmId));
  return Buffer.concat([sealed.iv, sealed.ciphertext, sealed.tag]).toString('base64url');
}

/** The ticket's claims if it is genuine, was issued to `atmId` and has not expired at `nowMs`; else why not. */
export function openTicket(
  key: Buffer,
  ticket: string,
  atmId: number,
  nowMs: number,
): { ok: true; claims: TicketClaims } | { ok: false; reason: 'malformed' | 'forged_or_other_atm' | 'expired' } {
  const bytes = Buffer.from(ticket, 'base64url');
  if (ticket.length > MAX_TICKET_CHARS || bytes.length <= GCM_IV_BYTES + GCM_TAG_BYTES) {
    return { ok: false, reason: 'malformed' };
  }
  const plaintext = aes256GcmOpen(
    key,
    {
      iv: bytes.subarray(0, GCM_IV_BYTES),
      ciphertext: bytes.subarray(GCM_IV_BYTES, bytes.length - GCM_TAG_BYTES),
      tag: bytes.subarray(bytes.length - GCM_TAG_BYTES),
    },
    aad(atmId),
  );
  if (!plaintext) return { ok: false, reason: 'forged_or_other_atm' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(plaintext.toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof parsed !== 'object' || parsed === null) return { ok: false, reason: 'malformed' };
  const { a, u, e, c } = parsed as Record<string, unknown>;
  if (typeof a !== 'number' || typeof u !== 'string' || typeof e !== 'number' || !isChannel(c))
    return { ok: false, reason: 'malformed' };
  if (e <= nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, claims: { accountId: a, username: u, atmId, expiresAt: e, channel: c } };
}
