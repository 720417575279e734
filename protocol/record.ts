/**
 * Record layer: encrypt-then-MAC with per-direction sequence numbers and a
 * one-way key ratchet after every message.
 *
 *   header     version(1) | contentType(1) | sessionId(8) | direction(1) | seq(8, big-endian)
 *   body       iv(16) | AES-256-CBC(ciphertext, PKCS#7) | HMAC-SHA256(header | iv | ciphertext)(32)
 *
 * The MAC is checked in constant time before anything is decrypted, so padding
 * errors are only reachable by someone holding the MAC key. Each direction has
 * its own keys from the start (derived apart, then ratcheted apart), and the
 * direction byte is covered by the MAC and must match, so a bank->ATM record
 * never verifies as ATM->bank. The sequence number must be exactly the
 * previous plus one and is never allowed to wrap.
 */
import {
  AES_BLOCK_BYTES,
  KEY_BYTES,
  MAC_BYTES,
  aes256CbcDecrypt,
  aes256CbcEncrypt,
  constantTimeEqual,
  hkdfExpandSha512,
  hkdfSha256,
  hmacSha256,
  wipe,
  type RandomSource,
} from './crypto.ts';
import { ProtocolError } from './errors.ts';

/** 2: the ratchet is one HKDF-Expand-SHA512 step (1 took two HKDF-Expand-SHA256 blocks). */
export const RECORD_VERSION = 2;
export const SESSION_ID_BYTES = 8;
export const RECORD_HEADER_BYTES = 1 + 1 + SESSION_ID_BYTES + 1 + 8;
export const RECORD_MIN_BYTES = RECORD_HEADER_BYTES + AES_BLOCK_BYTES + AES_BLOCK_BYTES + MAC_BYTES;
const MAX_SEQUENCE = 0xffff_ffff_ffff_ffffn;

