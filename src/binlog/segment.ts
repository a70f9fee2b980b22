// One binlog segment: its file name, its header record, the TSN in front of every other record,
// preallocation, and a cursor that reads a segment's records in order and checks them. The byte
// layout is in FORMAT.md.

import * as path from 'node:path';
import {
  ByteReader,
  ByteWriter,
  LogReader,
  StorageError,
  StorageErrorCode,
  type File,
  type FileSystem,
  type LogEndStatus,
  type LogRecord,
} from '../../storage/index.js';
import { DocketError, DocketErrorCode } from '../errors.js';
import { BINLOG_PREALLOCATE_CHUNK_BYTES, BINLOG_TSN_BYTES } from './limits.js';

export const SEGMENT_NAME_PATTERN = /^(\d{6,})\.binlog$/;

export function segmentName(number: number): string {
  return `${String(number).padStart(6, '0')}.binlog`;
}

export function segmentPath(directory: string, number: number): string {
  return path.join(directory, segmentName(number));
}

/** The framing's per-record header (storage/log/FORMAT.md); frozen, like the framing. */
export const FRAME_HEADER_BYTES = 8;
export const BINLOG_MAGIC = Buffer.from('DKTBINLG', 'ascii');
export const BINLOG_FORMAT_VERSION = 1;
/** magic, version, firstTsn. */
export const HEADER_PAYLOAD_BYTES = BINLOG_MAGIC.length + 1 + 8;
/** Record 0 of every segment, framed. */
export const HEADER_RECORD_BYTES = FRAME_HEADER_BYTES + HEADER_PAYLOAD_BYTES;

export interface BinlogRecord {
  readonly tsn: number;
  readonly payload: Buffer;
  /** Bytes of the framed record on disk. */
  readonly sizeBytes: number;
  readonly segment: number;
}

export function binlogCorruption(message: string, cause?: unknown): DocketError {
  return new DocketError(DocketErrorCode.BINLOG_CORRUPTION, `binlog: ${message}`, { cause });
}

/** Bytes a record with a caller payload of `payloadBytes` takes on disk. */
export function framedRecordBytes(payloadBytes: number): number {
  return FRAME_HEADER_BYTES + BINLOG_TSN_BYTES + payloadBytes;
}

export function encodeHeader(firstTsn: number): Buffer {
  const writer = new ByteWriter(HEADER_PAYLOAD_BYTES).bytes(BINLOG_MAGIC).byte(BINLOG_FORMAT_VERSION).fixed64(firstTsn);
  return Buffer.from(writer.view());
}

/** The header's firstTsn; throws BINLOG_CORRUPTION on a wrong length, magic or version. */
export function decodeHeader(payload: Buffer, segment: number): number {
  if (payload.length !== HEADER_PAYLOAD_BYTES) {
    throw binlogCorruption(`segment ${segment}: header of ${payload.length} bytes, expected ${HEADER_PAYLOAD_BYTES}`);
  }
  const reader = new ByteReader(payload, 0, payload.length, `binlog segment ${segment} header`);
  if (!reader.bytes(BINLOG_MAGIC.length).equals(BINLOG_MAGIC)) throw binlogCorruption(`segment ${segment}: bad magic`);
  const version = reader.byte();
  if (version > BINLOG_FORMAT_VERSION) {
    throw binlogCorruption(`segment ${segment}: unsupported version ${version} (this code reads version ${BINLOG_FORMAT_VERSION})`);
  }
  if (version !== BINLOG_FORMAT_VERSION) throw binlogCorruption(`segment ${segment}: bad version ${version}`);
  return checked(() => reader.fixed64(), segment);
}

/** The framed payload of a transaction record: the TSN, then the caller's bytes (copied). */
export function encodeRecordPayload(tsn: number, payload: Uint8Array): Buffer {
  const writer = new ByteWriter(BINLOG_TSN_BYTES + payload.length).fixed64(tsn).bytes(payload);
  return writer.view();
}

function decodeTsn(record: LogRecord, segment: number): number {
  if (record.payload.length < BINLOG_TSN_BYTES) {
    throw binlogCorruption(`segment ${segment}: record at offset ${record.offset} is too short to hold a TSN`);
  }
  return checked(() => new ByteReader(record.payload).fixed64(), segment);
}

