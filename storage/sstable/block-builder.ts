// Builds one block: entries with prefix-compressed keys, a restart point (a full key) every
// `restartInterval` entries, then the restart array. Data, index and properties blocks all use
// this encoding; block.ts decodes it and FORMAT.md has the grammar.

import assert from 'node:assert/strict';

const EMPTY_KEY = Buffer.alloc(0);
/** Room for the four varints and the kind byte of one entry header. */
const ENTRY_HEADER_BYTES_MAX = 5 + 5 + 5 + 8 + 1;

export class BlockBuilder {
  private buffer: Buffer;
  private length = 0;
  private readonly restarts: number[] = [];
  private count = 0;
  private lastKey: Buffer = EMPTY_KEY;

  constructor(
    private readonly restartInterval: number,
    capacityBytes = 4096,
  ) {
    assert(Number.isInteger(restartInterval) && restartInterval >= 1, 'restart interval must be >= 1');
    this.buffer = Buffer.allocUnsafe(capacityBytes);
  }

  get entryCount(): number {
    return this.count;
  }

  /** Bytes `finish` would return now. */
  get estimatedSizeBytes(): number {
    return this.length + 4 * this.restarts.length + 4;
  }

  /**
   * REQUIRES: keys arrive in the block's order (the table builder asserts it), and `key` stays
   * unchanged until the next `add` or `reset`: it is kept by reference for prefix compression.
   */
  add(key: Buffer, lsn: number, kind: number, value: Uint8Array): void {
    let shared = 0;
    if (this.count % this.restartInterval === 0) this.restarts.push(this.length);
    else shared = sharedPrefixLength(this.lastKey, key);
    const nonShared = key.length - shared;
    this.reserve(ENTRY_HEADER_BYTES_MAX + nonShared + value.length);
    const buffer = this.buffer;
    let position = putVarint(buffer, this.length, shared);
    position = putVarint(buffer, position, nonShared);
    position = putVarint(buffer, position, value.length);
    position = putVarint(buffer, position, lsn);
    buffer[position++] = kind;
    position += key.copy(buffer, position, shared);
    buffer.set(value, position);
    this.length = position + value.length;
    this.lastKey = key;
    this.count++;
  }

  /** Appends the restart array; the returned view is valid until the next `add` or `reset`. */
  finish(): Buffer {
    this.reserve(4 * this.restarts.length + 4);
    for (const restart of this.restarts) this.length = this.buffer.writeUInt32LE(restart, this.length);
    this.length = this.buffer.writeUInt32LE(this.restarts.length, this.length);
    return this.buffer.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
    this.restarts.length = 0;
    this.count = 0;
    this.lastKey = EMPTY_KEY;
  }

  private reserve(extraBytes: number): void {
    if (this.length + extraBytes <= this.buffer.length) return;
    let capacity = Math.max(this.buffer.length * 2, 64);
    while (capacity < this.length + extraBytes) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity);
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
}

export function sharedPrefixLength(a: Buffer, b: Buffer): number {
  const limit = Math.min(a.length, b.length);
  let i = 0;
  while (i < limit && a[i] === b[i]) i++;
  return i;
}

/** Writes a varint at `position` and returns the position after it; same bytes as ByteWriter. */
function putVarint(target: Buffer, position: number, value: number): number {
  let p = position;
  let v = value;
  // Bit operators work on 32 bits, so the high part of a large value goes by division.
  while (v > 0x7fffffff) {
    target[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  while (v >= 0x80) {
    target[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  target[p++] = v;
  return p;
}
