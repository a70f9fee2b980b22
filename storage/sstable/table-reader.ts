// Reads one SSTable: the footer, filter, properties and index are loaded and checked at open;
// data blocks are read on demand, checked once, and kept as bytes in the shared block cache.
// A point lookup searches a cached block where it lies (block-search.ts) and, when the block is
// cached, answers without a promise (getCached); an iterator decodes the block it stands on.
// Any bad byte surfaces as a CORRUPTION StorageError naming the file and offset. The layout is
// described in FORMAT.md.

import assert from 'node:assert/strict';
import type { BlockCache } from '../cache.js';
import { compareInternal, type Entry } from '../entry.js';
import { corruption } from '../errors.js';
import type { File } from '../file-system.js';
import type { InternalIterator } from '../iterator.js';
import { checkBlock, decodeBlock, lowerBoundInternal, lowerBoundKey, upperBoundKey } from './block.js';
import { checkStructure, searchBlock, searchBlockSorted } from './block-search.js';
import { isWellFormedFilter, mayContain, mayContainHash } from './bloom.js';
import {
  BLOCK_TRAILER_SIZE_BYTES,
  FOOTER_SIZE_BYTES,
  decodeFooter,
  decodeHandle,
  type BlockHandle,
  type Footer,
} from './format.js';
import { decodeProperties, type TableProperties } from './properties.js';

export type { TableProperties } from './properties.js';

/** getCached's answer when the block it needs is not in the cache. */
export const NOT_CACHED = Symbol('not cached');

/** The decoded index: entry i holds the last (key, lsn) of data block i; handles[i] locates it. */
interface TableIndex {
  readonly entries: Entry[];
  readonly handles: BlockHandle[];
}

export class TableReader {
  /** Block loads in flight, so concurrent readers of one block share one read. */
  private readonly loading = new Map<number, Promise<Buffer>>();
  private closed = false;

  private constructor(
    private readonly file: File,
    readonly fileNumber: number,
    private readonly cache: BlockCache,
    readonly properties: TableProperties,
    private readonly filter: Buffer,
    private readonly index: TableIndex,
  ) {}

  /** On failure the file stays open: the caller owns it until open succeeds. */
  static async open(file: File, fileNumber: number, cache: BlockCache): Promise<TableReader> {
    const what = `table ${fileNumber}`;
    const fileSizeBytes = file.size();
    const footer = await readFooter(file, fileSizeBytes, what);
    const [filter, propertiesBytes, indexBytes] = await Promise.all([
      readBlock(file, footer.filter, what),
      readBlock(file, footer.properties, what),
      readBlock(file, footer.index, what),
    ]);
    if (!isWellFormedFilter(filter)) throw corruption(`${what}: filter block at offset ${footer.filter.offset} is malformed`);
    const properties = decodeProperties(propertiesBytes, `${what} properties block at offset ${footer.properties.offset}`);
    checkProperties(properties, footer, fileSizeBytes, what);
    const index = decodeIndex(indexBytes, footer, what);
    return new TableReader(file, fileNumber, cache, properties, filter, index);
  }

  /** Whether the bloom filter admits `key`; false means the table certainly lacks it. */
  mayContain(key: Buffer): boolean {
    return mayContain(this.filter, key);
  }

  /** The newest version of exactly `key` with lsn <= snapshotLsn (maybe a DELETE), if any. */
  async get(key: Buffer, snapshotLsn: number): Promise<Entry | undefined> {
    if (!this.mayContain(key)) return undefined;
    // The first block whose last entry is at or after (key, snapshotLsn) holds the answer, also
    // when the key's newer versions fill earlier blocks: their last entries sort before it.
    const blockIndex = lowerBoundInternal(this.index.entries, key, snapshotLsn);
    if (blockIndex === this.blockCount) return undefined;
    return searchBlock(await this.readDataBlock(blockIndex), key, snapshotLsn);
  }

  /** The data block that holds `key`'s answer at snapshotLsn, or -1 when the table certainly lacks it. */
  locate(key: Buffer, snapshotLsn: number): number {
    if (!this.mayContain(key)) return -1;
    const blockIndex = lowerBoundInternal(this.index.entries, key, snapshotLsn);
    return blockIndex === this.blockCount ? -1 : blockIndex;
  }