/** The framing's CORRUPTION becomes BINLOG_CORRUPTION; any other error passes unchanged. */
function asBinlogError(error: unknown, segment: number): unknown {
  if (error instanceof StorageError && error.code === StorageErrorCode.CORRUPTION) {
    return binlogCorruption(`segment ${segment}: ${error.message}`, error);
  }
  return error;
}

function checked<T>(decode: () => T, segment: number): T {
  try {
    return decode();
  } catch (error) {
    throw asBinlogError(error, segment);
  }
}

/** Writes zeros over [fromBytes, toBytes) with write calls of at most one chunk. */
export async function writeZeros(file: File, fromBytes: number, toBytes: number): Promise<void> {
  const zeros = Buffer.alloc(Math.min(BINLOG_PREALLOCATE_CHUNK_BYTES, Math.max(0, toBytes - fromBytes)));
  for (let position = fromBytes; position < toBytes; position += zeros.length) {
    await file.write(position, zeros.subarray(0, Math.min(zeros.length, toBytes - position)));
  }
}

/**
 * A new segment of `sizeBytes` zeros, synced with its directory entry before any record goes
 * in: later fdatasyncs then change no size (one I/O), and unsynced bytes read back as zeros.
 */
export async function createSegment(fs: FileSystem, directory: string, number: number, sizeBytes: number): Promise<File> {
  const file = await fs.open(segmentPath(directory, number), 'create');
  try {
    await writeZeros(file, 0, sizeBytes);
    await file.sync();
    await fs.syncDirectory(directory);
    return file;
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
}

/** Whether every byte of the file is zero: a spare found at open may be reused only then. */
export async function holdsOnlyZeros(file: File): Promise<boolean> {
  const zeros = Buffer.alloc(BINLOG_PREALLOCATE_CHUNK_BYTES);
  for (let position = 0; position < file.size(); position += zeros.length) {
    const chunk = await file.read(position, Math.min(zeros.length, file.size() - position));
    if (!chunk.equals(zeros.subarray(0, chunk.length))) return false;
  }
  return true;
}

/** Runs `body` with `resource`, closing it after; a close error never hides the body's error. */
export async function withResource<T>(resource: { close(): Promise<void> }, body: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (error) {
    await resource.close().catch(() => undefined);
    throw error;
  }
  await resource.close();
  return result;
}

/**
 * Reads one segment: the header first (firstTsn is null when record 0 is missing, zeros or torn:
 * a spare, or a segment whose header write never landed), then the transaction records in order.
 * Every record's TSN must be the one after the previous (firstTsn for the first).
 */
export class SegmentCursor {
  private expectedTsn: number;

  private constructor(
    readonly file: File,
    private readonly reader: LogReader,
    readonly number: number,
    readonly firstTsn: number | null,
  ) {
    this.expectedTsn = firstTsn ?? 0;
  }

  /** `chunkBytes`: bytes per read; open passes a small one when it wants only the header. */
  static async open(
    fs: FileSystem,
    directory: string,
    number: number,
    mode: 'read' | 'write' = 'read',
    chunkBytes?: number,
  ): Promise<SegmentCursor> {
    const file = await fs.open(segmentPath(directory, number), mode);
    try {
      const reader = new LogReader(file, number, chunkBytes === undefined ? {} : { chunkBytes });
      const header = await nextRecord(reader, number);
      const firstTsn = header === null ? null : decodeHeader(header.payload, number);
      return new SegmentCursor(file, reader, number, firstTsn);
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  /** The TSN the next record must have: one past the last record read. */
  get nextTsn(): number {
    return this.expectedTsn;
  }

  get status(): LogEndStatus {
    return this.reader.status;
  }

  /** The next record, or null at the end of the segment (see status). Throws BINLOG_CORRUPTION. */
  async next(): Promise<BinlogRecord | null> {
    if (this.firstTsn === null) return null;
    const record = await nextRecord(this.reader, this.number);
    if (record === null) return null;
    const tsn = decodeTsn(record, this.number);
    if (tsn !== this.expectedTsn) {
      throw binlogCorruption(`segment ${this.number}: the record at offset ${record.offset} has TSN ${tsn}, expected ${this.expectedTsn}`);
    }
    this.expectedTsn += 1;
    const payload = record.payload.subarray(BINLOG_TSN_BYTES);
    return { tsn, payload, sizeBytes: record.endOffset - record.offset, segment: this.number };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

async function nextRecord(reader: LogReader, segment: number): Promise<LogRecord | null> {
  try {
    return await reader.next();
  } catch (error) {
    throw asBinlogError(error, segment);
  }
}
