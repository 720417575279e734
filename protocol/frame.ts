/**
 * Wire framing: every message is `version(1) | type(1) | length(2, big-endian) | body`.
 * The frame layer only delimits messages; encryption and MACs live in record.ts.
 */
import { ProtocolError } from './errors.ts';

export const FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 4;
/** Absolute ceiling imposed by the 16-bit length field. */
export const FRAME_BODY_LIMIT = 0xffff;
/** Default maximum body size; a bank request is a few hundred bytes. */
export const DEFAULT_MAX_FRAME_BODY = 4096;

export const FrameType = {
  ClientHello: 0x01,
  ServerHello: 0x02,
  ClientFinished: 0x03,
  Record: 0x10,
  /** Plaintext "goodbye" carrying no detail; sent just before closing. */
  Alert: 0x7f,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));

export function isFrameType(value: number): value is FrameType {
  return KNOWN_TYPES.has(value);
}

export type Frame = { type: FrameType; body: Buffer };

export function encodeFrame(type: FrameType, body: Buffer): Buffer {
  if (body.length > FRAME_BODY_LIMIT) {
    throw new ProtocolError('ERR_FRAME_TOO_LARGE', 'frame body exceeds the 16-bit length field');
  }
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt8(FRAME_VERSION, 0);
  header.writeUInt8(type, 1);
  header.writeUInt16BE(body.length, 2);
  return Buffer.concat([header, body]);
}
