// The memtable: a skip list of entries in internal order (key ascending, LSN descending), plus
// what a flush needs to write the flush flag: the last tagged batch with items here.
//
// It keeps no object per entry. A memtable lives long enough for what it holds to be promoted
// to old space and scanned by every major GC; with a JS object per node, per entry and per key
// a bulk load of Reddit comments (34 families of 4 MiB memtables) spent 28% of its CPU in the
// GC, and the objects took about three times the bytes they were charged (measured: 2 million
// entries in 102 memtables charged 302 MiB held 760 MiB of heap and 250 MiB of Buffers; now
// 343 MiB of Buffers and typed arrays for 305 MiB charged, and inserts 4x faster). So its data
// lives in a few large typed arrays and Buffers:
//
//   arena      Buffers ("chunks") that `add` copies key then value into, each filled from the
//              front and never written again (so views stay valid); chunks grow from
//              ARENA_CHUNK_BYTES_MIN to ARENA_CHUNK_BYTES_MAX, and an entry larger than a
//              quarter of the next chunk gets a Buffer of its own. The caller's Buffers die young.
//   nodes      one 48-byte record per node, read through an Int32Array and a Float64Array
//              over the same memory, so a comparison touches one record, not ten arrays:
//
//                int32 [0] chunk  [1] offset  [2] key length  [3] value length
//                      [4] back link (level 0)  [5] first link in `links`  [6] key hash  [7] kind
//                f64   [4] key prefix  [5] LSN       (int32 slots 8 to 11)
//
//              The key prefix is its first PREFIX_BYTES as a number: most comparisons end on
//              it, without reading the arena. A node's `height` forward links sit together in
//              `links`, one shared Int32Array. Node 0 is the head sentinel: a link of 0 is none.
//   index      each key's newest node, open addressing over the key's hash in an Int32Array
//              (0 empty, at most half full). Point reads go through it instead of the list: a
//              search of the list touches ~20 nodes, a cache miss each, and a document read
//              does one per field family (measured with a list of objects: ~4 µs per lookup
//              across 34 memtables of 5,000 entries, against ~0.3 µs through a Map). It is
//              built on the first point read, so a memtable a bulk load fills and nobody reads
//              never hashes a key (a bulk-loaded comment's 47 items saved ~10 µs of event loop).
//   tails      the last node of each level. Bulk loads insert keys mostly in ascending order
//              within a family, so an entry that sorts after the last node is linked there in
//              O(height), without a search from the head; one that sorts among the last few
//              (a document's fields, whose numbers need not ascend) is searched for from the
//              tails, not from the head.
//
// The arena's chunks and the node records and links live in SharedArrayBuffers: a flush hands
// them to the worker as an image (`image()`, `Memtable.fromImage`), which walks the list and
// writes the table there, so the event loop neither encodes nor copies a flushed memtable.
// Reads build Entry objects on demand, whose key and value are views into the arena: no copy.
// NB: a view keeps its whole chunk alive; a caller that keeps a value for long should copy it.
// `sizeBytes` charges what is held, so a family's memtable budget bounds real memory: arena
// bytes used (with the chunk tails left behind), each node's record and links, the index's
// slots. Not charged: spare capacity of the records and links (they grow by half), the free
// tail of the current chunk, and the ~2 KiB an empty memtable starts with.
// Single-threaded: inserts and reads interleave only at awaits, so no locking is needed.

import type { Entry, EntryKind } from '../entry.js';
import type { InternalIterator } from '../iterator.js';
import { compareRanges, copyRange } from '../util/bytes.js';

const HEIGHT_MAX = 20;
/** Older versions a point read walks from a key's newest node before it searches the list instead. */
const VERSIONS_WALKED_MAX = 8;
const PREFIX_BYTES = 6;

const ARENA_CHUNK_BYTES_MIN = 4 * 1024;
const ARENA_CHUNK_BYTES_MAX = 256 * 1024; // At most 6% of a 4 MiB memtable left unused.
const NODES_INITIAL = 32;
const INDEX_SLOTS_INITIAL = 16;
/** Records and links grow by half (not double): spare capacity is memory the budget does not see. */
const GROWTH = 1.5;
const LINK_BYTES = 4;
const INDEX_SLOT_BYTES = 4;

