// Reads the records of one log file in order, a large chunk at a time, and tells a torn tail
// (what a crash mid-append leaves: it reads as end of log) from corruption in the middle (it
// throws). The byte layout and the rule that separates the two are in FORMAT.md.

import assert from 'node:assert/strict';
import { corruption, type StorageError } from '../errors.js';
import type { File } from '../file-system.js';
import { LOG_RECORD_SIZE_BYTES_MAX } from '../limits.js';
import { unmaskCrc } from '../util/crc32c.js';
import { isPayloadLengthValid, logCrcSeed, RECORD_HEADER_BYTES, RECORD_LENGTH_OFFSET, recordCrc } from './format.js';
import { findValidRecord } from './record-scan.js';

/** Bytes read per I/O unless a record is bigger: recovery replays hundreds of MB. */
export const LOG_READ_CHUNK_BYTES_DEFAULT = 1024 * 1024;

export interface LogRecord {
  /** Stays valid after later reads: every chunk is a fresh buffer. */
  payload: Buffer;
  /** Where the record's header starts. */
  offset: number;
  /** Just past the record: where the next one starts. */
  endOffset: number;
}

export type LogEndStatus =
  | { kind: 'reading' }
  /** Clean end: end of file, or an all-zero header (preallocated space). */
  | { kind: 'end'; offset: number }
  /** The last record is incomplete or damaged and nothing valid follows; cut the file at offset. */
  | { kind: 'torn'; offset: number; detail: string }
  /** A bad record with a valid record after it; next() threw. */
  | { kind: 'corrupt'; offset: number; detail: string };

export interface LogReaderOptions {
  /** Offset of the first record to read (a record boundary); defaults to 0. */
  startOffset?: number;
  /** Bytes per read; defaults to LOG_READ_CHUNK_BYTES_DEFAULT. Tests use small ones. */
  chunkBytes?: number;
}

type Verdict = { kind: 'valid'; payloadBytes: number } | { kind: 'zero' } | { kind: 'bad'; detail: string };

const ZERO: Verdict = { kind: 'zero' };

export class LogReader {
  private chunk: Buffer = Buffer.alloc(0);
  /** File offset of chunk[0]. */
  private chunkStart = 0;
  private offset: number;
  /** The file's size when the reader was made; shrinks only if reads find less than that. */
  private fileSizeBytes: number;
  private currentStatus: LogEndStatus = { kind: 'reading' };
  private error: StorageError | null = null;
  private readonly seed: number;
  private readonly chunkBytes: number;

  constructor(
    private readonly file: File,
    readonly logNumber: number,
    options: LogReaderOptions = {},
  ) {
    this.seed = logCrcSeed(logNumber);
    this.offset = options.startOffset ?? 0;
    this.chunkBytes = options.chunkBytes ?? LOG_READ_CHUNK_BYTES_DEFAULT;
    this.fileSizeBytes = file.size();
    assert(Number.isSafeInteger(this.offset) && this.offset >= 0, `bad start offset ${this.offset}`);
    assert(this.offset <= this.fileSizeBytes, `start offset ${this.offset} is past the end of ${file.path}`);
    assert(Number.isSafeInteger(this.chunkBytes) && this.chunkBytes >= RECORD_HEADER_BYTES, 'bad chunkBytes');
  }

  get status(): LogEndStatus {
    return this.currentStatus;
  }

  /** The next record, or null at the end of the log (clean or torn). Throws CORRUPTION on corruption. */
  async next(): Promise<LogRecord | null> {
    if (this.error !== null) throw this.error;
    if (this.currentStatus.kind !== 'reading') return null;
    const offset = this.offset;
    const verdict = await this.check(offset);
    if (verdict.kind === 'valid') return this.take(offset, verdict.payloadBytes);
    if (verdict.kind === 'zero') this.currentStatus = { kind: 'end', offset };
    else await this.settleBadRecord(offset, verdict.detail);
    return null;
  }

  private take(offset: number, payloadBytes: number): LogRecord {
    const start = offset - this.chunkStart + RECORD_HEADER_BYTES;
    const endOffset = offset + RECORD_HEADER_BYTES + payloadBytes;
    this.offset = endOffset;
    return { payload: this.chunk.subarray(start, start + payloadBytes), offset, endOffset };
  }

