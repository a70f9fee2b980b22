// The replication stream's framing (docs/REPLICATION.md has the grammar). The binlog record's
// payload travels as opaque bytes: whatever record version the primary wrote replays unchanged
// through the standby's applier. Each frame carries its own CRC-32C, over everything after the
// CRC, so a frame damaged in transit (or by a proxy) is refused, never appended.
//
//   frame   := length:u32le  crc:u32le  kind:u8  term:u64le  tsn:u64le  body     (length counts kind..body)
//   RECORD  body := the record's payload; term = the term it was written in, tsn = its TSN
//   STATUS  body := durable:u64le  safe:u64le; term = the primary's term, tsn = 0
//   HELLO   body := first:u64le; term = the primary's term, tsn = 0 (first frame of a stream)

import { crc32c } from '../../storage/util/crc32c.js';
import { BINLOG_PAYLOAD_SIZE_BYTES_MAX } from '../binlog/limits.js';

export const FRAME_RECORD = 1;
export const FRAME_STATUS = 2;
export const FRAME_HELLO = 3;

/** length and crc. */
const PREFIX_BYTES = 8;
/** Where a frame's kind byte is. */
export const FRAME_KIND_OFFSET = PREFIX_BYTES;
/** kind, term, tsn. */
const HEAD_BYTES = 17;
export const FRAME_BYTES_MAX = PREFIX_BYTES + HEAD_BYTES + BINLOG_PAYLOAD_SIZE_BYTES_MAX;

export interface Frame {
  readonly kind: number;
  readonly term: number;
  readonly tsn: number;
  readonly body: Buffer;
}

export class FrameError extends Error {
  override name = 'FrameError';
}

export function encodeFrame(kind: number, term: number, tsn: number, body: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + HEAD_BYTES + body.length);
  frame.writeUInt32LE(HEAD_BYTES + body.length, 0);
  frame[8] = kind;
  frame.writeBigUInt64LE(BigInt(term), 9);
  frame.writeBigUInt64LE(BigInt(tsn), 17);
  body.copy(frame, PREFIX_BYTES + HEAD_BYTES);
  frame.writeUInt32LE(crc32c(frame, PREFIX_BYTES), 4);
  return frame;
}

export function encodeStatus(term: number, durable: number, safe: number): Buffer {
  const body = Buffer.allocUnsafe(16);
  body.writeBigUInt64LE(BigInt(durable), 0);
  body.writeBigUInt64LE(BigInt(safe), 8);
  return encodeFrame(FRAME_STATUS, term, 0, body);
}

export function encodeHello(term: number, first: number): Buffer {
  const body = Buffer.allocUnsafe(8);
  body.writeBigUInt64LE(BigInt(first), 0);
  return encodeFrame(FRAME_HELLO, term, 0, body);
}

export function statusOf(frame: Frame): { durable: number; safe: number } {
  if (frame.body.length !== 16) throw new FrameError(`a status frame of ${frame.body.length} bytes`);
  return { durable: Number(frame.body.readBigUInt64LE(0)), safe: Number(frame.body.readBigUInt64LE(8)) };
}

export function helloOf(frame: Frame): { first: number } {
  if (frame.body.length !== 8) throw new FrameError(`a hello frame of ${frame.body.length} bytes`);
  return { first: Number(frame.body.readBigUInt64LE(0)) };
}

/** Cuts a byte stream into checked frames; throws FrameError at the first bad one. */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes the next frame needs before it is worth joining the chunks (a large record comes in many). */
  private needed = PREFIX_BYTES;

  /** The whole frames `chunk` completes, in order. */
  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    if (this.pendingBytes < this.needed) return frames;
    let data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    let at = 0;
    this.needed = PREFIX_BYTES;
    while (data.length - at >= PREFIX_BYTES) {
      const length = data.readUInt32LE(at);
      if (length < HEAD_BYTES || PREFIX_BYTES + length > FRAME_BYTES_MAX) throw new FrameError(`a frame of length ${length}`);
      if (data.length - at < PREFIX_BYTES + length) {
        this.needed = PREFIX_BYTES + length;
        break;
      }
      const end = at + PREFIX_BYTES + length;
      if (crc32c(data, at + PREFIX_BYTES, end) !== data.readUInt32LE(at + 4)) throw new FrameError('a frame fails its checksum');
      const term = Number(data.readBigUInt64LE(at + 9));
      const tsn = Number(data.readBigUInt64LE(at + 17));
      if (!Number.isSafeInteger(term) || !Number.isSafeInteger(tsn)) throw new FrameError('a frame with a term or TSN beyond 2^53');
      frames.push({ kind: data[at + 8]!, term, tsn, body: data.subarray(at + PREFIX_BYTES + HEAD_BYTES, end) });
      at = end;
    }
    data = data.subarray(at);
    this.pending = data.length === 0 ? [] : [data];
    this.pendingBytes = data.length;
    return frames;
  }
}
