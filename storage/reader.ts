// The engine's read path: point reads, multi-gets and range iterators over a family's
// memtables and tables, at a snapshot. It reads through a ReadSource (the engine's core), which
// owns the families, the versions and the table cache; the reader holds no state of its own.

import type { ColumnFamily, Version } from './column-family.js';
import { compareKeys, EntryKind, type Entry } from './entry.js';
import { invalidArgument } from './errors.js';
import type { InternalIterator } from './iterator.js';
import { LEVELS } from './limits.js';
import type { FileMeta } from './manifest/version-edit.js';
import { LevelIterator, MergingIterator } from './merging-iterator.js';
import { bloomHash } from './sstable/bloom.js';
import { NOT_CACHED } from './sstable/table-reader.js';
import { searchBlock } from './sstable/block-search.js';
import type { TableCache } from './table-cache.js';

export interface Snapshot {
  /** Reads at this snapshot see every batch with LSNs up to here, and nothing later. */
  readonly lsn: number;
  release(): void;
}

export interface ReadOptions {
  readonly snapshot?: Snapshot;
}

export interface IteratorOptions extends ReadOptions {
  readonly gt?: Buffer;
  readonly gte?: Buffer;
  readonly lt?: Buffer;
  readonly lte?: Buffer;
  /** Only keys that start with these bytes. */
  readonly prefix?: Buffer;
  readonly reverse?: boolean;
  /** At most this many entries. */
  readonly limit?: number;
}

export interface KeyValue {
  readonly key: Buffer;
  readonly value: Buffer;
}

/** What the reader needs of the engine: its families, what is visible, and pinned versions. */
export interface ReadSource {
  /** Throws unless the engine is open. */
  checkOpen(): void;
  /** The family named so; throws FAMILY_NOT_FOUND if there is none. */
  family(name: string): ColumnFamily;
  /** Reads with no snapshot see every batch up to here. */
  readonly visibleLsn: number;
  readonly tables: TableCache;
  /** Pins a family's current tables until released (a read that awaits holds one). */
  acquireVersion(family: ColumnFamily): Version;
  releaseVersion(version: Version): void;
}

/** The snapshots readers hold: compaction keeps every version the oldest of them can see. */
export class Snapshots {
  private readonly held = new Set<HeldSnapshot>();

  take(lsn: number): Snapshot {
    const snapshot = new HeldSnapshot(lsn, this.held);
    this.held.add(snapshot);
    return snapshot;
  }

  /** The oldest LSN a snapshot still reads at, or `visible` if none is older. */
  oldest(visible: number): number {
    let smallest = visible;
    for (const snapshot of this.held) smallest = Math.min(smallest, snapshot.lsn);
    return smallest;
  }
}

class HeldSnapshot implements Snapshot {
  constructor(
    readonly lsn: number,
    private readonly owner: Set<HeldSnapshot>,
  ) {}
  release(): void {
    this.owner.delete(this);
  }
}

export class Reader {
  constructor(private readonly source: ReadSource) {}

  // ---- point reads ----

  async get(family: string, key: Buffer, options: ReadOptions = {}): Promise<Buffer | undefined> {
    this.source.checkOpen();
    const entry = await this.getEntry(this.source.family(family), key, options.snapshot?.lsn ?? this.source.visibleLsn);
    return entry?.kind === EntryKind.PUT ? entry.value : undefined;
  }

