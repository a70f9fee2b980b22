// A table job: the CPU-heavy part of a flush or a compaction (merge, encode, checksum, write),
// as a pure function of a file system and a plain-data description. The engine runs it in a
// worker thread on the real file system and inline on the simulated one (job-runner.ts); either
// way the outputs are synced and closed, and installing them is left to the engine.

import { BlockCache } from '../cache.js';
import type { FileSystem } from '../file-system.js';
import type { InternalIterator } from '../iterator.js';
import { Memtable, type MemtableImage } from '../memtable/memtable.js';
import type { FileMeta } from '../manifest/version-edit.js';
import { LevelIterator, MergingIterator } from '../merging-iterator.js';
import { TableCache } from '../table-cache.js';
import { compactionFilter, dedupeFilter, writeTables, type TableWriterOptions } from './table-writer.js';

interface JobBase {
  readonly directory: string;
  /** Output file numbers allocated by the engine; the last one absorbs any overflow. */
  readonly fileNumbers: readonly number[];
  readonly blockSizeBytes: number;
}

export interface FlushJob extends JobBase {
  readonly kind: 'flush';
  /** The memtable to write, as an image of its shared memory (read where it lies, on either thread). */
  readonly memtable: MemtableImage;
}

export interface KeyRange {
  readonly smallestKey: Uint8Array;
  readonly largestKey: Uint8Array;
}

export interface CompactionJob extends JobBase {
  readonly kind: 'compaction';
  readonly targetSizeBytes: number;
  /** Input tables that overlap each other (L0), each merged as its own source. */
  readonly overlappingInputs: readonly FileMeta[];
  /** Input tables of one sorted level each (a deeper level, and the next level). */
  readonly sortedInputs: readonly (readonly FileMeta[])[];
  readonly smallestSnapshotLsn: number;
  /** Table ranges of the levels below the output: a tombstone may go only if no range holds its key. */
  readonly deeperRanges: readonly KeyRange[];
}

export type TableJob = FlushJob | CompactionJob;

const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** Structured clone turns Buffers into Uint8Arrays; this turns them back. */
export function fileMetaFromClone(file: FileMeta): FileMeta {
  return { ...file, smallestKey: asBuffer(file.smallestKey), largestKey: asBuffer(file.largestKey) };
}

export async function runTableJob(fs: FileSystem, job: TableJob): Promise<FileMeta[]> {
  let used = 0;
  const targetSizeBytes = job.kind === 'flush' ? Number.POSITIVE_INFINITY : job.targetSizeBytes;
  const options: TableWriterOptions = {
    fs,
    directory: job.directory,
    newFileNumber: () => job.fileNumbers[Math.min(used++, job.fileNumbers.length - 1)]!,
    // Once the allocated numbers run out, the last table takes the rest rather than reuse one.
    get targetSizeBytes() {
      return used >= job.fileNumbers.length ? Number.POSITIVE_INFINITY : targetSizeBytes;
    },
    blockSizeBytes: job.blockSizeBytes,
  };
  if (job.kind === 'compaction') return runCompaction(fs, job, options);
  const source = Memtable.fromImage(job.memtable).iterator();
  await source.seek();
  return writeTables(source, options, dedupeFilter());
}

async function runCompaction(fs: FileSystem, job: CompactionJob, options: TableWriterOptions): Promise<FileMeta[]> {
  const tables = new TableCache(fs, job.directory, new BlockCache(8 * 1024 * 1024), 1000);
  const children: InternalIterator[] = job.overlappingInputs.map((file) => new LevelIterator([fileMetaFromClone(file)], tables, false));
  for (const level of job.sortedInputs) children.push(new LevelIterator(level.map(fileMetaFromClone), tables, false));
  const source = new MergingIterator(children, false);
  const deeper = job.deeperRanges.map((range) => ({ smallestKey: asBuffer(range.smallestKey), largestKey: asBuffer(range.largestKey) }));
  const isBottommost = (key: Buffer): boolean => !deeper.some((r) => Buffer.compare(key, r.smallestKey) >= 0 && Buffer.compare(key, r.largestKey) <= 0);
  try {
    await source.seek();
    return await writeTables(source, options, compactionFilter(job.smallestSnapshotLsn, isBottommost));
  } finally {
    source.close();
    await tables.close();
  }
}