// A node's record (see the top of this file): int32 and float64 fields, by index within it.
const NODE_BYTES = 48;
const NODE_INTS = NODE_BYTES / 4;
const NODE_FLOATS = NODE_BYTES / 8;
const CHUNK = 0;
const OFFSET = 1;
const KEY_LENGTH = 2;
const VALUE_LENGTH = 3;
const PREV = 4;
const LINKS = 5;
const HASH = 6;
const KIND = 7;
const PREFIX = 4; // float64
const LSN = 5; // float64; LSNs are integers below 2^53.

const EMPTY = Buffer.alloc(0);

/** The last tagged batch with items in a memtable: the future flush flag. */
export interface MemtableFlag {
  tag: number;
  lsnFirst: number;
  /** The largest LSN of that batch's items in this memtable. */
  lsnLast: number;
}

/**
 * A memtable as plain data for a flush job: its chunks, node records and links, all in shared
 * memory, so crossing to a worker copies nothing. REQUIRES: the memtable takes no more adds.
 */
export interface MemtableImage {
  readonly chunks: readonly Uint8Array[];
  readonly ints: Int32Array;
  readonly links: Int32Array;
  readonly count: number;
  /** The last node in order (level 0's tail). */
  readonly last: number;
}

export class Memtable {
  private readonly arena = new Arena();
  /**
   * Node records: `ints` and `floats` view the same memory. Invariant: node n's entry sits in
   * chunk ints[n * NODE_INTS + CHUNK] from OFFSET, key then value, and those bytes never change.
   */
  private ints = sharedInt32(NODES_INITIAL * NODE_INTS);
  private floats = new Float64Array(this.ints.buffer);
  /** Node n's link at level l is links[LINKS of n + l]; the head's HEIGHT_MAX come first. */
  private links = sharedInt32(HEIGHT_MAX + 2 * NODES_INITIAL);
  private linksUsed = HEIGHT_MAX;
  private readonly tails = new Int32Array(HEIGHT_MAX);
  /** A search's result: the node before the target at each level (reused, never allocated). */
  private readonly update = new Int32Array(HEIGHT_MAX);
  private height = 1;
  private random = 0x2545f491;
  /**
   * Invariant: once `indexed`, holds each key's newest node (and every node's record its key's
   * hash), and no more than half of its slots are used. Built on the first point read.
   */
  private index = new Int32Array(INDEX_SLOTS_INITIAL);
  private indexed = false;
  private keys = 0;
  count = 0;
  lsnMin = Number.POSITIVE_INFINITY;
  lsnMax = 0;
  flag: MemtableFlag | undefined;

  /** REQUIRES: no entry with the same key and LSN is present. */
  add(entry: Entry): void {
    const { key, value } = entry;
    this.addBytes(key, 0, key.length, value, 0, value.length, entry.lsn, entry.kind);
  }

  /**
   * Adds the entry whose key is keySource[keyStart, +keyLength) and value valueSource[valueStart,
   * +valueLength), copying both into the arena: no object is made. REQUIRES: as add.
   */
  addBytes(keySource: Buffer, keyStart: number, keyLength: number, valueSource: Buffer, valueStart: number, valueLength: number, lsn: number, kind: EntryKind): void {
    const node = this.count + 1;
    const height = this.randomHeight();
    if ((node + 1) * NODE_INTS > this.ints.length) this.growNodes();
    if (this.linksUsed + height > this.links.length) this.growLinks(height);
    const { arena } = this;
    arena.copy(keySource, keyStart, keyLength, valueSource, valueStart, valueLength);
    // From here on the key is read where it now lives.
    const key = arena.chunks[arena.lastChunk]!;
    const at = arena.lastOffset;
    const prefix = keyPrefix(key, at, keyLength);
    // The index (and the hash it needs) is built on the first point read: a memtable that a
    // bulk load fills and nobody reads never pays for it.
    const indexed = this.indexed;
    const hash = indexed ? hashKey(key, at, keyLength) : 0;
    this.writeRecord(node, keyLength, valueLength, lsn, kind, prefix, hash);
    this.linksUsed += height;
    this.link(node, key, at, keyLength, prefix, lsn, height);
    if (indexed) this.indexNewest(node, key, at, keyLength, hash, lsn);
    this.count = node;
    if (lsn < this.lsnMin) this.lsnMin = lsn;
    if (lsn > this.lsnMax) this.lsnMax = lsn;
  }