  /** As get, from the cache only: NOT_CACHED when the block that would answer is not cached. */
  getCached(key: Buffer, snapshotLsn: number): Entry | undefined | typeof NOT_CACHED {
    if (!this.mayContain(key)) return undefined;
    const blockIndex = lowerBoundInternal(this.index.entries, key, snapshotLsn);
    if (blockIndex === this.blockCount) return undefined;
    const block = this.cache.get(this.fileNumber, this.index.handles[blockIndex]!.offset);
    return block === undefined ? NOT_CACHED : searchBlock(block, key, snapshotLsn);
  }

  /**
   * getCached for keys[order[from]] .. keys[order[to - 1]], sorted ascending, from this table's
   * cached blocks: the keys the bloom filter admits, each data block found once and searched
   * once for all its keys (searchBlockSorted). Sets entries and resolved for the keys it
   * answers (a DELETE is an answer). False if a block it needs is not cached: then what it set
   * is still right, and the caller asks the rest elsewhere.
   */
  getManyCached(keys: readonly Buffer[], order: readonly number[], from: number, to: number, lsn: number, entries: (Entry | undefined)[], resolved: Uint8Array, admitted: number[], hashes?: Uint32Array): boolean {
    admitted.length = 0;
    for (let p = from; p < to; p++) {
      const i = order[p]!;
      if (hashes === undefined ? this.mayContain(keys[i]!) : mayContainHash(this.filter, hashes[i]!)) admitted.push(i);
    }
    const { entries: index } = this.index;
    let start = 0;
    while (start < admitted.length) {
      const blockIndex = lowerBoundInternal(index, keys[admitted[start]!]!, lsn);
      if (blockIndex === this.blockCount) return true; // Past the table's last key.
      const last = index[blockIndex]!;
      let end = start + 1;
      while (end < admitted.length && compareInternal(keys[admitted[end]!]!, lsn, last.key, last.lsn) <= 0) end++;
      const block = this.cache.get(this.fileNumber, this.index.handles[blockIndex]!.offset);
      if (block === undefined) return false;
      searchBlockSorted(block, keys, admitted, start, end, lsn, entries, resolved);
      start = end;
    }
    return true;
  }

  iterator(options: { reverse?: boolean } = {}): InternalIterator {
    return new TableIterator(this, options.reverse ?? false);
  }

  /** Closes the file. Cached blocks stay: they are keyed by file number and remain valid. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }

  get blockCount(): number {
    return this.index.handles.length;
  }

  /** The index entries: the last (key, lsn) of each data block, in order. */
  get indexEntries(): readonly Entry[] {
    return this.index.entries;
  }

  /**
   * The entries of data block `blockIndex`, from the cache or from disk. With `readaheadBytes`,
   * a miss reads the run of blocks around it in the walk's direction (up to that many bytes) in
   * one call and caches them all: a scan then costs one read per run, not one per block.
   */
  readDataBlock(blockIndex: number, readaheadBytes = 0, reverse = false): Promise<Buffer> {
    const handle = this.index.handles[blockIndex]!;
    const cached = this.cache.get(this.fileNumber, handle.offset);
    if (cached !== undefined) return Promise.resolve(cached);
    let pending = this.loading.get(handle.offset);
    if (pending === undefined) {
      const [first, last] = this.runAround(blockIndex, readaheadBytes, reverse);
      pending = this.loadDataBlocks(first, last, blockIndex).finally(() => this.loading.delete(handle.offset));
      this.loading.set(handle.offset, pending);
    }
    return pending;
  }

  /** The blocks to read with `blockIndex`: consecutive, within `bytes`, in the walk's direction. */
  private runAround(blockIndex: number, bytes: number, reverse: boolean): [number, number] {
    const handles = this.index.handles;
    const spanBytes = (a: number, b: number): number => handles[b]!.offset + handles[b]!.size + BLOCK_TRAILER_SIZE_BYTES - handles[a]!.offset;
    let first = blockIndex;
    let last = blockIndex;
    if (reverse) while (first > 0 && spanBytes(first - 1, last) <= bytes) first--;
    else while (last + 1 < handles.length && spanBytes(first, last + 1) <= bytes) last++;
    return [first, last];
  }

