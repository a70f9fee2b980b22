// A bloom filter over the user keys of one SSTable: k probes by double hashing from one
// 32-bit murmur3 hash of the key, encoded as the bit array followed by one byte holding k.
// The hash, its seed and the probe sequence are frozen on disk (FORMAT.md).

import assert from 'node:assert/strict';
import { BLOOM_BITS_PER_KEY } from '../limits.js';

/** Seeds the bloom hash; frozen on disk. */
export const BLOOM_HASH_SEED = 0xbc9f1d34;
/** Probe counts above this are reserved for other encodings, which match every key. */
export const BLOOM_PROBES_MAX = 30;
/** Small filters get at least this many bits, so a table with few keys still filters well. */
const BLOOM_BITS_MIN = 64;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function mixWord(word: number): number {
  const k = Math.imul(word, C1);
  return Math.imul((k << 15) | (k >>> 17), C2);
}

/** MurmurHash3 x86 32-bit of `data`; unsigned. */
export function murmur3(data: Uint8Array, seed: number): number {
  const length = data.length;
  const tail = length & ~3;
  let h = seed | 0;
  for (let i = 0; i < tail; i += 4) {
    h ^= mixWord(data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = length & 3;
  let k = 0;
  if (rest === 3) k ^= data[tail + 2]! << 16;
  if (rest >= 2) k ^= data[tail + 1]! << 8;
  if (rest >= 1) h ^= mixWord(k ^ data[tail]!);
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function bloomHash(key: Uint8Array): number {
  return murmur3(key, BLOOM_HASH_SEED);
}

/** k = round(bitsPerKey * ln 2), the count that minimises false positives, clamped to 1..30. */
export function bloomProbeCount(bitsPerKey: number): number {
  return Math.min(BLOOM_PROBES_MAX, Math.max(1, Math.round(bitsPerKey * Math.LN2)));
}

/** Collects key hashes (4 bytes a key, not the keys) until the filter is built. */
export class BloomBuilder {
  private hashes = new Uint32Array(1024);
  private count = 0;

  constructor(private readonly bitsPerKey = BLOOM_BITS_PER_KEY) {
    assert(bitsPerKey > 0, 'bloom bits per key must be positive');
  }

  get keyCount(): number {
    return this.count;
  }

  /** REQUIRES: each distinct key once (a repeat only wastes bits). */
  addKey(key: Uint8Array): void {
    if (this.count === this.hashes.length) {
      const next = new Uint32Array(this.hashes.length * 2);
      next.set(this.hashes);
      this.hashes = next;
    }
    this.hashes[this.count++] = bloomHash(key);
  }

  finish(): Buffer {
    return buildBloomFilter(this.hashes.subarray(0, this.count), this.bitsPerKey);
  }
}

export function buildBloomFilter(hashes: Uint32Array, bitsPerKey: number): Buffer {
  const probes = bloomProbeCount(bitsPerKey);
  const byteCount = Math.ceil(Math.max(BLOOM_BITS_MIN, Math.ceil(hashes.length * bitsPerKey)) / 8);
  const bitCount = byteCount * 8;
  const filter = Buffer.alloc(byteCount + 1);
  for (const hash of hashes) {
    let h = hash;
    // Double hashing: the rotated hash is the stride, so one hash yields k probe positions.
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < probes; j++) {
      const bit = h % bitCount;
      filter[bit >>> 3] |= 1 << (bit & 7);
      h = (h + delta) >>> 0;
    }
  }
  filter[byteCount] = probes;
  return filter;
}

/** False means `key` was certainly not added; true means it may have been. */
export function mayContain(filter: Buffer, key: Uint8Array): boolean {
  return mayContainHash(filter, bloomHash(key));
}

/** mayContain for a key whose bloomHash is `hash` (a lookup in many tables hashes it once). */
export function mayContainHash(filter: Buffer, hash: number): boolean {
  const byteCount = filter.length - 1;
  if (byteCount < 1) return true;
  const probes = filter[byteCount]!;
  if (probes < 1 || probes > BLOOM_PROBES_MAX) return true;
  const bitCount = byteCount * 8;
  let h = hash;
  const delta = ((h >>> 17) | (h << 15)) >>> 0;
  for (let j = 0; j < probes; j++) {
    const bit = h % bitCount;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    h = (h + delta) >>> 0;
  }
  return true;
}

/** Whether a filter read from disk has a shape this version writes (a bits part and 1..30 probes). */
export function isWellFormedFilter(filter: Buffer): boolean {
  return filter.length >= 2 && filter[filter.length - 1]! >= 1 && filter[filter.length - 1]! <= BLOOM_PROBES_MAX;
}