export const Direction = { AtmToBank: 0x01, BankToAtm: 0x02 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** Notice: something the bank tells the ATM unasked (an audit checkpoint), on the channel session only. */
export const ContentType = { Request: 0x01, Response: 0x02, Notice: 0x03 } as const;
export type ContentType = (typeof ContentType)[keyof typeof ContentType];

/** The connection's own session (signup, login, keepalive) uses the all-zero id. */
export const CHANNEL_SESSION_ID = Buffer.alloc(SESSION_ID_BYTES);

/** One direction's keys. */
export type SessionKeys = { encKey: Buffer; macKey: Buffer };

/** Both directions' keys: never the same, so neither direction's keys open the other's records. */
export type DirectionalKeys = { atmToBank: SessionKeys; bankToAtm: SessionKeys };

const SESSION_KEYS_LABEL = Buffer.from('atm-bank/v2 session keys');
const RATCHET_LABEL = Buffer.from('atm-bank/v2 ratchet');

/**
 * Splits 128 bytes of key material into the two directions' keys, in the
 * order ATM->bank encryption, ATM->bank MAC, bank->ATM encryption, bank->ATM
 * MAC. The caller wipes `okm`.
 */
export function splitDirectionalKeys(okm: Buffer): DirectionalKeys {
  if (okm.length !== 4 * KEY_BYTES) throw new RangeError('directional keys need 128 bytes');
  const slice = (index: number): Buffer => Buffer.from(okm.subarray(index * KEY_BYTES, (index + 1) * KEY_BYTES));
  return { atmToBank: { encKey: slice(0), macKey: slice(1) }, bankToAtm: { encKey: slice(2), macKey: slice(3) } };
}

export function wipeDirectionalKeys(keys: DirectionalKeys): void {
  wipe(keys.atmToBank.encKey, keys.atmToBank.macKey, keys.bankToAtm.encKey, keys.bankToAtm.macKey);
}

/**
 * A customer session's keys: 128 bytes from HKDF-SHA256 over its master
 * secret, split per direction (`splitDirectionalKeys`). Salt is the handshake
 * transcript hash and info names the session, so keys are bound to one
 * connection and one session id.
 */
export function deriveSessionKeys(secret: Buffer, transcriptHash: Buffer, sessionId: Buffer): DirectionalKeys {
  const okm = hkdfSha256(secret, transcriptHash, Buffer.concat([SESSION_KEYS_LABEL, sessionId]), 4 * KEY_BYTES);
  const keys = splitDirectionalKeys(okm);
  wipe(okm);
  return keys;
}

/** Reads the session id so a receiver can pick the right record state; null if too short. */
export function peekSessionId(record: Buffer): Buffer | null {
  if (record.length < RECORD_HEADER_BYTES) return null;
  return record.subarray(2, 2 + SESSION_ID_BYTES);
}

/**
 * One direction of a session. `keyBlock` is encKey | macKey (the ratchet's
 * PRK, so no copy is made per message); `keys` are views of it.
 * `ratchetInfo` is the ratchet's info for this direction with the sequence
 * number rewritten in place before each step.
 */
type DirectionState = {
  direction: Direction;
  keyBlock: Buffer;
  keys: SessionKeys;
  ratchetInfo: Buffer;
  nextSeq: bigint;
};

function directionState(sessionId: Buffer, direction: Direction, keys: SessionKeys): DirectionState {
  const keyBlock = Buffer.concat([keys.encKey, keys.macKey]);
  return {
    direction,
    keyBlock,
    keys: keysOf(keyBlock),
    ratchetInfo: ratchetInfo(sessionId, direction, 0n),
    nextSeq: 0n,
  };
}

function keysOf(keyBlock: Buffer): SessionKeys {
  return { encKey: keyBlock.subarray(0, KEY_BYTES), macKey: keyBlock.subarray(KEY_BYTES, 2 * KEY_BYTES) };
}

function otherDirection(direction: Direction): Direction {
  return direction === Direction.AtmToBank ? Direction.BankToAtm : Direction.AtmToBank;
}

export type OpenedRecord = { contentType: ContentType; seq: bigint; plaintext: Buffer };

/** Both directions of one session on one connection. */
export class RecordSession {
  readonly sessionId: Buffer;
  private readonly sending: DirectionState;
  private readonly receiving: DirectionState;
  private closed = false;

  /**
   * Copies the keys it needs, so the caller can (and should) wipe `keys` at
   * once. `ivRandom` supplies IVs only (`pooledIvRandom` in production).
   */
  constructor(
    sessionId: Buffer,
    keys: DirectionalKeys,
    localDirection: Direction,
    private readonly ivRandom: RandomSource,
  ) {
    if (sessionId.length !== SESSION_ID_BYTES) throw new ProtocolError('ERR_UNKNOWN_SESSION', 'bad session id length');
    this.sessionId = Buffer.from(sessionId);
    const state = (direction: Direction): DirectionState =>
      directionState(this.sessionId, direction, direction === Direction.AtmToBank ? keys.atmToBank : keys.bankToAtm);
    this.sending = state(localDirection);
    this.receiving = state(otherDirection(localDirection));
  }

  seal(contentType: ContentType, plaintext: Buffer): Buffer {
    this.ensureOpen();
    const state = this.sending;
    if (state.nextSeq >= MAX_SEQUENCE) {
      throw new ProtocolError('ERR_SEQUENCE_EXHAUSTED', 'sequence numbers exhausted; start a new session');
    }
    const header = encodeHeader(contentType, this.sessionId, state.direction, state.nextSeq);
    const iv = this.ivRandom(AES_BLOCK_BYTES);
    const ciphertext = aes256CbcEncrypt(state.keys.encKey, iv, plaintext);
    const mac = hmacSha256(state.keys.macKey, header, iv, ciphertext);
    advance(state);
    return Buffer.concat([header, iv, ciphertext, mac]);
  }

  /** Verifies and decrypts one record; any failure throws and closes this session. */
  open(record: Buffer): OpenedRecord {
    this.ensureOpen();
    try {
      return this.openUnchecked(record);
    } catch (error) {
      this.destroy();
      throw error;
    }
  }

  /** Erases all key material; the session can no longer seal or open. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    wipe(this.sending.keyBlock, this.receiving.keyBlock);
  }

  private openUnchecked(record: Buffer): OpenedRecord {
    const bodyBytes = record.length - RECORD_HEADER_BYTES - AES_BLOCK_BYTES - MAC_BYTES;
    if (record.length < RECORD_MIN_BYTES || bodyBytes % AES_BLOCK_BYTES !== 0) {
      throw new ProtocolError('ERR_TRUNCATED', 'record is truncated or misaligned');
    }
    if (record.readUInt8(0) !== RECORD_VERSION) throw new ProtocolError('ERR_RECORD_VERSION', 'bad record version');
    const contentType = record.readUInt8(1);
    if (!this.sessionId.equals(record.subarray(2, 2 + SESSION_ID_BYTES))) {
      throw new ProtocolError('ERR_UNKNOWN_SESSION', 'record names another session');
    }
    const state = this.receiving;
    if (record.readUInt8(2 + SESSION_ID_BYTES) !== state.direction) {
      throw new ProtocolError('ERR_WRONG_DIRECTION', 'record travels in the wrong direction');
    }
    // The sequence number is public, so checking it first leaks nothing and
    // lets the audit log tell a replay from a forgery; the MAC still covers it.
    const seq = record.readBigUInt64BE(3 + SESSION_ID_BYTES);
    if (seq !== state.nextSeq) throw new ProtocolError('ERR_SEQUENCE', 'record is replayed, reordered or skipped');
    const macStart = record.length - MAC_BYTES;
    const expectedMac = hmacSha256(state.keys.macKey, record.subarray(0, macStart));
    if (!constantTimeEqual(expectedMac, record.subarray(macStart))) {
      throw new ProtocolError('ERR_BAD_MAC', 'record MAC does not verify');
    }
    if (
      contentType !== ContentType.Request &&
      contentType !== ContentType.Response &&
      contentType !== ContentType.Notice
    ) {
      throw new ProtocolError('ERR_BAD_MESSAGE', 'unknown content type');
    }
    const iv = record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + AES_BLOCK_BYTES);
    const plaintext = aes256CbcDecrypt(
      state.keys.encKey,
      iv,
      record.subarray(RECORD_HEADER_BYTES + AES_BLOCK_BYTES, macStart),
    );
    if (!plaintext) throw new ProtocolError('ERR_BAD_PADDING', 'record padding is invalid');
    advance(state);
    return { contentType, seq, plaintext };
  }

  private ensureOpen(): void {
    if (this.closed) throw new ProtocolError('ERR_CONNECTION_CLOSED', 'session is closed');
  }
}

function encodeHeader(contentType: ContentType, sessionId: Buffer, direction: Direction, seq: bigint): Buffer {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  header.writeUInt8(RECORD_VERSION, 0);
  header.writeUInt8(contentType, 1);
  sessionId.copy(header, 2);
  header.writeUInt8(direction, 2 + SESSION_ID_BYTES);
  header.writeBigUInt64BE(seq, 3 + SESSION_ID_BYTES);
  return header;
}

/**
 * Forward secrecy inside a session: after each message the direction's keys
 * are replaced by a one-way HKDF step over them and the old ones are erased,
 * so keys captured at message n cannot open messages before n.
 *
 *   next encKey | next macKey = HKDF-Expand-SHA512(PRK = encKey | macKey,
 *     info = "atm-bank/v2 ratchet" | sessionId(8) | direction(1) | seq(8, big-endian), 64)
 *
 * The current keys are uniformly random, so they serve directly as the HKDF
 * pseudorandom key (RFC 5869 §3.3); 64 bytes are one SHA-512 block, so a
 * step is one HMAC-SHA512.
 */
export function nextKeys(keys: SessionKeys, sessionId: Buffer, direction: Direction, seq: bigint): SessionKeys {
  const prk = Buffer.concat([keys.encKey, keys.macKey]);
  const next = hkdfExpandSha512(prk, ratchetInfo(sessionId, direction, seq), 2 * KEY_BYTES);
  wipe(prk);
  return keysOf(next);
}

const RATCHET_SEQ_OFFSET = RATCHET_LABEL.length + SESSION_ID_BYTES + 1;

function ratchetInfo(sessionId: Buffer, direction: Direction, seq: bigint): Buffer {
  const info = Buffer.alloc(RATCHET_SEQ_OFFSET + 8);
  RATCHET_LABEL.copy(info);
  sessionId.copy(info, RATCHET_LABEL.length);
  info.writeUInt8(direction, RATCHET_LABEL.length + SESSION_ID_BYTES);
  info.writeBigUInt64BE(seq, RATCHET_SEQ_OFFSET);
  return info;
}

function advance(state: DirectionState): void {
  state.ratchetInfo.writeBigUInt64BE(state.nextSeq, RATCHET_SEQ_OFFSET);
  const next = hkdfExpandSha512(state.keyBlock, state.ratchetInfo, 2 * KEY_BYTES);
  wipe(state.keyBlock);
  state.keyBlock = next;
  state.keys = keysOf(next);
  state.nextSeq += 1n;
}
