// Reading blocks: trailer verification, decoding a whole block into entries, and binary
// searches over decoded entries. The encoding is the one block-builder.ts writes (FORMAT.md).

import { EntryKind, compareInternal, type Entry } from '../entry.js';
import { corruption } from '../errors.js';
import { ByteReader } from '../util/coding.js';
import { BLOCK_TRAILER_SIZE_BYTES, BlockType, blockChecksum } from './format.js';

/**
 * Checks the trailer of `raw` (block bytes + trailer, as read from disk) and returns the block
 * bytes. The crc is checked before the type byte, so a flipped type bit reads as a bad crc.
 */
export function checkBlock(raw: Buffer, size: number, what: string): Buffer {
  if (raw.length !== size + BLOCK_TRAILER_SIZE_BYTES) {
    throw corruption(`${what}: read ${raw.length} of ${size + BLOCK_TRAILER_SIZE_BYTES} bytes`);
  }
  const contents = raw.subarray(0, size);
  const type = raw[size]!;
  if (raw.readUInt32LE(size + 1) !== blockChecksum(contents, type)) throw corruption(`${what}: checksum mismatch`);
  if (type !== BlockType.NONE) throw corruption(`${what}: unknown block type ${type}`);
  return contents;
}

/** Reads and bounds-checks the restart array; returns the offsets and where entries end. */
function readRestarts(data: Buffer, what: string): { restarts: Uint32Array; entriesEnd: number } {
  if (data.length < 4) throw corruption(`${what}: block of ${data.length} bytes has no restart count`);
  const count = data.readUInt32LE(data.length - 4);
  if (count > (data.length - 4) / 4) throw corruption(`${what}: restart count ${count} overruns the block`);
  const entriesEnd = data.length - 4 - 4 * count;
  const restarts = new Uint32Array(count);
  for (let i = 0; i < count; i++) restarts[i] = data.readUInt32LE(entriesEnd + 4 * i);
  return { restarts, entriesEnd };
}

/**
 * Decodes every entry of a block. Keys are whole Buffers (restart keys are views of `data`,
 * the others fresh copies); values are views of `data` (empty ones one shared empty Buffer). Restart points must sit exactly on
 * entries with no shared prefix, so a block that disagrees with its own restart array fails.
 */
export function decodeBlock(data: Buffer, what: string): Entry[] {
  const { restarts, entriesEnd } = readRestarts(data, what);
  const reader = new ByteReader(data, 0, entriesEnd, what);
  const entries: Entry[] = [];
  let lastKey = data.subarray(0, 0);
  let nextRestart = 0;
  while (reader.remaining > 0) {
    const start = reader.offset;
    const shared = reader.varint();
    const nonShared = reader.varint();
    const valueLength = reader.varint();
    const lsn = reader.varint();
    const kind = reader.byte();
    if (start === restarts[nextRestart]) {
      if (shared !== 0) throw corruption(`${what}: restart entry at byte ${start} shares a prefix`);
      nextRestart++;
    } else if (nextRestart === 0) {
      throw corruption(`${what}: first entry is not a restart point`);
    }
    if (shared > lastKey.length) throw corruption(`${what}: entry at byte ${start} shares more than the last key`);
    if (kind !== EntryKind.PUT && kind !== EntryKind.DELETE) throw corruption(`${what}: unknown entry kind ${kind}`);
    let key: Buffer;
    if (shared === 0) key = reader.bytes(nonShared);
    else {
      // The shared prefix and the delta copied straight into the key: no view of the delta.
      const deltaAt = reader.skip(nonShared);
      key = Buffer.allocUnsafe(shared + nonShared);
      lastKey.copy(key, 0, 0, shared);
      data.copy(key, shared, deltaAt, deltaAt + nonShared);
    }
    // An empty value (an index entry's, a tombstone's) is one shared empty buffer.
    entries.push({ key, lsn, kind, value: valueLength === 0 ? EMPTY : reader.bytes(valueLength) });
    lastKey = key;
  }
  if (nextRestart !== restarts.length) throw corruption(`${what}: restart array does not match the entries`);
  return entries;
}

const EMPTY = Buffer.alloc(0);

/** First index whose (key, lsn) is at or after (key, lsn) in internal order; length if none. */
export function lowerBoundInternal(entries: readonly Entry[], key: Buffer, lsn: number): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const entry = entries[middle]!;
    if (compareInternal(entry.key, entry.lsn, key, lsn) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** First index whose user key is >= `key` (`orEqual`) or > `key` (not `orEqual`). */
function boundKey(entries: readonly Entry[], key: Buffer, orEqual: boolean): number {
  const limit = orEqual ? 0 : 1;
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (Buffer.compare(entries[middle]!.key, key) < limit) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** First index whose user key is >= `key`; length if none. */
export function lowerBoundKey(entries: readonly Entry[], key: Buffer): number {
  return boundKey(entries, key, true);
}

/** First index whose user key is > `key`; length if none. */
export function upperBoundKey(entries: readonly Entry[], key: Buffer): number {
  return boundKey(entries, key, false);
}