  /** Several keys, possibly in several families, all at one snapshot. */
  async getMany(requests: readonly { family: string; key: Buffer }[], options: ReadOptions = {}): Promise<(Buffer | undefined)[]> {
    this.source.checkOpen();
    const lsn = options.snapshot?.lsn ?? this.source.visibleLsn;
    const families = requests.map((request) => this.source.family(request.family));
    // Memtables first, for every key, with no await: a document's fields are mostly in memory,
    // and a promise per key cost more than the lookups. Only the rest go to the tables.
    const entries = requests.map((request, i) => getFromMemtables(families[i]!, request.key, lsn));
    // Then, per family, tables whose needed blocks are cached, still with no await: the keys in
    // key order, so each block is found and searched once for all its keys. Only the rest wait.
    const byFamily = new Map<ColumnFamily, number[]>();
    for (let i = 0; i < entries.length; i++) {
      if (entries[i] !== undefined) continue;
      const list = byFamily.get(families[i]!);
      if (list === undefined) byFamily.set(families[i]!, [i]);
      else list.push(i);
    }
    const uncached: number[] = [];
    if (byFamily.size > 0) {
      const keys = requests.map((request) => request.key);
      const resolved = new Uint8Array(requests.length);
      // Each key's bloom hash once, not once per table it is looked for in (every L0 table
      // whose range holds it, and one table a level).
      const hashes = new Uint32Array(requests.length);
      for (const order of byFamily.values()) if (order.length > 1) for (const i of order) hashes[i] = bloomHash(keys[i]!);
      for (const [family, order] of byFamily) {
        if (order.length === 1) {
          // One key (a header, a `fields=` pick): the plain point lookup, with nothing to share.
          const i = order[0]!;
          const entry = this.getFromCachedTables(family.current, keys[i]!, lsn);
          if (entry === NOT_CACHED) uncached.push(i);
          else entries[i] = entry;
          continue;
        }
        order.sort((a, b) => Buffer.compare(keys[a]!, keys[b]!));
        if (!this.resolveCached(family.current, keys, order, lsn, entries, resolved, hashes)) for (const i of order) if (resolved[i] === 0) uncached.push(i);
      }
    }
    if (uncached.length > 0) await this.getManyFromTables(families, requests, uncached, lsn, entries);
    return entries.map((entry) => (entry?.kind === EntryKind.PUT ? entry.value : undefined));
  }

  private async getEntry(family: ColumnFamily, key: Buffer, lsn: number): Promise<Entry | undefined> {
    const entry = getFromMemtables(family, key, lsn) ?? this.getFromCachedTables(family.current, key, lsn);
    if (entry !== NOT_CACHED) return entry;
    // The same grouped path as getMany, with one key: one way to the tables, not two.
    const entries: (Entry | undefined)[] = [undefined];
    await this.getManyFromTables([family], [{ key }], [0], lsn, entries);
    return entries[0];
  }

  /**
   * The tables' answer when every table it must consult is open and its block cached, else
   * NOT_CACHED. REQUIRES: called in the same tick as the memtable lookup (no version change
   * between them); it never yields, so the version needs no reference.
   */
  private getFromCachedTables(version: Version, key: Buffer, lsn: number): Entry | undefined | typeof NOT_CACHED {
    for (const file of version.levels[0]!) {
      if (!covers(file, key) || file.lsnMin > lsn) continue;
      const entry = this.getFromCachedTable(file, key, lsn);
      if (entry !== undefined) return entry;
    }
    for (let level = 1; level < LEVELS; level++) {
      const file = findFile(version.levels[level]!, key);
      if (!file || file.lsnMin > lsn) continue;
      const entry = this.getFromCachedTable(file, key, lsn);
      if (entry !== undefined) return entry;
    }
    return undefined;
  }

  /**
   * Answers keys[order[...]] (one family's, sorted) from its tables, newest first, as far as
   * open tables and cached blocks allow, with no await: per table, the keys still unanswered
   * in its range go to TableReader.getManyCached together. False when a table or block it
   * needs is not at hand; the keys it answered stay answered (a newer source's answer is final).
   * REQUIRES: called in the same tick as the memtable lookups (no version change between them).
   */
  private resolveCached(version: Version, keys: readonly Buffer[], order: number[], lsn: number, entries: (Entry | undefined)[], resolved: Uint8Array, hashes: Uint32Array): boolean {
    const wanted: number[] = [];
    const admitted: number[] = [];
    const inFile = (file: FileMeta): boolean => {
      wanted.length = 0;
      if (file.lsnMin > lsn) return true;
      for (const i of order) if (resolved[i] === 0 && covers(file, keys[i]!)) wanted.push(i);
      if (wanted.length === 0) return true;
      const reader = this.source.tables.peek(file.number);
      return reader !== undefined && reader.getManyCached(keys, wanted, 0, wanted.length, lsn, entries, resolved, admitted, hashes);
    };
    for (const file of version.levels[0]!) if (!inFile(file)) return false;
    for (let level = 1; level < LEVELS; level++) {
      const files = version.levels[level]!;
      if (files.length === 0) continue;
      // The keys are sorted and so are the files: each file once, for the keys in its range.
      let previous: FileMeta | undefined;
      for (const i of order) {
        if (resolved[i] !== 0) continue;
        const file = findFile(files, keys[i]!);
        if (file === undefined || file === previous) continue;
        previous = file;
        if (!inFile(file)) return false;
      }
    }
    return true;
  }