  /** Judges the record at `offset`, loading its bytes first. */
  private async check(offset: number): Promise<Verdict> {
    const remainingBytes = this.fileSizeBytes - offset;
    if (remainingBytes < RECORD_HEADER_BYTES) return this.checkPartialHeader(offset, remainingBytes);
    if (!this.has(offset, RECORD_HEADER_BYTES) && !(await this.load(offset, RECORD_HEADER_BYTES))) {
      return this.check(offset);
    }
    const at = offset - this.chunkStart;
    const maskedCrc = this.chunk.readUInt32LE(at);
    const payloadBytes = this.chunk.readUInt32LE(at + RECORD_LENGTH_OFFSET);
    if (maskedCrc === 0 && payloadBytes === 0) return ZERO;
    const problem = lengthProblem(payloadBytes, remainingBytes - RECORD_HEADER_BYTES);
    if (problem !== null) return { kind: 'bad', detail: problem };
    const recordBytes = RECORD_HEADER_BYTES + payloadBytes;
    if (!this.has(offset, recordBytes) && !(await this.load(offset, recordBytes))) return this.check(offset);
    if (recordCrc(this.seed, this.chunk, offset - this.chunkStart, payloadBytes) !== unmaskCrc(maskedCrc)) {
      return { kind: 'bad', detail: 'checksum mismatch' };
    }
    return { kind: 'valid', payloadBytes };
  }

  /** Fewer than a header's bytes remain: zeros (or nothing) end the log, anything else is torn. */
  private async checkPartialHeader(offset: number, remainingBytes: number): Promise<Verdict> {
    if (remainingBytes === 0) return ZERO;
    if (!this.has(offset, remainingBytes) && !(await this.load(offset, remainingBytes))) return this.check(offset);
    const at = offset - this.chunkStart;
    if (this.chunk.subarray(at, at + remainingBytes).every((byte) => byte === 0)) return ZERO;
    return { kind: 'bad', detail: `a partial header of ${remainingBytes} bytes` };
  }

  /**
   * A bad record with nothing valid after it is what a crash mid-append leaves. One with a
   * valid record after it is taken as damage to written bytes: skipping it would lose data.
   */
  private async settleBadRecord(offset: number, detail: string): Promise<void> {
    const validOffset = await findValidRecord(this.file, this.seed, offset + 1, this.fileSizeBytes, this.chunkBytes);
    if (validOffset === null) {
      this.currentStatus = { kind: 'torn', offset, detail };
      return;
    }
    const message =
      `log ${this.logNumber} (${this.file.path}): ${detail} in the record at offset ${offset}, ` +
      `and a valid record follows at offset ${validOffset}`;
    this.currentStatus = { kind: 'corrupt', offset, detail: message };
    this.error = corruption(message);
    throw this.error;
  }

  private has(offset: number, bytes: number): boolean {
    return offset >= this.chunkStart && offset + bytes <= this.chunkStart + this.chunk.length;
  }

  /**
   * Reads a fresh chunk that starts at `offset` and holds at least `bytes` (never reusing the
   * old one, which returned payloads may still point into). False if the file is shorter than
   * its size said; the reader then believes the bytes and shrinks its idea of the file.
   */
  private async load(offset: number, bytes: number): Promise<boolean> {
    assert(offset + bytes <= this.fileSizeBytes);
    const length = Math.min(Math.max(this.chunkBytes, bytes), this.fileSizeBytes - offset);
    this.chunk = await this.file.read(offset, length);
    this.chunkStart = offset;
    if (this.chunk.length >= bytes) return true;
    this.fileSizeBytes = offset + this.chunk.length;
    return false;
  }
}

function lengthProblem(payloadBytes: number, bytesLeft: number): string | null {
  if (!isPayloadLengthValid(payloadBytes)) {
    return `length ${payloadBytes} is out of range (1 to ${LOG_RECORD_SIZE_BYTES_MAX})`;
  }
  if (payloadBytes > bytesLeft) return `length ${payloadBytes} runs past the end of the file (${bytesLeft} bytes left)`;
  return null;
}

/**
 * Every record of a log, and how it ended (end or torn). Throws CORRUPTION, like next(), when
 * a bad record has a valid one after it.
 */
export async function readAllRecords(
  file: File,
  logNumber: number,
): Promise<{ records: Buffer[]; status: LogEndStatus }> {
  const reader = new LogReader(file, logNumber);
  const records: Buffer[] = [];
  for (let record = await reader.next(); record !== null; record = await reader.next()) records.push(record.payload);
  return { records, status: reader.status };
}
