// Writes a sorted stream of entries into one or more SSTables: the loop shared by flush and
// compaction. Outputs are cut only between user keys, so tables of a level never overlap.

import * as path from 'node:path';
import { EntryKind, type Entry } from '../entry.js';
import type { FileSystem } from '../file-system.js';
import type { InternalIterator } from '../iterator.js';
import { BACKGROUND_SLICE_ENTRIES } from '../limits.js';
import type { FileMeta } from '../manifest/version-edit.js';
import { TableBuilder } from '../sstable/table-builder.js';
import { tableName } from '../table-cache.js';

export interface TableWriterOptions {
  readonly fs: FileSystem;
  readonly directory: string;
  /** Numbers the engine reserved (in pendingOutputs), so no output is taken for an orphan. */
  readonly newFileNumber: () => number;
  readonly targetSizeBytes: number;
  readonly blockSizeBytes: number;
}

export type EntryFilter = (entry: Entry) => boolean;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Drains `source` (already positioned) into tables; each is synced and closed before return. */
export async function writeTables(source: InternalIterator, options: TableWriterOptions, keep: EntryFilter = () => true): Promise<FileMeta[]> {
  const outputs: FileMeta[] = [];
  let builder: OpenTable | undefined;
  let lastKey: Buffer | undefined;
  let processed = 0;
  try {
    for (; source.valid(); await source.next()) {
      const entry = source.entry();
      if (++processed % BACKGROUND_SLICE_ENTRIES === 0) {
        await builder?.builder.drain(); // Bounds the output buffered in memory.
        await yieldToEventLoop();
      }
      if (!keep(entry)) continue;
      const newKey = lastKey === undefined || !entry.key.equals(lastKey);
      if (builder && newKey && builder.builder.estimatedSizeBytes >= options.targetSizeBytes) {
        outputs.push(await builder.finish());
        builder = undefined;
      }
      builder ??= await OpenTable.create(options);
      builder.builder.add(entry);
      lastKey = entry.key;
    }
    if (builder) outputs.push(await builder.finish());
    return outputs;
  } catch (error) {
    await builder?.abandon();
    throw error;
  }
}

class OpenTable {
  private constructor(
    readonly number: number,
    readonly file: Awaited<ReturnType<FileSystem['open']>>,
    readonly builder: TableBuilder,
  ) {}

  static async create(options: TableWriterOptions): Promise<OpenTable> {
    const number = options.newFileNumber();
    const file = await options.fs.open(path.join(options.directory, tableName(number)), 'create');
    return new OpenTable(number, file, new TableBuilder(file, { blockSizeBytes: options.blockSizeBytes }));
  }

  async finish(): Promise<FileMeta> {
    const properties = await this.builder.finish();
    await this.file.sync();
    await this.file.close();
    return {
      number: this.number,
      sizeBytes: properties.fileSizeBytes,
      smallestKey: properties.smallestKey,
      largestKey: properties.largestKey,
      lsnMin: properties.smallestLsn,
      lsnMax: properties.largestLsn,
      entries: properties.entries,
    };
  }

  async abandon(): Promise<void> {
    this.builder.abandon();
    await this.file.close().catch(() => undefined);
  }
}

/**
 * The drop rules of compaction (as LevelDB's): a version is dropped when a newer version of the
 * same key is visible to every snapshot, and a tombstone is dropped when every snapshot sees it
 * and no deeper level can hold an older version of its key.
 */
export function compactionFilter(smallestSnapshotLsn: number, isBottommost: (key: Buffer) => boolean): EntryFilter {
  let lastKey: Buffer | undefined;
  let newerLsn = Number.MAX_SAFE_INTEGER;
  return (entry) => {
    if (lastKey === undefined || !entry.key.equals(lastKey)) {
      lastKey = entry.key;
      newerLsn = Number.MAX_SAFE_INTEGER;
    }
    let drop = false;
    if (newerLsn === entry.lsn) drop = true; // The same version twice (replayed): keep one.
    else if (newerLsn <= smallestSnapshotLsn) drop = true;
    else if (entry.kind === EntryKind.DELETE && entry.lsn <= smallestSnapshotLsn && isBottommost(entry.key)) drop = true;
    newerLsn = entry.lsn;
    return !drop;
  };
}

/** For flushes: only the duplicate rule (all versions stay; snapshots may need them). */
export function dedupeFilter(): EntryFilter {
  let lastKey: Buffer | undefined;
  let lastLsn = -1;
  return (entry) => {
    const duplicate = lastKey !== undefined && entry.lsn === lastLsn && entry.key.equals(lastKey);
    lastKey = entry.key;
    lastLsn = entry.lsn;
    return !duplicate;
  };
}