  /** Records that `lsn` belongs to the tagged batch (tag, lsnFirst): the flag moves forward. */
  noteTagged(tag: number, lsnFirst: number, lsn: number): void {
    const flag = this.flag;
    if (flag && flag.tag === tag && flag.lsnFirst === lsnFirst) flag.lsnLast = Math.max(flag.lsnLast, lsn);
    else this.flag = { tag, lsnFirst, lsnLast: lsn };
  }

  /** The newest version of `key` with LSN <= snapshotLsn, tombstones included. */
  get(key: Buffer, snapshotLsn: number): Entry | undefined {
    if (!this.indexed) this.buildIndex();
    const hash = hashKey(key, 0, key.length);
    let node = this.index[this.slotOf(key, 0, key.length, hash)]!;
    // Versions of a key are adjacent at level 0, newest first: the first at or below the
    // snapshot is the answer. An old snapshot behind many newer versions searches the list.
    for (let walked = 0; node !== 0 && walked < VERSIONS_WALKED_MAX; walked++, node = this.nextOf(node)) {
      if (walked > 0 && !this.holdsKey(node, key, 0, key.length, hash)) return undefined;
      if (this.lsnOf(node) <= snapshotLsn) return this.entryAt(node);
    }
    if (node === 0) return undefined;
    this.findPredecessors(key, 0, key.length, keyPrefix(key, 0, key.length), snapshotLsn);
    node = this.nextOf(this.update[0]!);
    return node !== 0 && this.holdsKey(node, key, 0, key.length, hash) ? this.entryAt(node) : undefined;
  }

  get empty(): boolean {
    return this.count === 0;
  }

  /** Bytes held, as charged against the memtable budget (see the top of this file). */
  get sizeBytes(): number {
    if (this.count === 0) return 0;
    const nodeBytes = this.count * NODE_BYTES + (this.linksUsed - HEIGHT_MAX) * LINK_BYTES;
    return this.arena.sizeBytes + nodeBytes + (this.index.length - INDEX_SLOTS_INITIAL) * INDEX_SLOT_BYTES;
  }

  iterator(options: { reverse?: boolean } = {}): InternalIterator {
    return new MemtableIterator(this, options.reverse ?? false);
  }

  /** Every entry in internal order (for flush). */
  *entries(): Generator<Entry> {
    for (let node = this.nextOf(0); node !== 0; node = this.nextOf(node)) yield this.entryAt(node);
  }

  /** This memtable as a flush job carries it (see MemtableImage): views, no copy. */
  image(): MemtableImage {
    return { chunks: this.arena.chunks, ints: this.ints, links: this.links, count: this.count, last: this.tails[0]! };
  }

  /** A memtable over an image, for reading only (a flush worker walks it). */
  static fromImage(image: MemtableImage): Memtable {
    const memtable = new Memtable();
    memtable.ints = image.ints;
    memtable.floats = new Float64Array(image.ints.buffer, image.ints.byteOffset, image.ints.length / 2);
    memtable.links = image.links;
    memtable.arena.chunks.length = 0;
    for (const chunk of image.chunks) memtable.arena.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    memtable.count = image.count;
    memtable.tails[0] = image.last;
    return memtable;
  }

  // ---- for MemtableIterator: nodes are numbers, 0 meaning none ----

  /** The first node with key >= `key`, or the first node. */
  firstAtOrAfter(key: Buffer | undefined): number {
    if (key === undefined) return this.nextOf(0);
    this.findPredecessors(key, 0, key.length, keyPrefix(key, 0, key.length), Number.MAX_SAFE_INTEGER);
    return this.nextOf(this.update[0]!);
  }

  /** The last node with key <= `key`, or the last node. */
  lastAtOrBefore(key: Buffer | undefined): number {
    if (key === undefined) return this.tails[0]!;
    this.findPredecessors(key, 0, key.length, keyPrefix(key, 0, key.length), Number.NEGATIVE_INFINITY); // Past every version of `key`.
    return this.update[0]!;
  }

  nextOf(node: number): number {
    return this.links[this.ints[node * NODE_INTS + LINKS]!]!;
  }

  prevOf(node: number): number {
    return this.ints[node * NODE_INTS + PREV]!;
  }

