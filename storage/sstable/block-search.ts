// Reading a data block where it lies: checking its structure once, when it is read from disk,
// and answering point lookups by searching its bytes, as LevelDB's block iterator does. The
// block cache holds these checked bytes, so what it charges is what it holds (a cache of
// decoded entries held ~16x what it charged: an object, a key and a value view per entry).
// The encoding is block-builder.ts's (FORMAT.md).

import { EntryKind, type Entry } from '../entry.js';
import { corruption } from '../errors.js';
import { compareRanges, copyRange } from '../util/bytes.js';

/** Where a block's restart array begins and how many restarts it holds; checked at load. */
function restartsOf(data: Buffer): { count: number; at: number } {
  const count = data.readUInt32LE(data.length - 4);
  return { count, at: data.length - 4 - 4 * count };
}

/** A varint at `offset` in data (checked to lie within the block by checkStructure). */
function varintAt(data: Buffer, offset: number): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; ; i++) {
    const b = data[offset + i]!;
    result += (b & 0x7f) * scale;
    if (b < 0x80) return result;
    scale *= 0x80;
  }
}

/** Bytes of the varint at `offset`. */
function varintBytes(data: Buffer, offset: number): number {
  let bytes = 1;
  while (data[offset + bytes - 1]! >= 0x80) bytes++;
  return bytes;
}

/** One entry's header, read into a reused record: no object per entry. */
class Cursor {
  shared = 0;
  nonShared = 0;
  valueLength = 0;
  lsn = 0;
  kind = 0;
  /** Where the key delta starts. */
  delta = 0;

  read(data: Buffer, offset: number): void {
    let at = offset;
    this.shared = varintAt(data, at);
    at += varintBytes(data, at);
    this.nonShared = varintAt(data, at);
    at += varintBytes(data, at);
    this.valueLength = varintAt(data, at);
    at += varintBytes(data, at);
    this.lsn = varintAt(data, at);
    at += varintBytes(data, at);
    this.kind = data[at]!;
    this.delta = at + 1;
  }

  get end(): number {
    return this.delta + this.nonShared + this.valueLength;
  }
}

const cursor = new Cursor();
/** The key being rebuilt while walking from a restart point; grows as needed. */
let scratch = Buffer.allocUnsafe(256);

/**
 * Checks a block's structure (restart array in bounds and on entries with no shared prefix,
 * varints and lengths within the block, kinds 0 or 1) and that its last entry is (lastKey,
 * lastLsn); throws CORRUPTION naming `what`. Allocates nothing per entry.
 */
export function checkStructure(data: Buffer, lastKey: Buffer, lastLsn: number, what: string): void {
  if (data.length < 4) throw corruption(`${what}: block of ${data.length} bytes has no restart count`);
  const { count, at: entriesEnd } = restartsOf(data);
  if (count > (data.length - 4) / 4) throw corruption(`${what}: restart count ${count} overruns the block`);
  let offset = 0;
  let keyLength = 0;
  let nextRestart = 0;
  while (offset < entriesEnd) {
    readChecked(data, offset, entriesEnd, what);
    if (nextRestart < count && offset === data.readUInt32LE(entriesEnd + 4 * nextRestart)) {
      if (cursor.shared !== 0) throw corruption(`${what}: restart entry at byte ${offset} shares a prefix`);
      nextRestart++;
    } else if (nextRestart === 0) {
      throw corruption(`${what}: first entry is not a restart point`);
    }
    if (cursor.shared > keyLength) throw corruption(`${what}: entry at byte ${offset} shares more than the last key`);
    if (cursor.kind !== EntryKind.PUT && cursor.kind !== EntryKind.DELETE) throw corruption(`${what}: unknown entry kind ${cursor.kind}`);
    if (cursor.end > entriesEnd) throw corruption(`${what}: entry at byte ${offset} overruns the block`);
    keyLength = rebuildKey(data);
    offset = cursor.end;
  }
  if (nextRestart !== count || count === 0) throw corruption(`${what}: restart array does not match the entries`);
  if (cursor.lsn !== lastLsn || compareRange(scratch, 0, keyLength, lastKey) !== 0) {
    throw corruption(`${what}: last entry differs from the index`);
  }
}

/** cursor.read with every varint and the kind byte checked to lie before `end`. */
function readChecked(data: Buffer, offset: number, end: number, what: string): void {
  let at = offset;
  for (let field = 0; field < 4; field++) {
    const start = at;
    while (at < end && data[at]! >= 0x80 && at - start < 8) at++;
    if (at >= end || data[at]! >= 0x80) throw corruption(`${what}: truncated at byte ${at}`);
    at++;
  }
  if (at >= end) throw corruption(`${what}: truncated at byte ${at}`);
  cursor.read(data, offset);
}