  /**
   * The table lookups of getMany, grouped: per family, each table is opened and each data block
   * read once for all the keys it may hold (a document's fields in one family are adjacent, so
   * they share blocks), instead of a chain of promises per key. Keys are resolved at their
   * first hit, source by source in the order a single get takes (L0 newest first, then levels).
   * REQUIRES: called in the same tick as the memtable lookups (it takes the versions at once).
   */
  private async getManyFromTables(families: readonly ColumnFamily[], requests: readonly { key: Buffer }[], indices: readonly number[], lsn: number, entries: (Entry | undefined)[]): Promise<void> {
    const byFamily = new Map<ColumnFamily, number[]>();
    for (const i of indices) {
      const list = byFamily.get(families[i]!);
      if (list === undefined) byFamily.set(families[i]!, [i]);
      else list.push(i);
    }
    const versions = [...byFamily.keys()].map((family) => this.source.acquireVersion(family));
    try {
      await Promise.all([...byFamily.values()].map((list, f) => this.resolveInVersion(versions[f]!, list, requests, lsn, entries)));
    } finally {
      for (const version of versions) this.source.releaseVersion(version);
    }
  }

  private async resolveInVersion(version: Version, indices: number[], requests: readonly { key: Buffer }[], lsn: number, entries: (Entry | undefined)[]): Promise<void> {
    let pending = indices;
    const resolved = new Set<number>();
    const sources: { files: readonly FileMeta[]; sorted: boolean }[] = [...version.levels[0]!.map((file) => ({ files: [file], sorted: false }))];
    for (let level = 1; level < LEVELS; level++) if (version.levels[level]!.length > 0) sources.push({ files: version.levels[level]!, sorted: true });
    for (const source of sources) {
      const byFile = new Map<FileMeta, number[]>();
      for (const i of pending) {
        const key = requests[i]!.key;
        const file = source.sorted ? findFile(source.files, key) : covers(source.files[0]!, key) ? source.files[0] : undefined;
        if (!file || file.lsnMin > lsn) continue;
        const list = byFile.get(file);
        if (list === undefined) byFile.set(file, [i]);
        else list.push(i);
      }
      await Promise.all([...byFile].map(([file, list]) => this.resolveInTable(file, list, requests, lsn, entries, resolved)));
      if (resolved.size > 0) pending = pending.filter((i) => !resolved.has(i));
      if (pending.length === 0) return;
    }
  }

  /** Looks the keys up in one table, reading each block they need once; marks those it answers. */
  private async resolveInTable(file: FileMeta, indices: number[], requests: readonly { key: Buffer }[], lsn: number, entries: (Entry | undefined)[], resolved: Set<number>): Promise<void> {
    const handle = await this.source.tables.acquire(file.number);
    try {
      const byBlock = new Map<number, number[]>();
      for (const i of indices) {
        const block = handle.reader.locate(requests[i]!.key, lsn);
        if (block < 0) continue;
        const list = byBlock.get(block);
        if (list === undefined) byBlock.set(block, [i]);
        else list.push(i);
      }
      await Promise.all([...byBlock].map(async ([blockIndex, list]) => {
        const block = await handle.reader.readDataBlock(blockIndex);
        for (const i of list) {
          const entry = searchBlock(block, requests[i]!.key, lsn);
          if (entry === undefined) continue;
          entries[i] = entry;
          resolved.add(i);
        }
      }));
    } finally {
      handle.release();
    }
  }

  private getFromCachedTable(file: FileMeta, key: Buffer, lsn: number): Entry | undefined | typeof NOT_CACHED {
    const reader = this.source.tables.peek(file.number);
    return reader === undefined ? NOT_CACHED : reader.getCached(key, lsn);
  }

  // ---- iterators ----