  /** A new Entry whose key and value are views into the arena. */
  entryAt(node: number): Entry {
    const { ints } = this;
    const at = node * NODE_INTS;
    const chunk = this.arena.chunks[ints[at + CHUNK]!]!;
    const keyStart = ints[at + OFFSET]!;
    const valueStart = keyStart + ints[at + KEY_LENGTH]!;
    return {
      key: chunk.subarray(keyStart, valueStart),
      lsn: this.lsnOf(node),
      kind: ints[at + KIND] as EntryKind,
      value: chunk.subarray(valueStart, valueStart + ints[at + VALUE_LENGTH]!),
    };
  }

  // ---- records and the skip list ----

  /** Fills in the record of the node whose bytes the arena copied last, links aside. */
  private writeRecord(node: number, keyLength: number, valueLength: number, lsn: number, kind: EntryKind, prefix: number, hash: number): void {
    const { ints, floats, arena } = this;
    const at = node * NODE_INTS;
    ints[at + CHUNK] = arena.lastChunk;
    ints[at + OFFSET] = arena.lastOffset;
    ints[at + KEY_LENGTH] = keyLength;
    ints[at + VALUE_LENGTH] = valueLength;
    ints[at + LINKS] = this.linksUsed;
    ints[at + HASH] = hash;
    ints[at + KIND] = kind;
    floats[node * NODE_FLOATS + PREFIX] = prefix;
    floats[node * NODE_FLOATS + LSN] = lsn;
  }

  /** Links `node` in at levels below `height`: at the tails if it sorts last, else after a search. */
  private link(node: number, key: Buffer, keyStart: number, keyLength: number, prefix: number, lsn: number, height: number): void {
    const { ints, links, tails, update } = this;
    const last = tails[0]!;
    // A level above the current height is empty: a search leaves the head as its predecessor.
    if (height > this.height) this.height = height;
    if (last === 0 || this.compareNode(last, key, keyStart, keyLength, prefix, lsn) < 0) update.set(tails);
    else this.findPredecessorsNearEnd(key, keyStart, keyLength, prefix, lsn);
    const start = ints[node * NODE_INTS + LINKS]!;
    for (let level = 0; level < height; level++) {
      const before = ints[update[level]! * NODE_INTS + LINKS]! + level;
      const after = links[before]!;
      links[start + level] = after;
      links[before] = node;
      if (after === 0) tails[level] = node;
    }
    const after = links[start]!;
    ints[node * NODE_INTS + PREV] = update[0]!;
    if (after !== 0) ints[after * NODE_INTS + PREV] = node;
  }

  /** Fills `update` with the last node before (key, lsn) in internal order at each level. */
  private findPredecessors(key: Buffer, keyStart: number, keyLength: number, prefix: number, lsn: number): void {
    const { update } = this;
    let node = 0;
    for (let level = this.height - 1; level >= 0; level--) {
      node = this.walkLevel(node, level, key, keyStart, keyLength, prefix, lsn);
      update[level] = node;
    }
  }

  /**
   * As findPredecessors, for a key likely to sort among the last nodes: at each level the search
   * starts from that level's tail when the tail sorts before the key. Valid because the node a
   * search reaches at level l + 1 sorts at or before tails[l + 1], which sorts at or before
   * tails[l]. A key before the top level's tail takes the search from the head.
   */
  private findPredecessorsNearEnd(key: Buffer, keyStart: number, keyLength: number, prefix: number, lsn: number): void {
    const { update, tails } = this;
    const top = this.height - 1;
    if (tails[top] === 0 || this.compareNode(tails[top]!, key, keyStart, keyLength, prefix, lsn) >= 0) {
      this.findPredecessors(key, keyStart, keyLength, prefix, lsn);
      return;
    }
    let node = tails[top]!;
    update[top] = node;
    let tailBefore = true; // Whether tails[level] sorts before the key, known for the level above.
    for (let level = top - 1; level >= 0; level--) {
      const tail = tails[level]!;
      if (tailBefore && tail !== node) {
        if (this.compareNode(tail, key, keyStart, keyLength, prefix, lsn) < 0) node = tail;
        else tailBefore = false;
      }
      node = this.walkLevel(node, level, key, keyStart, keyLength, prefix, lsn);
      update[level] = node;
    }
  }

