// The engine's public class: open and close, point reads, multi-gets, snapshots, range
// iterators and stats, on top of the write path and background work of engine.ts.

import * as path from 'node:path';
import type { ColumnFamily, Version } from './column-family.js';
import { compareKeys, EntryKind, type Entry } from './entry.js';
import { EngineCore, settingsOf, type EngineOptions } from './engine.js';
import { invalidArgument } from './errors.js';
import { RealFileSystem } from './file-system.js';
import type { InternalIterator } from './iterator.js';
import { LEVELS } from './limits.js';
import type { FileMeta, FlushFlag } from './manifest/version-edit.js';
import { LevelIterator, MergingIterator } from './merging-iterator.js';
import { NOT_CACHED } from './sstable/table-reader.js';
import { searchBlock } from './sstable/block-search.js';

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

export interface RecoveryReport {
  readonly manifestTornTail: { manifest: string; offset: number; detail: string } | undefined;
  readonly walBatchesReplayed: number;
  /** WAL batches beyond walReplayTagMax, dropped at open. */
  readonly walBatchesDropped: number;
  readonly walTornTail: boolean;
}

export interface FamilyStats {
  readonly name: string;
  readonly memtableBytes: number;
  /** Entries in memory, overwrites and tombstones included. */
  readonly memtableEntries: number;
  readonly immutableMemtables: number;
  /** Per level; `entries` counts every version and tombstone the tables hold. */
  readonly levels: { files: number; bytes: number; entries: number }[];
  readonly flag: FlushFlag | undefined;
}

export interface EngineStats {
  readonly lastLsn: number;
  readonly families: FamilyStats[];
  readonly bytesWritten: { user: number; wal: number; flush: number; compaction: number };
  /** (WAL + flush + compaction bytes) / user bytes. */
  readonly writeAmplification: number;
  readonly flushes: number;
  readonly compactions: number;
  readonly trivialMoves: number;
  readonly stallMs: number;
  readonly slowdowns: number;
  /** What the active memtables hold, against the store-wide bound; switches made to keep it. */
  readonly writeBuffer: { usageBytes: number; capacityBytes: number; switches: number };
  readonly blockCache: { hits: number; misses: number; hitRatio: number; usageBytes: number; capacityBytes: number };
  readonly tableCache: { openFiles: number; opens: number };
}

class EngineSnapshot implements Snapshot {
  constructor(
    readonly lsn: number,
    private readonly owner: Set<EngineSnapshot>,
  ) {}
  release(): void {
    this.owner.delete(this);
  }
}

export class Engine extends EngineCore {
  private readonly snapshots = new Set<EngineSnapshot>();
  private unlock: () => Promise<void> = async () => undefined;

  static async open(options: EngineOptions): Promise<Engine> {
    settingsOf(options); // Rejects contradictory options before any file is touched.
    const fs = options.fileSystem ?? new RealFileSystem();
    if (!(await fs.exists(options.directory))) {
      await fs.mkdir(options.directory);
      await fs.syncDirectory(path.dirname(path.resolve(options.directory)));
    }
    const unlock = (await fs.lockDirectory?.(options.directory)) ?? (async () => undefined);
    let engine: Engine | undefined;
    try {
      const { manifest, names } = await EngineCore.openManifest(fs, options);
      engine = new Engine(fs, options, manifest);
      engine.unlock = unlock;
      await engine.recover(names);
      return engine;
    } catch (error) {
      await engine?.closeFiles().catch(() => undefined);
      await unlock();
      throw error;
    }
  }

  /** What the last open found and repaired: a dropped torn manifest tail, WAL records replayed. */
  get recoveryReport(): RecoveryReport {
    return { manifestTornTail: this.manifest.recovery.tornTail, walBatchesReplayed: this.walBatchesReplayed, walBatchesDropped: this.walBatchesDropped, walTornTail: this.walTornTail };
  }

  /** The last flush flag made durable for each family (undefined where none yet). */
  flags(): Map<string, FlushFlag | undefined> {
    return new Map([...this.families].map(([name, family]) => [name, family.flag]));
  }

  get lastLsnAssigned(): number {
    return this.lastLsn;
  }

  snapshot(): Snapshot {
    const snapshot = new EngineSnapshot(this.visibleLsn, this.snapshots);
    this.snapshots.add(snapshot);
    return snapshot;
  }

  protected override smallestSnapshotLsn(): number {
    let smallest = this.visibleLsn;
    for (const snapshot of this.snapshots) smallest = Math.min(smallest, snapshot.lsn);
    return smallest;
  }

  // ---- point reads ----

  async get(family: string, key: Buffer, options: ReadOptions = {}): Promise<Buffer | undefined> {
    this.checkOpen();
    const entry = await this.getEntry(this.family(family), key, options.snapshot?.lsn ?? this.visibleLsn);
    return entry?.kind === EntryKind.PUT ? entry.value : undefined;
  }

