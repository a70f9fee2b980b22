// Open SSTable readers, bounded in open files. A reader in use is never closed: eviction of a
// busy reader waits until its last user releases it.

import * as path from 'node:path';
import type { BlockCache } from './cache.js';
import type { FileSystem } from './file-system.js';
import { TableReader } from './sstable/table-reader.js';

export const tableName = (number: number): string => `${String(number).padStart(6, '0')}.sst`;

interface Slot {
  readonly reader: Promise<TableReader>;
  /** The reader once open: peek's answer. */
  opened: TableReader | undefined;
  users: number;
  evicted: boolean;
}

export interface TableHandle {
  readonly reader: TableReader;
  release(): void;
}

export class TableCache {
  private readonly slots = new Map<number, Slot>();
  opens = 0;

  constructor(
    private readonly fs: FileSystem,
    private readonly directory: string,
    private readonly blockCache: BlockCache,
    private readonly capacityFiles: number,
  ) {}

  async acquire(number: number): Promise<TableHandle> {
    let slot = this.slots.get(number);
    if (slot) {
      this.slots.delete(number); // Re-insert: a Map's order is the LRU order.
      this.slots.set(number, slot);
    } else {
      const opening: Slot = { reader: this.open(number), opened: undefined, users: 0, evicted: false };
      opening.reader.then((reader) => (opening.opened = reader), () => undefined);
      slot = opening;
      this.slots.set(number, slot);
    }
    slot.users++;
    this.trim(); // After counting this user: the slot just opened must not be the one evicted.
    const owned = slot;
    let reader: TableReader;
    try {
      reader = await owned.reader;
    } catch (error) {
      owned.users--;
      if (this.slots.get(number) === owned) this.slots.delete(number);
      throw error;
    }
    let released = false;
    return {
      reader,
      release: () => {
        if (released) return;
        released = true;
        if (--owned.users === 0 && owned.evicted) void closeQuietly(owned.reader);
      },
    };
  }

  /**
   * The table's reader if it is open, without a promise, for a read that finishes before it
   * yields (a cached-block lookup). NB: not counted as a user, so it must not be kept.
   */
  peek(number: number): TableReader | undefined {
    const slot = this.slots.get(number);
    return slot?.evicted === false ? slot.opened : undefined;
  }

  private async open(number: number): Promise<TableReader> {
    this.opens++;
    const file = await this.fs.open(path.join(this.directory, tableName(number)), 'read');
    try {
      return await TableReader.open(file, number, this.blockCache);
    } catch (error) {
      await file.close().catch(() => undefined);
      throw error;
    }
  }

  /** Forgets a table (its file is being deleted) and its cached blocks. */
  evict(number: number): void {
    const slot = this.slots.get(number);
    if (slot) this.retire(number, slot);
    this.blockCache.evictFile(number);
  }

  private trim(): void {
    for (const [number, slot] of this.slots) {
      if (this.slots.size <= this.capacityFiles) return;
      if (slot.users === 0) this.retire(number, slot);
    }
  }

  private retire(number: number, slot: Slot): void {
    this.slots.delete(number);
    slot.evicted = true;
    if (slot.users === 0) void closeQuietly(slot.reader);
  }

  get openFiles(): number {
    return this.slots.size;
  }

  async close(): Promise<void> {
    const readers = [...this.slots.values()].map((slot) => slot.reader);
    this.slots.clear();
    await Promise.all(readers.map(closeQuietly));
  }
}

async function closeQuietly(reader: Promise<TableReader>): Promise<void> {
  try {
    await (await reader).close();
  } catch {
    // A reader that failed to open has nothing to close.
  }
}
