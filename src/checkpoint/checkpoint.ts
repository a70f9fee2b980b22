// A consistent online checkpoint: the engine's tables and a manifest at one instant, plus the
// binlog from that manifest's replay start through a durable TSN no earlier than the last one
// acknowledged when the checkpoint began. Opened by `DocumentStore.open`, it recovers like any
// restart: the binlog after the global epoch is replayed. Layout and markers: FORMAT.md.
//
//   startedTsn = binlog.lastTsn              every acknowledged transaction is at or below it
//   await binlog.waitDurable(startedTsn)     (periodic: forces the sync)
//   one synchronous step:
//     engine state (snapshot edit, tables pinned against deletion)
//     s = smallest flag TSN; binlog.retain(s)   purge keeps segments from s on
//     tsn = binlog.durableTsn                   >= startedTsn, >= every flag (flush barrier)
//   binlog segments holding s..tsn; the last one copied only through the record of tsn (the
//   binlog knows where that record ends when it synced it; else the segment is read to find it)
//
// Invariant: the tables hold nothing after the largest flag TSN, and every flag TSN is at most
// `tsn`, so replaying s..tsn over the tables rebuilds exactly the store as of `tsn`.

import * as path from 'node:path';
import { checkpointEngine, type CheckpointFile, type Engine, type FileSystem } from '../../storage/index.js';
import type { Binlog } from '../binlog/binlog.js';
import { HEADER_RECORD_BYTES, SegmentCursor } from '../binlog/segment.js';
import { DocketError, DocketErrorCode } from '../errors.js';

export type { CheckpointFile } from '../../storage/index.js';

/** The format name in a checkpoint's descriptor (and its completion marker). */
export const CHECKPOINT_FORMAT = 'docket-checkpoint/1';
/** Written last, when every other file of the checkpoint is durable: its presence means complete. */
export const COMPLETE_MARKER = 'CHECKPOINT';
/** Written first: a directory holding it but not COMPLETE_MARKER is a checkpoint cut short. */
export const INCOMPLETE_MARKER = 'CHECKPOINT-INCOMPLETE';
/** Bytes per read when a checkpoint's file is copied or streamed. */
export const CHECKPOINT_CHUNK_BYTES = 1024 * 1024;

/** What a checkpoint holds; its completion marker is this as JSON. */
export interface CheckpointDescriptor {
  readonly format: typeof CHECKPOINT_FORMAT;
  /** The copy holds every transaction through this TSN and none after. */
  readonly tsn: number;
  /** The binlog's last TSN when the checkpoint began: every acknowledged write was at or below it. */
  readonly startedTsn: number;
  /** Where recovery of the copy starts replaying the binlog (the smallest flag TSN; 1 at least). */
  readonly replayFromTsn: number;
  readonly createdAt: string;
  readonly files: readonly { readonly name: string; readonly sizeBytes: number }[];
}

/** A captured checkpoint: the files to copy, held in place until `release`. */
export interface CheckpointSource {
  readonly descriptor: CheckpointDescriptor;
  readonly files: readonly CheckpointFile[];
  /** The file system the sources are read through. */
  readonly fileSystem: FileSystem;
  readonly sizeBytes: number;
  /** Lets compaction delete the captured tables and purge the binlog again. Idempotent. */
  release(): void;
}

/** Captures a checkpoint of a passive or double store. REQUIRES: the store is open. */
export async function captureCheckpoint(engine: Engine, binlog: Binlog): Promise<CheckpointSource> {
  const startedTsn = binlog.lastTsn;
  await binlog.waitDurable(startedTsn);
  // From here to `retain`, no await: no edit, flush or purge can come between.
  const captured = checkpointEngine(engine, 'engine');
  let smallest = Number.POSITIVE_INFINITY;
  for (const [name, flag] of captured.flags) {
    if (!flag) {
      captured.release();
      throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `family ${name} has no flush flag: a store in naive durability cannot be checkpointed`);
    }
    smallest = Math.min(smallest, flag.tag);
  }
  const replayFromTsn = Math.max(1, Number.isFinite(smallest) ? smallest : 1);
  const releaseLog = binlog.retain(replayFromTsn);
  const tsn = binlog.durableTsn;
  const end = binlog.durableEndOf(tsn);
  const release = (): void => {
    captured.release();
    releaseLog();
  };
  try {
    const logFiles = tsn >= replayFromTsn ? await binlogFiles(binlog, replayFromTsn, tsn, end) : [];
    const files = [...captured.files, ...logFiles];
    const descriptor: CheckpointDescriptor = {
      format: CHECKPOINT_FORMAT, tsn, startedTsn, replayFromTsn, createdAt: new Date().toISOString(),
      files: files.map((file) => ({ name: file.name, sizeBytes: file.sizeBytes })),
    };
    const sizeBytes = files.reduce((sum, file) => sum + file.sizeBytes, 0);
    return { descriptor, files, fileSystem: binlog.location.fileSystem, sizeBytes, release };
  } catch (error) {
    release();
    throw error;
  }
}

