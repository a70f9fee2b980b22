// The test that tells a torn tail from corruption in the middle (FORMAT.md): does a complete
// record with a valid CRC start anywhere in a byte range of a log? One pass, linear in the
// range even when damaged bytes hold many plausible lengths: a large candidate is checked with
// CRC arithmetic when the pass reaches its end, instead of reading its bytes again.

import type { File } from '../file-system.js';
import { LOG_RECORD_SIZE_BYTES_MAX } from '../limits.js';
import { crc32cUpdate, unmaskCrc } from '../util/crc32c.js';
import { crc32cOfSpan } from './crc32c-span.js';
import { RECORD_HEADER_BYTES, RECORD_LENGTH_OFFSET, recordCrc } from './format.js';

/** Candidates this small get their CRC computed directly, which is cheaper than the arithmetic. */
const DIRECT_CRC_PAYLOAD_BYTES_MAX = 1024;
/** Bytes read past each step, so that headers and direct candidates never straddle two reads. */
const OVERLAP_BYTES = RECORD_HEADER_BYTES + DIRECT_CRC_PAYLOAD_BYTES_MAX;

/** A large candidate waiting for the pass to reach its end. */
interface Candidate {
  offset: number;
  endOffset: number;
  /** CRC-32C of the range from its start up to this candidate's length field. */
  crcToLength: number;
  expectedCrc: number;
}

/**
 * The offset of a complete record with a valid CRC that starts in [from, endOffset) and ends
 * by endOffset, or null if there is none. Not necessarily the first such record.
 */
export async function findValidRecord(
  file: File,
  seed: number,
  from: number,
  endOffset: number,
  chunkBytes: number,
): Promise<number | null> {
  const scan = new RecordScan(seed, from, endOffset);
  for (let start = from; start < scan.endOffset; start += chunkBytes) {
    const length = Math.min(chunkBytes + OVERLAP_BYTES, scan.endOffset - start);
    const chunk = await file.read(start, length);
    // A short read means the file is shorter than its size said; the bytes are the truth.
    if (chunk.length < length) scan.endOffset = start + chunk.length;
    const found = scan.step(chunk, start, chunkBytes);
    if (found !== null) return found;
  }
  return null;
}

class RecordScan {
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;
  /** crcToCursor is the CRC of [base, cursor), for a base at or before every queued length field. */
  private cursor: number;
  private crcToCursor = 0;
  private readonly pending = new CandidateHeap();

  constructor(
    private readonly seed: number,
    from: number,
    public endOffset: number,
  ) {
    this.cursor = from;
  }

  /** Tries every offset of one step of the range; `chunk` holds the step and an overlap. */
  step(chunk: Buffer, chunkStart: number, stepBytes: number): number | null {
    this.chunk = chunk;
    this.chunkStart = chunkStart;
    const stepEnd = Math.min(chunkStart + stepBytes, this.endOffset);
    const lastOffset = Math.min(stepEnd, this.endOffset - RECORD_HEADER_BYTES + 1);
    // Plain byte reads and no calls for the common byte: this loop runs once per byte of the
    // range, which can be 64 MiB of preallocated zeros.
    let pendingEndOffset = this.pending.minEndOffset();
    for (let offset = chunkStart; offset < lastOffset; offset++) {
      const l = offset - chunkStart + RECORD_LENGTH_OFFSET;
      const payloadBytes = (chunk[l]! | (chunk[l + 1]! << 8) | (chunk[l + 2]! << 16) | (chunk[l + 3]! << 24)) >>> 0;
      const plausible = payloadBytes !== 0 && payloadBytes <= LOG_RECORD_SIZE_BYTES_MAX;
      if (!plausible && pendingEndOffset > offset + RECORD_LENGTH_OFFSET) continue;
      let found = this.settleUpTo(offset + RECORD_LENGTH_OFFSET);
      if (found === null && plausible) found = this.tryCandidate(offset, payloadBytes);
      if (found !== null) return found;
      pendingEndOffset = this.pending.minEndOffset();
    }
    const found = this.settleUpTo(stepEnd);
    this.advanceTo(Math.max(this.cursor, stepEnd));
    return found;
  }

  /** Checks a small candidate at once; queues a large one until the pass reaches its end. */
  private tryCandidate(offset: number, payloadBytes: number): number | null {
    const { chunk } = this;
    const at = offset - this.chunkStart;
    const endOffset = offset + RECORD_HEADER_BYTES + payloadBytes;
    if (endOffset > this.endOffset) return null;
    const expectedCrc = unmaskCrc(chunk.readUInt32LE(at));
    if (payloadBytes <= DIRECT_CRC_PAYLOAD_BYTES_MAX) {
      return recordCrc(this.seed, chunk, at, payloadBytes) === expectedCrc ? offset : null;
    }
    this.advanceTo(offset + RECORD_LENGTH_OFFSET);
    this.pending.push({ offset, endOffset, crcToLength: this.crcToCursor, expectedCrc });
    return null;
  }

  /** Checks every queued candidate that ends at or before `position`. */
  private settleUpTo(position: number): number | null {
    for (let next = this.pending.peek(); next !== undefined && next.endOffset <= position; next = this.pending.peek()) {
      this.advanceTo(next.endOffset); // Before the pop: the CRC must run while it is queued.
      this.pending.pop();
      const spanBytes = next.endOffset - (next.offset + RECORD_LENGTH_OFFSET);
      if (crc32cOfSpan(this.seed, next.crcToLength, this.crcToCursor, spanBytes) === next.expectedCrc) {
        return next.offset;
      }
    }
    return null;
  }

  private advanceTo(position: number): void {
    // Only queued candidates need the running CRC, and any start works for the arithmetic; so
    // with none queued the pass restarts the CRC here instead of computing it over every byte.
    if (this.pending.minEndOffset() === Infinity) {
      this.cursor = position;
      this.crcToCursor = 0;
      return;
    }
    const start = this.cursor - this.chunkStart;
    this.crcToCursor = crc32cUpdate(this.crcToCursor, this.chunk, start, position - this.chunkStart);
    this.cursor = position;
  }
}

/** A binary min-heap of candidates by end offset. */
class CandidateHeap {
  private readonly items: Candidate[] = [];

  peek(): Candidate | undefined {
    return this.items[0];
  }

  minEndOffset(): number {
    return this.items.length === 0 ? Infinity : this.items[0]!.endOffset;
  }

  push(candidate: Candidate): void {
    const { items } = this;
    let index = items.push(candidate) - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (items[parent]!.endOffset <= candidate.endOffset) break;
      items[index] = items[parent]!;
      index = parent;
    }
    items[index] = candidate;
  }

  pop(): void {
    const { items } = this;
    const last = items.pop()!;
    if (items.length === 0) return;
    let index = 0;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.endOffset < items[left]!.endOffset ? right : left;
      if (items[child]!.endOffset >= last.endOffset) break;
      items[index] = items[child]!;
      index = child;
    }
    items[index] = last;
  }
}
