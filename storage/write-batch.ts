// A write batch: puts and deletes over several column families, applied atomically with
// consecutive LSNs (item i gets LSN first + i). Its encoding is the engine WAL's record payload.
//
// It keeps no object per item. A document write is ~50 items, and a bulk load of Reddit
// comments spent a fifth of its CPU making and collecting an object, a key Buffer and a value
// view per item. So the items are columns: a family name, a kind, the key as a range of the
// batch's own key arena, and the value as a range of a Buffer the caller owns (usually the
// binlog record the batch is translated from, so values are never copied before the memtable).
// A key is either copied in whole (put, delete) or built in place (beginKey, keyBytes, keyByte,
// keyVarint, then putValue or deleteKey).
// NB: the batch holds references to the callers' value Buffers; they must not change until the
// engine has applied it.

import { invalidArgument } from './errors.js';
import { EntryKind } from './entry.js';
import { BATCH_ITEMS_MAX, KEY_SIZE_BYTES_MAX, VALUE_SIZE_BYTES_MAX } from './limits.js';
import { copyRange } from './util/bytes.js';
import { writeVarint } from './util/coding.js';

const EMPTY = Buffer.alloc(0);
const ITEMS_INITIAL = 64;
const KEY_ARENA_BYTES_INITIAL = 4 * 1024;
/** Accounting per item beyond its key and value bytes, as memtables and WALs see it. */
const ITEM_OVERHEAD_BYTES = 16;

export class WriteBatch {
  length = 0;
  sizeBytes = 0;
  /** Per item: the family's name. */
  readonly families: string[] = [];
  /** Per item: the value's Buffer (EMPTY for deletes). */
  readonly valueSources: Buffer[] = [];
  kinds = new Uint8Array(ITEMS_INITIAL);
  keyStarts = new Int32Array(ITEMS_INITIAL);
  keyLengths = new Int32Array(ITEMS_INITIAL);
  valueStarts = new Int32Array(ITEMS_INITIAL);
  valueLengths = new Int32Array(ITEMS_INITIAL);
  /** Every item's key, back to back; item i's at keyStarts[i]. May be replaced as it grows. */
  keyArena = Buffer.allocUnsafe(KEY_ARENA_BYTES_INITIAL);
  private keyUsed = 0;
  /** Where the key being built began, or -1. */
  private keyOpen = -1;

  /** Empties the batch for reuse, keeping its arrays (and dropping its references to values). */
  reset(): void {
    this.length = 0;
    this.sizeBytes = 0;
    this.families.length = 0;
    this.valueSources.length = 0;
    this.keyUsed = 0;
    this.keyOpen = -1;
  }

  /** Bytes its arrays hold, whatever it holds now. */
  get capacityBytes(): number {
    return this.keyArena.length + this.kinds.length * 17;
  }

  put(family: string, key: Uint8Array, value: Buffer): this {
    this.beginKey().keyBytes(key);
    return this.putValue(family, value, 0, value.length);
  }

  delete(family: string, key: Uint8Array): this {
    this.beginKey().keyBytes(key);
    return this.deleteKey(family);
  }

  /** Starts building a key in place. */
  beginKey(): this {
    this.keyOpen = this.keyUsed;
    return this;
  }

  keyBytes(source: Uint8Array, start = 0, end = source.length): this {
    const length = end - start;
    this.reserveKey(length);
    copyRange(source, start, length, this.keyArena, this.keyUsed);
    this.keyUsed += length;
    return this;
  }

  keyByte(value: number): this {
    this.reserveKey(1);
    this.keyArena[this.keyUsed++] = value;
    return this;
  }

  keyVarint(value: number): this {
    this.reserveKey(8);
    this.keyUsed = writeVarint(this.keyArena, this.keyUsed, value);
    return this;
  }

  /** Ends the key being built as a put of source[start, end). */
  putValue(family: string, source: Buffer, start: number, end: number): this {
    if (end - start > VALUE_SIZE_BYTES_MAX) throw invalidArgument(`value of ${end - start} bytes exceeds ${VALUE_SIZE_BYTES_MAX}`);
    return this.close(family, EntryKind.PUT, source, start, end - start);
  }

  /** Ends the key being built as a delete. */
  deleteKey(family: string): this {
    return this.close(family, EntryKind.DELETE, EMPTY, 0, 0);
  }

  private close(family: string, kind: EntryKind, source: Buffer, start: number, length: number): this {
    const keyStart = this.keyOpen;
    if (keyStart < 0) throw invalidArgument('no key was begun');
    this.keyOpen = -1;
    const keyLength = this.keyUsed - keyStart;
    if (keyLength > KEY_SIZE_BYTES_MAX) throw invalidArgument(`key of ${keyLength} bytes exceeds ${KEY_SIZE_BYTES_MAX}`);
    if (this.length >= BATCH_ITEMS_MAX) throw invalidArgument(`a batch holds at most ${BATCH_ITEMS_MAX} items`);
    const i = this.length++;
    if (i === this.kinds.length) this.growItems();
    this.families.push(family);
    this.valueSources.push(source);
    this.kinds[i] = kind;
    this.keyStarts[i] = keyStart;
    this.keyLengths[i] = keyLength;
    this.valueStarts[i] = start;
    this.valueLengths[i] = length;
    this.sizeBytes += keyLength + length + ITEM_OVERHEAD_BYTES;
    return this;
  }

  /** Item i's key as a view of the arena (tests, the WAL); valid until the next key is added. */
  key(i: number): Buffer {
    return this.keyArena.subarray(this.keyStarts[i]!, this.keyStarts[i]! + this.keyLengths[i]!);
  }

  /** Item i's value as a view of its source. */
  value(i: number): Buffer {
    return this.valueSources[i]!.subarray(this.valueStarts[i]!, this.valueStarts[i]! + this.valueLengths[i]!);
  }

  private reserveKey(bytes: number): void {
    if (this.keyUsed + bytes <= this.keyArena.length) return;
    let capacity = this.keyArena.length * 2;
    while (capacity < this.keyUsed + bytes) capacity *= 2;
    const next = Buffer.allocUnsafe(capacity);
    this.keyArena.copy(next, 0, 0, this.keyUsed);
    this.keyArena = next;
  }

  private growItems(): void {
    const capacity = this.kinds.length * 2;
    this.kinds = grown(this.kinds, new Uint8Array(capacity));
    this.keyStarts = grown(this.keyStarts, new Int32Array(capacity));
    this.keyLengths = grown(this.keyLengths, new Int32Array(capacity));
    this.valueStarts = grown(this.valueStarts, new Int32Array(capacity));
    this.valueLengths = grown(this.valueLengths, new Int32Array(capacity));
  }
}

function grown<T extends Uint8Array | Int32Array>(old: T, next: T): T {
  next.set(old);
  return next;
}