/**
 * The binlog segments holding fromTsn..tsn: whole ones, then the last through the record of tsn
 * (`end`, when the binlog knows it, else found by reading the segment's records).
 */
async function binlogFiles(binlog: Binlog, fromTsn: number, tsn: number, end: { segment: number; offset: number } | undefined): Promise<CheckpointFile[]> {
  const { fileSystem } = binlog.location;
  const segments = binlog.segmentFiles(fromTsn, tsn);
  const files: CheckpointFile[] = [];
  for (const [index, segment] of segments.entries()) {
    const name = `binlog/${path.basename(segment.path)}`;
    if (index < segments.length - 1) {
      const file = await fileSystem.open(segment.path, 'read');
      const sizeBytes = file.size();
      await file.close();
      files.push({ name, sizeBytes, source: segment.path, immutable: true });
    } else {
      const known = end?.segment === segment.number ? end.offset : undefined;
      const sizeBytes = known ?? (await endOfRecord(fileSystem, path.dirname(segment.path), segment.number, tsn));
      files.push({ name, sizeBytes, source: segment.path, immutable: false });
    }
  }
  return files;
}

/** The offset just past the record of `tsn` in a segment: records follow each other byte for byte. */
async function endOfRecord(fileSystem: FileSystem, directory: string, number: number, tsn: number): Promise<number> {
  const cursor = await SegmentCursor.open(fileSystem, directory, number);
  try {
    let offset = HEADER_RECORD_BYTES;
    for (let record = await cursor.next(); record !== null; record = await cursor.next()) {
      offset += record.sizeBytes;
      if (record.tsn === tsn) return offset;
    }
  } finally {
    await cursor.close().catch(() => undefined);
  }
  throw new DocketError(DocketErrorCode.BINLOG_CORRUPTION, `binlog: segment ${number} ends before TSN ${tsn}, which is durable`);
}

/** The bytes of a checkpoint's file, in chunks of at most CHECKPOINT_CHUNK_BYTES. */
export async function* fileChunks(fileSystem: FileSystem, file: CheckpointFile): AsyncGenerator<Buffer> {
  if (file.bytes) {
    yield file.bytes;
    return;
  }
  const handle = await fileSystem.open(file.source!, 'read');
  try {
    if (handle.size() < file.sizeBytes) throw new DocketError(DocketErrorCode.INTERNAL, `checkpoint: ${file.source} holds ${handle.size()} bytes, fewer than the ${file.sizeBytes} captured`);
    for (let position = 0; position < file.sizeBytes; position += CHECKPOINT_CHUNK_BYTES) {
      yield await handle.read(position, Math.min(CHECKPOINT_CHUNK_BYTES, file.sizeBytes - position));
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** DOCKET_ERR_CHECKPOINT_INCOMPLETE if `directory` holds a checkpoint that was never completed. */
export async function refuseIncompleteCheckpoint(fileSystem: FileSystem, directory: string): Promise<void> {
  if (!(await fileSystem.exists(path.join(directory, INCOMPLETE_MARKER)))) return;
  if (await fileSystem.exists(path.join(directory, COMPLETE_MARKER))) return;
  throw new DocketError(DocketErrorCode.CHECKPOINT_INCOMPLETE, `${directory} holds a checkpoint or backup that was cut short (${INCOMPLETE_MARKER} without ${COMPLETE_MARKER}); it does not open. Take the backup again`);
}