  private async loadDataBlocks(first: number, last: number, wanted: number): Promise<Buffer> {
    assert(!this.closed, 'TableReader used after close');
    const handles = this.index.handles;
    const start = handles[first]!.offset;
    const end = handles[last]!.offset + handles[last]!.size + BLOCK_TRAILER_SIZE_BYTES;
    const bytes = await this.file.read(start, end - start);
    let result: Buffer | undefined;
    for (let blockIndex = first; blockIndex <= last; blockIndex++) {
      const handle = handles[blockIndex]!;
      if (blockIndex !== wanted && this.cache.get(this.fileNumber, handle.offset) !== undefined) continue;
      const raw = bytes.subarray(handle.offset - start, handle.offset - start + handle.size + BLOCK_TRAILER_SIZE_BYTES);
      const block = this.checkDataBlock(blockIndex, raw);
      if (blockIndex === wanted) result = block;
    }
    return result!;
  }

  /** Checks one data block's bytes and caches a copy of its own (the read may span many blocks). */
  private checkDataBlock(blockIndex: number, raw: Buffer): Buffer {
    const handle = this.index.handles[blockIndex]!;
    const what = `table ${this.fileNumber} data block at offset ${handle.offset}`;
    const checked = checkBlock(raw, handle.size, what);
    // The index names the block's last entry; a block that disagrees is not the one indexed.
    const indexed = this.index.entries[blockIndex]!;
    checkStructure(checked, indexed.key, indexed.lsn, what);
    const block = Buffer.allocUnsafeSlow(checked.length);
    checked.copy(block);
    this.cache.set(this.fileNumber, handle.offset, block);
    return block;
  }

  /** The decoded entries of a checked block (iterators). */
  decodeDataBlock(blockIndex: number, block: Buffer): Entry[] {
    return decodeBlock(block, `table ${this.fileNumber} data block at offset ${this.index.handles[blockIndex]!.offset}`);
  }
}

async function readFooter(file: File, fileSizeBytes: number, what: string): Promise<Footer> {
  if (fileSizeBytes < FOOTER_SIZE_BYTES) throw corruption(`${what}: ${fileSizeBytes} bytes is too short for a table`);
  const footerOffset = fileSizeBytes - FOOTER_SIZE_BYTES;
  const footer = decodeFooter(await file.read(footerOffset, FOOTER_SIZE_BYTES), `${what} footer at offset ${footerOffset}`);
  // The blocks after the data run filter, properties, index, each ending where the next starts.
  const { filter, properties, index } = footer;
  const tiled =
    filter.offset + filter.size + BLOCK_TRAILER_SIZE_BYTES === properties.offset &&
    properties.offset + properties.size + BLOCK_TRAILER_SIZE_BYTES === index.offset &&
    index.offset + index.size + BLOCK_TRAILER_SIZE_BYTES === footerOffset;
  if (!tiled) throw corruption(`${what} footer at offset ${footerOffset}: block handles out of range`);
  return footer;
}

/** Reads a block and its trailer, checks the trailer and returns the block bytes. */
async function readBlock(file: File, handle: BlockHandle, what: string): Promise<Buffer> {
  const where = `${what} block at offset ${handle.offset}`;
  return checkBlock(await file.read(handle.offset, handle.size + BLOCK_TRAILER_SIZE_BYTES), handle.size, where);
}

function checkProperties(properties: TableProperties, footer: Footer, fileSizeBytes: number, what: string): void {
  const where = `${what} properties block at offset ${footer.properties.offset}`;
  if (properties.fileSizeBytes !== fileSizeBytes) {
    throw corruption(`${where}: file is ${fileSizeBytes} bytes, properties say ${properties.fileSizeBytes}`);
  }
  if (properties.dataSizeBytes !== footer.filter.offset) throw corruption(`${where}: data size disagrees with the footer`);
  if (properties.formatVersion !== footer.formatVersion) throw corruption(`${where}: format version disagrees with the footer`);
}

