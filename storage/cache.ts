// Least-recently-used caches bounded by a total charge. The block cache (decoded SSTable blocks,
// charged in bytes) is one instance; a table cache of open files (charged 1 each) is another.

import assert from 'node:assert/strict';

export interface LruCacheOptions<K, V> {
  /** Called whenever an entry leaves the cache: evicted, replaced, deleted or cleared. */
  onEvict?: (key: K, value: V) => void;
}

interface Slot<K, V> {
  readonly key: K;
  readonly value: V;
  readonly charge: number;
  /** Toward the least recently used end. */
  older: Slot<K, V> | undefined;
  newer: Slot<K, V> | undefined;
}

/**
 * A map plus a doubly linked recency list: every operation is O(1). (A Map alone, re-inserting
 * on each hit, is not: V8 leaves deleted entries as holes that iteration from the oldest end
 * must skip, and eviction measured at a fifth of the time of random reads.)
 */
export class LruCache<K, V> {
  private readonly slots = new Map<K, Slot<K, V>>();
  private oldest: Slot<K, V> | undefined;
  private newest: Slot<K, V> | undefined;
  private usageTotal = 0;
  private readonly onEvict: ((key: K, value: V) => void) | undefined;

  constructor(
    readonly capacity: number,
    options: LruCacheOptions<K, V> = {},
  ) {
    assert(capacity >= 0, 'cache capacity must not be negative');
    this.onEvict = options.onEvict;
  }

  get size(): number {
    return this.slots.size;
  }

  /** Sum of the charges of the entries held. */
  get usage(): number {
    return this.usageTotal;
  }

  get(key: K): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    this.unlink(slot);
    this.append(slot);
    return slot.value;
  }

  has(key: K): boolean {
    return this.slots.has(key);
  }

  /** An entry charged more than the whole capacity is not kept (and is reported evicted). */
  set(key: K, value: V, charge = 1): void {
    assert(charge >= 0, 'cache charge must not be negative');
    this.delete(key);
    if (charge > this.capacity) {
      this.onEvict?.(key, value);
      return;
    }
    const slot: Slot<K, V> = { key, value, charge, older: undefined, newer: undefined };
    this.slots.set(key, slot);
    this.append(slot);
    this.usageTotal += charge;
    while (this.usageTotal > this.capacity) this.remove(this.oldest!);
  }

  delete(key: K): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.remove(slot);
    return true;
  }

  clear(): void {
    while (this.oldest) this.remove(this.oldest);
  }

  /** Keys from least to most recently used. */
  *keys(): IterableIterator<K> {
    for (let slot = this.oldest; slot; slot = slot.newer) yield slot.key;
  }

  private append(slot: Slot<K, V>): void {
    slot.older = this.newest;
    slot.newer = undefined;
    if (this.newest) this.newest.newer = slot;
    else this.oldest = slot;
    this.newest = slot;
  }

  private unlink(slot: Slot<K, V>): void {
    if (slot.older) slot.older.newer = slot.newer;
    else this.oldest = slot.newer;
    if (slot.newer) slot.newer.older = slot.older;
    else this.newest = slot.older;
  }

  private remove(slot: Slot<K, V>): void {
    this.slots.delete(slot.key);
    this.unlink(slot);
    this.usageTotal -= slot.charge;
    this.onEvict?.(slot.key, slot.value);
  }
}

export interface BlockCacheStats {
  hits: number;
  misses: number;
  usageBytes: number;
  capacityBytes: number;
}

interface CachedBlock {
  readonly fileNumber: number;
  readonly block: Buffer;
}

/**
 * Per cached block beyond its bytes: the LRU slot and map entry, the CachedBlock, the Buffer's
 * own object and its backing store's bookkeeping, the key in keysByFile. An estimate on the
 * high side; test/storage/cache.test.ts holds the charge against the memory retained.
 */
export const BLOCK_CACHE_SLOT_OVERHEAD_BYTES = 320;

/**
 * Checked SSTable data blocks, as bytes, keyed by (file number, block offset), bounded in
 * bytes. A block is searched where it lies (sstable/block-search.ts), so the charge (its
 * length plus BLOCK_CACHE_SLOT_OVERHEAD_BYTES) is what it holds.
 */
export class BlockCache {
  private readonly lru: LruCache<number, CachedBlock>;
  /** The cache keys of each file's blocks, so a deleted file's blocks leave at once. */
  private readonly keysByFile = new Map<number, Set<number>>();
  private hits = 0;
  private misses = 0;

  constructor(capacityBytes: number) {
    this.lru = new LruCache(capacityBytes, { onEvict: (key, cached) => this.forget(key, cached.fileNumber) });
  }

  get stats(): BlockCacheStats {
    return { hits: this.hits, misses: this.misses, usageBytes: this.lru.usage, capacityBytes: this.lru.capacity };
  }

  get(fileNumber: number, offset: number): Buffer | undefined {
    const cached = this.lru.get(cacheKey(fileNumber, offset));
    if (cached === undefined) this.misses++;
    else this.hits++;
    return cached?.block;
  }

  /** REQUIRES: `block` is a Buffer of its own (not a view into a larger read: that would be retained whole). */
  set(fileNumber: number, offset: number, block: Buffer): void {
    const key = cacheKey(fileNumber, offset);
    this.lru.set(key, { fileNumber, block }, block.buffer.byteLength + BLOCK_CACHE_SLOT_OVERHEAD_BYTES);
    // A block that outweighs the whole capacity is not kept, so there is nothing to index.
    if (!this.lru.has(key)) return;
    let keys = this.keysByFile.get(fileNumber);
    if (keys === undefined) this.keysByFile.set(fileNumber, (keys = new Set()));
    keys.add(key);
  }

  /** Drops every block of a file (called when the file is deleted). */
  evictFile(fileNumber: number): void {
    const keys = this.keysByFile.get(fileNumber);
    if (keys === undefined) return;
    for (const key of [...keys]) this.lru.delete(key);
    this.keysByFile.delete(fileNumber);
  }

  private forget(key: number, fileNumber: number): void {
    const keys = this.keysByFile.get(fileNumber);
    if (keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) this.keysByFile.delete(fileNumber);
  }
}

/** One number, not a string made per lookup: tables are far below 4 GiB and file numbers below 2^21. */
function cacheKey(fileNumber: number, offset: number): number {
  return fileNumber * 0x100000000 + offset;
}