  /** Live entries of one family in key order (or reverse), within bounds, at a snapshot. */
  iterator(family: string, options: IteratorOptions = {}): EngineIterator {
    this.source.checkOpen();
    if (options.limit !== undefined && (!Number.isSafeInteger(options.limit) || options.limit < 0)) throw invalidArgument(`bad limit ${options.limit}`);
    const cf = this.source.family(family);
    const bounds = boundsOf(options); // Before acquiring anything: it may refuse the options.
    const reverse = options.reverse ?? false;
    const version = this.source.acquireVersion(cf);
    const children: InternalIterator[] = cf.memtablesNewestFirst().map((memtable) => memtable.iterator({ reverse }));
    for (const file of version.levels[0]!) children.push(new LevelIterator([file], this.source.tables, reverse));
    for (let level = 1; level < LEVELS; level++) {
      if (version.levels[level]!.length > 0) children.push(new LevelIterator(version.levels[level]!, this.source.tables, reverse));
    }
    const lsn = options.snapshot?.lsn ?? this.source.visibleLsn;
    return new EngineIterator(new MergingIterator(children, reverse), bounds, lsn, options.limit, () => this.source.releaseVersion(version));
  }
}

/** The newest version of `key` at or below `lsn` in the family's memtables (tombstones too). */
function getFromMemtables(family: ColumnFamily, key: Buffer, lsn: number): Entry | undefined {
  const entry = family.mem.get(key, lsn);
  if (entry) return entry;
  for (let i = family.imm.length - 1; i >= 0; i--) {
    const older = family.imm[i]!.get(key, lsn);
    if (older) return older;
  }
  return undefined;
}

function covers(file: FileMeta, key: Buffer): boolean {
  return compareKeys(key, file.smallestKey) >= 0 && compareKeys(key, file.largestKey) <= 0;
}

/** The table of a sorted, non-overlapping level whose range holds `key`. */
function findFile(files: readonly FileMeta[], key: Buffer): FileMeta | undefined {
  let low = 0;
  let high = files.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(files[middle]!.largestKey, key) < 0) low = middle + 1;
    else high = middle;
  }
  const file = files[low];
  return file && Buffer.compare(key, file.smallestKey) >= 0 ? file : undefined;
}

interface Bounds {
  readonly lower: Buffer | undefined;
  readonly lowerExclusive: boolean;
  readonly upper: Buffer | undefined;
  readonly upperExclusive: boolean;
}

function boundsOf(options: IteratorOptions): Bounds {
  if (options.gt !== undefined && options.gte !== undefined) throw invalidArgument('an iterator takes gt or gte, not both');
  if (options.lt !== undefined && options.lte !== undefined) throw invalidArgument('an iterator takes lt or lte, not both');
  let lower = options.gte ?? options.gt;
  let lowerExclusive = options.gte === undefined && options.gt !== undefined;
  let upper = options.lte ?? options.lt;
  let upperExclusive = options.lte === undefined && options.lt !== undefined;
  if (options.prefix) {
    if (!lower || Buffer.compare(options.prefix, lower) > 0) [lower, lowerExclusive] = [options.prefix, false];
    const end = prefixEnd(options.prefix);
    if (end && (!upper || Buffer.compare(end, upper) <= 0)) [upper, upperExclusive] = [end, true];
  }
  return { lower, lowerExclusive, upper, upperExclusive };
}

/** The smallest key greater than every key with this prefix, or undefined if none (all 0xff). */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i]! !== 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i]!++;
      return end;
    }
  }
  return undefined;
}

/** A user-level iterator: one live version per key, tombstones hidden, bounds applied. */
export class EngineIterator implements AsyncIterableIterator<KeyValue> {
  private started = false;
  private done = false;
  private count = 0;