/** Decodes the index and checks that its handles tile the data region exactly, in order. */
function decodeIndex(data: Buffer, footer: Footer, what: string): TableIndex {
  const where = `${what} index block at offset ${footer.index.offset}`;
  const entries = decodeBlock(data, where);
  const handles: BlockHandle[] = [];
  let expectedOffset = 0;
  for (const entry of entries) {
    const handle = decodeHandle(entry.value, where);
    if (handle.offset !== expectedOffset) throw corruption(`${where}: data block at offset ${handle.offset} out of place`);
    expectedOffset = handle.offset + handle.size + BLOCK_TRAILER_SIZE_BYTES;
    handles.push(handle);
  }
  if (expectedOffset !== footer.filter.offset) throw corruption(`${where}: data blocks do not reach the filter block`);
  return { entries, handles };
}

const NO_ENTRIES: Entry[] = [];

/** Walks a table's entries in one direction, one decoded block at a time. */
/** Bytes an iterator reads at once when it walks past the cache (flushes and compactions too). */
const ITERATOR_READAHEAD_BYTES = 256 * 1024;

class TableIterator implements InternalIterator {
  private entries: Entry[] = NO_ENTRIES;
  private blockIndex = -1;
  private position = -1;
  private closed = false;

  constructor(
    private readonly table: TableReader,
    private readonly reverse: boolean,
  ) {}

  async seek(key?: Buffer): Promise<void> {
    assert(!this.closed, 'seek on a closed iterator');
    if (this.reverse) await this.seekReverse(key);
    else await this.seekForward(key);
  }

  valid(): boolean {
    return this.position >= 0 && this.position < this.entries.length;
  }

  entry(): Entry {
    assert(this.valid(), 'entry() on an invalid iterator');
    return this.entries[this.position]!;
  }

  async next(): Promise<void> {
    assert(this.valid(), 'next() on an invalid iterator');
    if (this.reverse) {
      this.position--;
      if (this.position < 0 && (await this.load(this.blockIndex - 1))) this.position = this.entries.length - 1;
    } else {
      this.position++;
      if (this.position >= this.entries.length && (await this.load(this.blockIndex + 1))) this.position = 0;
    }
  }

  nextSync(): boolean {
    assert(this.valid(), 'nextSync() on an invalid iterator');
    // Within the decoded block; its end needs the next block, which may need a read.
    if (this.reverse ? this.position === 0 : this.position + 1 >= this.entries.length) return false;
    this.position += this.reverse ? -1 : 1;
    return true;
  }

  close(): void {
    this.closed = true;
    this.entries = NO_ENTRIES;
    this.position = -1;
  }

  /** The first block whose last key is >= key holds the first entry with key >= key. */
  private async seekForward(key: Buffer | undefined): Promise<void> {
    const blockIndex = key === undefined ? 0 : lowerBoundKey(this.table.indexEntries, key);
    if (!(await this.load(blockIndex))) return;
    this.position = key === undefined ? 0 : lowerBoundKey(this.entries, key);
  }

  /** The last entry with key <= key is in the first block whose last key is > key, or before. */
  private async seekReverse(key: Buffer | undefined): Promise<void> {
    const after = key === undefined ? this.table.blockCount : upperBoundKey(this.table.indexEntries, key);
    const blockIndex = Math.min(after, this.table.blockCount - 1);
    if (!(await this.load(blockIndex))) return;
    this.position = key === undefined ? this.entries.length - 1 : upperBoundKey(this.entries, key) - 1;
    if (this.position < 0 && (await this.load(blockIndex - 1))) this.position = this.entries.length - 1;
  }

  /** Makes block `blockIndex` current, or leaves the iterator invalid when there is none. */
  private async load(blockIndex: number): Promise<boolean> {
    this.entries = NO_ENTRIES;
    this.position = -1;
    if (blockIndex < 0 || blockIndex >= this.table.blockCount) return false;
    const block = await this.table.readDataBlock(blockIndex, ITERATOR_READAHEAD_BYTES, this.reverse);
    if (this.closed) return false;
    this.entries = this.table.decodeDataBlock(blockIndex, block);
    this.blockIndex = blockIndex;
    return true;
  }
}