  /** Several keys, possibly in several families, all at one snapshot. */
  async getMany(requests: readonly { family: string; key: Buffer }[], options: ReadOptions = {}): Promise<(Buffer | undefined)[]> {
    this.checkOpen();
    const lsn = options.snapshot?.lsn ?? this.visibleLsn;
    const families = requests.map((request) => this.family(request.family));
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
        if (!this.resolveCached(family.current, keys, order, lsn, entries, resolved)) for (const i of order) if (resolved[i] === 0) uncached.push(i);
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
  private resolveCached(version: Version, keys: readonly Buffer[], order: number[], lsn: number, entries: (Entry | undefined)[], resolved: Uint8Array): boolean {
    const wanted: number[] = [];
    const admitted: number[] = [];
    const inFile = (file: FileMeta): boolean => {
      wanted.length = 0;
      if (file.lsnMin > lsn) return true;
      for (const i of order) if (resolved[i] === 0 && covers(file, keys[i]!)) wanted.push(i);
      if (wanted.length === 0) return true;
      const reader = this.tables.peek(file.number);
      return reader !== undefined && reader.getManyCached(keys, wanted, 0, wanted.length, lsn, entries, resolved, admitted);
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
    const versions = [...byFamily.keys()].map((family) => this.acquireVersion(family));
    try {
      await Promise.all([...byFamily.values()].map((list, f) => this.resolveInVersion(versions[f]!, list, requests, lsn, entries)));
    } finally {
      for (const version of versions) this.releaseVersion(version);
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
    const handle = await this.tables.acquire(file.number);
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
    const reader = this.tables.peek(file.number);
    return reader === undefined ? NOT_CACHED : reader.getCached(key, lsn);
  }

  // ---- iterators ----

  /** Live entries of one family in key order (or reverse), within bounds, at a snapshot. */
  iterator(family: string, options: IteratorOptions = {}): EngineIterator {
    this.checkOpen();
    if (options.limit !== undefined && (!Number.isSafeInteger(options.limit) || options.limit < 0)) throw invalidArgument(`bad limit ${options.limit}`);
    const cf = this.family(family);
    const bounds = boundsOf(options); // Before acquiring anything: it may refuse the options.
    const reverse = options.reverse ?? false;
    const version = this.acquireVersion(cf);
    const children: InternalIterator[] = cf.memtablesNewestFirst().map((memtable) => memtable.iterator({ reverse }));
    for (const file of version.levels[0]!) children.push(new LevelIterator([file], this.tables, reverse));
    for (let level = 1; level < LEVELS; level++) {
      if (version.levels[level]!.length > 0) children.push(new LevelIterator(version.levels[level]!, this.tables, reverse));
    }
    const lsn = options.snapshot?.lsn ?? this.visibleLsn;
    return new EngineIterator(new MergingIterator(children, reverse), bounds, lsn, options.limit, () => this.releaseVersion(version));
  }

  // ---- stats and close ----

  /** One family's figures (what stats() lists for each), or undefined if there is no such family. */
  familyStats(name: string): FamilyStats | undefined {
    const family = this.families.get(name);
    return family && familyStats(family);
  }

  stats(): EngineStats {
    const c = this.counters;
    const cache = this.blockCache.stats;
    const lookups = cache.hits + cache.misses;
    return {
      lastLsn: this.lastLsn,
      families: [...this.families.values()].map(familyStats),
      bytesWritten: { user: c.bytesUser, wal: c.bytesWal, flush: c.bytesFlush, compaction: c.bytesCompaction },
      writeAmplification: c.bytesUser === 0 ? 0 : (c.bytesWal + c.bytesFlush + c.bytesCompaction) / c.bytesUser,
      flushes: c.flushes,
      compactions: c.compactions,
      trivialMoves: c.trivialMoves,
      stallMs: c.stallMs,
      slowdowns: c.slowdowns,
      writeBuffer: { usageBytes: this.activeMemtableBytes, capacityBytes: this.settings.writeBufferBytes, switches: c.writeBufferSwitches },
      blockCache: { hits: cache.hits, misses: cache.misses, hitRatio: lookups === 0 ? 0 : cache.hits / lookups, usageBytes: cache.usageBytes, capacityBytes: cache.capacityBytes },
      tableCache: { openFiles: this.tables.openFiles, opens: this.tables.opens },
    };
  }

  /**
   * Waits for queued writes and background work, then closes every file. Memtables are not
   * flushed: with the WAL off the caller's log holds what they had (flush first if needed).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.quiesce();
    this.closed = true;
    try {
      await this.closeFiles();
    } finally {
      await this.unlock();
    }
  }

  private checkOpen(): void {
    if (this.closed) this.checkWritable();
  }
}

function familyStats(family: ColumnFamily): FamilyStats {
  return {
    name: family.name,
    memtableBytes: family.memtableBytes,
    memtableEntries: family.memtableEntries,
    immutableMemtables: family.imm.length,
    levels: family.levels.map((files) => ({
      files: files.length,
      bytes: files.reduce((sum, file) => sum + file.sizeBytes, 0),
      entries: files.reduce((sum, file) => sum + file.entries, 0),
    })),
    flag: family.flag,
  };
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