/** Puts the cursor's key into `scratch` (its shared prefix is already there); returns its length. */
function rebuildKey(data: Buffer): number {
  const length = cursor.shared + cursor.nonShared;
  if (length > scratch.length) {
    const grown = Buffer.allocUnsafe(Math.max(length, scratch.length * 2));
    scratch.copy(grown, 0, 0, cursor.shared);
    scratch = grown;
  }
  copyRange(data, cursor.delta, cursor.nonShared, scratch, cursor.shared);
  return length;
}

/** Bytewise order of a[aStart, aStart + aLength) against key (negative: a sorts first). */
function compareRange(a: Buffer, aStart: number, aLength: number, key: Buffer): number {
  return compareRanges(a, aStart, aLength, key, 0, key.length);
}

/** Internal order of the restart entry at `offset` against (key, lsn): key ascending, LSN descending. */
function compareRestart(data: Buffer, offset: number, key: Buffer, lsn: number): number {
  cursor.read(data, offset);
  const byKey = compareRange(data, cursor.delta, cursor.nonShared, key);
  return byKey !== 0 ? byKey : lsn - cursor.lsn;
}

/** The offset of the last restart whose entry sorts before (key, lsn): an answer is at or after it. */
function seek(data: Buffer, key: Buffer, lsn: number): number {
  const { count, at: entriesEnd } = restartsOf(data);
  let low = 0;
  let high = count - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (compareRestart(data, data.readUInt32LE(entriesEnd + 4 * middle), key, lsn) < 0) low = middle;
    else high = middle - 1;
  }
  return data.readUInt32LE(entriesEnd + 4 * low);
}

/** The entry the cursor is on, its key given, its value a view of `data`. */
function cursorEntry(data: Buffer, key: Buffer): Entry {
  const valueStart = cursor.delta + cursor.nonShared;
  return { key, lsn: cursor.lsn, kind: cursor.kind as EntryKind, value: data.subarray(valueStart, valueStart + cursor.valueLength) };
}

/**
 * The newest version of exactly `key` with LSN <= lsn in a checked block, or undefined. The
 * entry's value is a view of `data`; its key is `key` itself.
 */
export function searchBlock(data: Buffer, key: Buffer, lsn: number): Entry | undefined {
  const entriesEnd = restartsOf(data).at;
  let offset = seek(data, key, lsn);
  while (offset < entriesEnd) {
    cursor.read(data, offset);
    const keyLength = rebuildKey(data);
    const byKey = compareRange(scratch, 0, keyLength, key);
    if (byKey > 0) return undefined; // Past the key: it is not in this block.
    if (byKey === 0 && cursor.lsn <= lsn) {
      return cursorEntry(data, key);
    }
    offset = cursor.end;
  }
  return undefined;
}

/**
 * Several keys answered from one checked block in one pass (a document's fields in a family
 * are adjacent keys): keys[order[from]] .. keys[order[to - 1]] sorted ascending, equal keys
 * adjacent. One seek to the first, then a walk: a wanted key the walk passes is not in this
 * block; one it meets gets its newest version with LSN <= lsn, as searchBlock would give, in
 * entries[order[p]] with resolved[order[p]] set. No object is made but the entries answered.
 */
export function searchBlockSorted(data: Buffer, keys: readonly Buffer[], order: readonly number[], from: number, to: number, lsn: number, entries: (Entry | undefined)[], resolved: Uint8Array): void {
  const entriesEnd = restartsOf(data).at;
  let offset = seek(data, keys[order[from]!]!, lsn);
  let p = from;
  while (offset < entriesEnd) {
    cursor.read(data, offset);
    const keyLength = rebuildKey(data);
    let byKey = compareRange(scratch, 0, keyLength, keys[order[p]!]!);
    while (byKey > 0) {
      if (++p === to) return; // Past every wanted key.
      byKey = compareRange(scratch, 0, keyLength, keys[order[p]!]!);
    }
    if (byKey === 0 && cursor.lsn <= lsn) {
      const wanted = keys[order[p]!]!;
      const entry = cursorEntry(data, wanted);
      // Equal keys asked twice share the answer; older versions of it are walked past.
      do {
        entries[order[p]!] = entry;
        resolved[order[p]!] = 1;
      } while (++p < to && compareRanges(keys[order[p]!]!, 0, keys[order[p]!]!.length, wanted, 0, wanted.length) === 0);
      if (p === to) return;
    }
    offset = cursor.end;
  }
}
