// A column family at run time: its active memtable, the immutable memtables waiting for flush
// (oldest first), and the current version of its tables. Versions are reference counted so a
// table is deleted only when no read or iterator can still reach it.

import type { FamilyState } from './manifest/manifest-state.js';
import type { FileMeta, FlushFlag } from './manifest/version-edit.js';
import { Memtable } from './memtable/memtable.js';

export class Version {
  refs = 0;
  constructor(readonly levels: readonly (readonly FileMeta[])[]) {}
}

export class ColumnFamily {
  mem = new Memtable();
  /** What `mem` was last charged against the engine's write buffer (its sizeBytes then). */
  memCharged = 0;
  readonly imm: Memtable[] = [];
  current: Version;
  dropped = false;
  /** Round-robin position per level for compaction picking. */
  readonly compactPointers: (Buffer | undefined)[] = [];

  constructor(
    readonly id: number,
    readonly name: string,
    private readonly state: FamilyState,
  ) {
    this.current = new Version(state.levels);
  }

  /** The last durable flush flag. */
  get flag(): FlushFlag | undefined {
    return this.state.flag;
  }

  get persistedLsn(): number {
    return this.state.persistedLsn;
  }

  get levels(): readonly (readonly FileMeta[])[] {
    return this.state.levels;
  }

  /** Memtables newest first (the order a point read consults them). */
  memtablesNewestFirst(): Memtable[] {
    const tables = [this.mem];
    for (let i = this.imm.length - 1; i >= 0; i--) tables.push(this.imm[i]!);
    return tables;
  }

  get memtableBytes(): number {
    let total = this.mem.sizeBytes;
    for (const table of this.imm) total += table.sizeBytes;
    return total;
  }

  /** Entries in the memtables, overwrites and tombstones included. */
  get memtableEntries(): number {
    let total = this.mem.count;
    for (const table of this.imm) total += table.count;
    return total;
  }

  /** The smallest LSN not yet in this family's tables, or Infinity when all is persisted. */
  get lsnUnpersistedMin(): number {
    let min = this.mem.empty ? Number.POSITIVE_INFINITY : this.mem.lsnMin;
    for (const table of this.imm) min = Math.min(min, table.lsnMin);
    return min;
  }
}