  /** From `node`, forward along `level` to the last node before (key, lsn) in internal order. */
  private walkLevel(node: number, level: number, key: Buffer, keyStart: number, keyLength: number, prefix: number, lsn: number): number {
    const { ints, floats, links } = this;
    for (;;) {
      const next = links[ints[node * NODE_INTS + LINKS]! + level]!;
      if (next === 0) return node;
      const nextPrefix = floats[next * NODE_FLOATS + PREFIX]!;
      if (nextPrefix > prefix || (nextPrefix === prefix && this.compareNode(next, key, keyStart, keyLength, prefix, lsn) >= 0)) return node;
      node = next;
    }
  }

  /** Internal order of `node` against (key, lsn): negative if the node sorts first. */
  private compareNode(node: number, key: Buffer, keyStart: number, keyLength: number, prefix: number, lsn: number): number {
    const nodePrefix = this.floats[node * NODE_FLOATS + PREFIX]!;
    if (nodePrefix !== prefix) return nodePrefix - prefix;
    const at = node * NODE_INTS;
    const chunk = this.arena.chunks[this.ints[at + CHUNK]!]!;
    const byKey = compareRanges(chunk, this.ints[at + OFFSET]!, this.ints[at + KEY_LENGTH]!, key, keyStart, keyLength, PREFIX_BYTES);
    return byKey !== 0 ? byKey : lsn - this.lsnOf(node);
  }

  private lsnOf(node: number): number {
    return this.floats[node * NODE_FLOATS + LSN]!;
  }

  private randomHeight(): number {
    // xorshift32; a branching factor of 4 as in LevelDB.
    let height = 1;
    for (;;) {
      let x = this.random;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.random = x >>> 0;
      if (height >= HEIGHT_MAX || (this.random & 3) !== 0) return height;
      height++;
    }
  }

  // ---- the index of each key's newest node ----

  private indexNewest(node: number, key: Buffer, keyStart: number, keyLength: number, hash: number, lsn: number): void {
    const slot = this.slotOf(key, keyStart, keyLength, hash);
    const held = this.index[slot]!;
    if (held !== 0) {
      if (this.lsnOf(held) < lsn) this.index[slot] = node;
      return;
    }
    this.index[slot] = node;
    this.keys++;
    if (this.keys * 2 > this.index.length) this.growIndex();
  }

  /** The slot holding `key`'s newest node, or the empty slot where it would go (linear probing). */
  private slotOf(key: Buffer, keyStart: number, keyLength: number, hash: number): number {
    const { index } = this;
    const mask = index.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = index[slot]!;
      if (held === 0 || this.holdsKey(held, key, keyStart, keyLength, hash)) return slot;
    }
  }

  private holdsKey(node: number, key: Buffer, keyStart: number, keyLength: number, hash: number): boolean {
    const { ints } = this;
    const at = node * NODE_INTS;
    if (ints[at + HASH] !== hash || ints[at + KEY_LENGTH] !== keyLength) return false;
    return compareRanges(this.arena.chunks[ints[at + CHUNK]!]!, ints[at + OFFSET]!, keyLength, key, keyStart, keyLength) === 0;
  }

  /** Hashes every node's key and indexes each key's newest node (the first point read). */
  private buildIndex(): void {
    const { ints } = this;
    const { chunks } = this.arena;
    let slots = INDEX_SLOTS_INITIAL;
    while (slots < this.count * 2) slots *= 2;
    if (slots > this.index.length) this.index = new Int32Array(slots);
    for (let node = 1; node <= this.count; node++) {
      const at = node * NODE_INTS;
      const chunk = chunks[ints[at + CHUNK]!]!;
      const keyStart = ints[at + OFFSET]!;
      const keyLength = ints[at + KEY_LENGTH]!;
      const hash = hashKey(chunk, keyStart, keyLength);
      ints[at + HASH] = hash;
      this.indexNewest(node, chunk, keyStart, keyLength, hash, this.lsnOf(node));
    }
    this.indexed = true;
  }

  private growIndex(): void {
    const index = new Int32Array(this.index.length * 2);
    const mask = index.length - 1;
    for (const node of this.index) {
      if (node === 0) continue;
      let slot = this.ints[node * NODE_INTS + HASH]! & mask;
      while (index[slot] !== 0) slot = (slot + 1) & mask;
      index[slot] = node;
    }
    this.index = index;
  }

  // ---- growth ----

  private growNodes(): void {
    this.ints = grown(this.ints, Math.ceil(this.ints.length / NODE_INTS * GROWTH) * NODE_INTS);
    this.floats = new Float64Array(this.ints.buffer);
  }

  private growLinks(height: number): void {
    this.links = grown(this.links, Math.max(Math.ceil(this.links.length * GROWTH), this.linksUsed + height));
  }
}

