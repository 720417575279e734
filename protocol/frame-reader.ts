/**
 * Incremental frame splitter. Correct for any split or coalescing of TCP
 * chunks; the declared length is checked against the limit before any body
 * byte is buffered, so a hostile length prefix costs us nothing. It never
 * throws: the first bad header puts it in a failed state and is reported once.
 */
import { ProtocolError } from './errors.ts';
import { FRAME_BODY_LIMIT, FRAME_HEADER_BYTES, FRAME_VERSION, isFrameType, type Frame } from './frame.ts';

export type ReadResult = { frames: Frame[]; error: ProtocolError | null };

export class FrameReader {
  private readonly maxBody: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failed: ProtocolError | null = null;

  constructor(maxBody: number) {
    this.maxBody = Math.min(maxBody, FRAME_BODY_LIMIT);
  }

  /** Bytes held waiting for the rest of a frame (bounded by header + maxBody). */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Buffer): ReadResult {
    if (this.failed) return { frames: [], error: this.failed };
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    let buffer = this.pending.length === 1 ? chunk : Buffer.concat(this.pending, this.pendingBytes);
    let offset = 0;
    while (buffer.length - offset >= FRAME_HEADER_BYTES) {
      const version = buffer.readUInt8(offset);
      const type = buffer.readUInt8(offset + 1);
      const length = buffer.readUInt16BE(offset + 2);
      const headerError = this.checkHeader(version, type, length);
      if (headerError) {
        this.fail(headerError);
        return { frames, error: headerError };
      }
      const end = offset + FRAME_HEADER_BYTES + length;
      if (buffer.length < end) break;
      if (isFrameType(type)) {
        // Copy so a frame never pins the (possibly large) coalesced chunk.
        frames.push({ type, body: Buffer.from(buffer.subarray(offset + FRAME_HEADER_BYTES, end)) });
      }
      offset = end;
    }
    buffer = buffer.subarray(offset);
    this.pending = buffer.length > 0 ? [Buffer.from(buffer)] : [];
    this.pendingBytes = buffer.length;
    return { frames, error: null };
  }

  private checkHeader(version: number, type: number, length: number): ProtocolError | null {
    if (version !== FRAME_VERSION) return new ProtocolError('ERR_FRAME_VERSION', 'unsupported frame version');
    if (!isFrameType(type)) return new ProtocolError('ERR_FRAME_TYPE', 'unknown frame type');
    if (length > this.maxBody) return new ProtocolError('ERR_FRAME_TOO_LARGE', 'frame exceeds the size limit');
    return null;
  }

  private fail(error: ProtocolError): void {
    this.failed = error;
    this.pending = [];
    this.pendingBytes = 0;
  }
}