  constructor(
    private readonly source: MergingIterator,
    private readonly bounds: Bounds,
    private readonly lsn: number,
    private readonly limit: number | undefined,
    private readonly onClose: () => void,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<KeyValue>> {
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    let found: KeyValue | undefined | Promise<KeyValue | undefined>;
    try {
      found = this.step();
    } catch (error) {
      this.close();
      return Promise.reject(error);
    }
    if (found instanceof Promise) return found.then((value) => this.result(value));
    return Promise.resolve(this.result(found));
  }

  /**
   * The next live entry, or undefined at the end (the iterator is then closed): at once while
   * the walk stays within blocks already decoded and memtables, else a promise. A caller that
   * awaits only promises walks cached data with no promise per key.
   */
  step(): KeyValue | undefined | Promise<KeyValue | undefined> {
    if (this.done) return undefined;
    let found: KeyValue | undefined | Promise<KeyValue | undefined>;
    try {
      found = this.started ? this.advanceSync() : this.advance();
    } catch (error) {
      this.close();
      throw error;
    }
    if (found instanceof Promise) {
      return found.then(
        (value) => {
          if (value === undefined) this.close();
          return value;
        },
        (error: unknown) => {
          this.close();
          throw error;
        },
      );
    }
    if (found === undefined) this.close();
    return found;
  }

  private result(value: KeyValue | undefined): IteratorResult<KeyValue> {
    if (value === undefined) {
      this.close();
      return { done: true, value: undefined };
    }
    return { done: false, value };
  }

  async return(): Promise<IteratorResult<KeyValue>> {
    this.close();
    return { done: true, value: undefined };
  }

  private get reverse(): boolean {
    return this.source.reverse;
  }

  /** advance() without a promise until a source needs one; then the rest of the walk is advance()'s. */
  private advanceSync(): KeyValue | undefined | Promise<KeyValue | undefined> {
    if (this.limit !== undefined && this.count >= this.limit) return undefined;
    while (this.source.valid()) {
      const key = this.source.entry().key;
      if (this.pastEnd(key)) return undefined;
      let newest: Entry | undefined;
      while (this.source.valid() && this.source.entry().key.equals(key)) {
        const entry = this.source.entry();
        if (entry.lsn <= this.lsn && (this.reverse || !newest)) newest = entry;
        if (!this.source.nextSync()) return this.finish(key, newest);
      }
      if (this.beforeStart(key) || !newest || newest.kind !== EntryKind.PUT) continue;
      this.count++;
      return { key: newest.key, value: newest.value };
    }
    return undefined;
  }

  /** advanceSync's key, whose versions a source must read on to reach: then advance() goes on. */
  private async finish(key: Buffer, newest: Entry | undefined): Promise<KeyValue | undefined> {
    await this.source.next();
    newest = await this.newestVisible(key, newest);
    if (this.beforeStart(key) || !newest || newest.kind !== EntryKind.PUT) return this.advance();
    this.count++;
    return { key: newest.key, value: newest.value };
  }

  private async advance(): Promise<KeyValue | undefined> {
    if (this.limit !== undefined && this.count >= this.limit) return undefined;
    if (!this.started) {
      this.started = true;
      await this.source.seek(this.reverse ? this.bounds.upper : this.bounds.lower);
    }
    while (this.source.valid()) {
      const key = this.source.entry().key;
      if (this.pastEnd(key)) return undefined;
      const newest = await this.newestVisible(key, undefined);
      if (this.beforeStart(key) || !newest || newest.kind !== EntryKind.PUT) continue;
      this.count++;
      return { key: newest.key, value: newest.value };
    }
    return undefined;
  }

  /** Consumes every (remaining) version of `key`; returns the newest one at or below the snapshot. */
  private async newestVisible(key: Buffer, newest: Entry | undefined): Promise<Entry | undefined> {
    while (this.source.valid() && this.source.entry().key.equals(key)) {
      const entry = this.source.entry();
      // Forward, versions come newest first; reverse, oldest first.
      if (entry.lsn <= this.lsn && (this.reverse || !newest)) newest = entry;
      if (!this.source.nextSync()) await this.source.next();
    }
    return newest;
  }

  /** Past the bound the walk is heading to. */
  private pastEnd(key: Buffer): boolean {
    const { lower, lowerExclusive, upper, upperExclusive } = this.bounds;
    if (this.reverse) return lower !== undefined && (Buffer.compare(key, lower) < 0 || (lowerExclusive && key.equals(lower)));
    return upper !== undefined && (Buffer.compare(key, upper) > 0 || (upperExclusive && key.equals(upper)));
  }

  /** The exclusive bound the walk starts at (seek lands on it). */
  private beforeStart(key: Buffer): boolean {
    const { lower, lowerExclusive, upper, upperExclusive } = this.bounds;
    if (this.reverse) return upperExclusive && upper !== undefined && key.equals(upper);
    return lowerExclusive && lower !== undefined && key.equals(lower);
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.source.close();
    this.onClose();
  }
}