/**
 * Chunks that entries are copied into, each filled from the front. Invariant: bytes once
 * written are never written again while the memtable lives, so views into them stay valid.
 */
class Arena {
  /** Chunk 0 is empty: an entry of no bytes needs no chunk. */
  readonly chunks: Buffer[] = [EMPTY];
  /** Where the last copy went. */
  lastChunk = 0;
  lastOffset = 0;
  /** Bytes copied in, plus the tails of chunks left behind. */
  sizeBytes = 0;
  private current = 0;
  private used = 0;

  copy(keySource: Buffer, keyStart: number, keyLength: number, valueSource: Buffer, valueStart: number, valueLength: number): void {
    const bytes = keyLength + valueLength;
    this.place(bytes);
    const chunk = this.chunks[this.lastChunk]!;
    copyRange(keySource, keyStart, keyLength, chunk, this.lastOffset);
    copyRange(valueSource, valueStart, valueLength, chunk, this.lastOffset + keyLength);
    this.sizeBytes += bytes;
  }

  private place(bytes: number): void {
    if (this.used + bytes <= this.chunks[this.current]!.length) {
      this.lastChunk = this.current;
      this.lastOffset = this.used;
      this.used += bytes;
      return;
    }
    // Chunks grow with the arena, so a small memtable holds little unused memory.
    const chunkBytes = Math.min(ARENA_CHUNK_BYTES_MAX, Math.max(ARENA_CHUNK_BYTES_MIN, this.sizeBytes));
    const large = bytes > chunkBytes / 4; // Gets a Buffer of its own; the current chunk stays.
    this.chunks.push(Buffer.from(new SharedArrayBuffer(large ? bytes : chunkBytes)));
    this.lastChunk = this.chunks.length - 1;
    this.lastOffset = 0;
    if (large) return;
    this.sizeBytes += this.chunks[this.current]!.length - this.used;
    this.current = this.lastChunk;
    this.used = bytes;
  }
}

/** The first PREFIX_BYTES key bytes as a number (missing bytes count as zero). */
function keyPrefix(key: Buffer, start: number, length: number): number {
  let prefix = 0;
  for (let i = 0; i < PREFIX_BYTES; i++) prefix = prefix * 256 + (i < length ? key[start + i]! : 0);
  return prefix;
}

/** FNV-1a over the bytes, then murmur3's finalizer: FNV alone mixes the low bits (the slot) poorly. */
function hashKey(key: Buffer, start: number, length: number): number {
  let hash = 0x811c9dc5 | 0;
  for (let i = start; i < start + length; i++) hash = Math.imul(hash ^ key[i]!, 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash | 0; // As an Int32Array stores it.
}

/** A copy of `array` with room for `length` elements. */
function grown(array: Int32Array, length: number): Int32Array {
  const next = sharedInt32(length);
  next.set(array);
  return next;
}

/** Zeroed int32s in shared memory (a flush worker reads them where they are). */
function sharedInt32(length: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(length * 4));
}

/**
 * Walks level 0 of the skip list: forward by next links, in reverse by back links. The entry is
 * built once per position (merging iterators ask for it many times).
 */
class MemtableIterator implements InternalIterator {
  private node = 0;
  private current: Entry | undefined;
  constructor(
    private readonly table: Memtable,
    private readonly reverse: boolean,
  ) {}
  async seek(key?: Buffer): Promise<void> {
    this.node = this.reverse ? this.table.lastAtOrBefore(key) : this.table.firstAtOrAfter(key);
    this.current = undefined;
  }
  valid(): boolean {
    return this.node !== 0;
  }
  entry(): Entry {
    return (this.current ??= this.table.entryAt(this.node));
  }
  async next(): Promise<void> {
    this.nextSync();
  }
  nextSync(): boolean {
    this.node = this.reverse ? this.table.prevOf(this.node) : this.table.nextOf(this.node);
    this.current = undefined;
    return true;
  }
  close(): void {
    this.node = 0;
    this.current = undefined;
  }
}
