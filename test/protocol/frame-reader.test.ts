import { describe, expect, it } from 'vitest';

import { encodeFrame, FrameType, type Frame } from '../../protocol/frame.ts';
import { FrameReader } from '../../protocol/frame-reader.ts';
import { hex } from './fixtures.ts';

// Three frames back to back: an empty alert, a 3-byte record, a 1-byte hello.
const STREAM = hex(`
  01 7f 0000
  01 10 0003 aabbcc
  01 01 0001 ff
`);
const EXPECTED = [
  { type: FrameType.Alert, body: '' },
  { type: FrameType.Record, body: 'aabbcc' },
  { type: FrameType.ClientHello, body: 'ff' },
];

const simplify = (frames: Frame[]): Array<{ type: number; body: string }> =>
  frames.map((frame) => ({ type: frame.type, body: frame.body.toString('hex') }));

describe('FrameReader', () => {
  it('encodes the header as version, type and a big-endian length', () => {
    expect(encodeFrame(FrameType.Record, hex('aabbcc')).toString('hex')).toBe('01100003aabbcc');
  });

  it('yields the same frames however the stream is split in two', () => {
    for (let cut = 0; cut <= STREAM.length; cut += 1) {
      const reader = new FrameReader(4096);
      const first = reader.push(STREAM.subarray(0, cut));
      const second = reader.push(STREAM.subarray(cut));
      expect(first.error ?? second.error).toBeNull();
      expect(simplify([...first.frames, ...second.frames])).toEqual(EXPECTED);
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('yields the same frames when fed one byte at a time', () => {
    const reader = new FrameReader(4096);
    const frames: Frame[] = [];
    for (const byte of STREAM) {
      const result = reader.push(Buffer.of(byte));
      expect(result.error).toBeNull();
      frames.push(...result.frames);
    }
    expect(simplify(frames)).toEqual(EXPECTED);
  });

  it('yields the same frames when splits fall at every pair of points', () => {
    for (let a = 0; a <= STREAM.length; a += 1) {
      for (let b = a; b <= STREAM.length; b += 1) {
        const reader = new FrameReader(4096);
        const parts = [STREAM.subarray(0, a), STREAM.subarray(a, b), STREAM.subarray(b)];
        const frames = parts.flatMap((part) => reader.push(part).frames);
        expect(simplify(frames)).toEqual(EXPECTED);
      }
    }
  });

  it('refuses an oversized length from the header alone, before any body arrives', () => {
    const reader = new FrameReader(16);
    const result = reader.push(hex('01 10 0011'));
    expect(result.error?.code).toBe('ERR_FRAME_TOO_LARGE');
    expect(reader.bufferedBytes).toBe(0);
  });

  it('accepts a frame of exactly the maximum size', () => {
    const reader = new FrameReader(16);
    const result = reader.push(encodeFrame(FrameType.Record, Buffer.alloc(16, 1)));
    expect(result.error).toBeNull();
    expect(result.frames).toHaveLength(1);
  });

  it('refuses an unknown version or frame type and stays failed', () => {
    expect(new FrameReader(64).push(hex('02 10 0000')).error?.code).toBe('ERR_FRAME_VERSION');
    const reader = new FrameReader(64);
    expect(reader.push(hex('01 55 0000')).error?.code).toBe('ERR_FRAME_TYPE');
    expect(reader.push(hex('01 10 0000')).error?.code).toBe('ERR_FRAME_TYPE');
  });

  it('returns frames that precede a bad header along with the error', () => {
    const result = new FrameReader(64).push(hex('01 7f 0000 ff ff ff ff'));
    expect(result.frames).toHaveLength(1);
    expect(result.error?.code).toBe('ERR_FRAME_VERSION');
  });
});
