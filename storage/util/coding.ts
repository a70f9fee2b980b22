// Byte coding helpers shared by every on-disk format: varints, fixed-width little-endian
// integers, and length-prefixed slices. Readers return the next offset so parsing is a chain.

import { corruption } from '../errors.js';
import { copyRange } from './bytes.js';

/** Largest integer a varint or fixed64 field may hold here: JavaScript numbers are exact to 2^53. */
export const INTEGER_MAX = Number.MAX_SAFE_INTEGER;

/** A growable byte buffer for encoders. */
export class ByteWriter {
  private buffer: Buffer;
  length = 0;

  /**
   * `unpooled`: never take memory from Node's shared allocation pool, so the result's
   * ArrayBuffer is this writer's alone and may be transferred to a worker.
   */
  constructor(
    capacityBytes = 256,
    private readonly unpooled = false,
  ) {
    this.buffer = this.allocate(capacityBytes);
  }

  private allocate(capacityBytes: number): Buffer {
    return this.unpooled ? Buffer.allocUnsafeSlow(capacityBytes) : Buffer.allocUnsafe(capacityBytes);
  }

  private reserve(extraBytes: number): void {
    if (this.length + extraBytes <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < this.length + extraBytes) capacity *= 2;
    const next = this.allocate(capacity);
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }

  byte(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  varint(value: number): this {
    if (value >= 0 && value < 0x80 && this.length < this.buffer.length && (value | 0) === value) {
      this.buffer[this.length++] = value; // Most varints are one byte: field numbers, small lengths.
      return this;
    }
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
    this.reserve(8);
    this.length = writeVarint(this.buffer, this.length, value);
    return this;
  }

  fixed32(value: number): this {
    this.reserve(4);
    this.buffer.writeUInt32LE(value >>> 0, this.length);
    this.length += 4;
    return this;
  }

  fixed64(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`fixed64 out of range: ${value}`);
    this.reserve(8);
    this.buffer.writeUInt32LE(value % 0x100000000, this.length);
    this.buffer.writeUInt32LE(Math.floor(value / 0x100000000), this.length + 4);
    this.length += 8;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
    return this;
  }

  /** A varint length followed by the bytes. */
  slice(data: Uint8Array): this {
    return this.varint(data.length).bytes(data);
  }

  /** As slice, of source[start, +length): no view is made. */
  sliceOf(source: Uint8Array, start: number, length: number): this {
    this.varint(length);
    this.reserve(length);
    copyRange(source, start, length, this.buffer, this.length);
    this.length += length;
    return this;
  }

  string(text: string): this {
    return this.slice(Buffer.from(text, 'utf8'));
  }

  /** The bytes written so far (a view; copy it if the writer is reused). */
  view(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }
}

/**
 * Writes `value` as a varint (7 bits a byte, low first) at target[at] and returns the offset
 * after it: every varint the code writes goes through here. REQUIRES: a safe non-negative
 * integer and room for 8 bytes.
 */
export function writeVarint(target: Uint8Array, at: number, value: number): number {
  let offset = at;
  let rest = value;
  while (rest >= 0x80) {
    target[offset++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  target[offset++] = rest;
  return offset;
}

/** A cursor over bytes read from disk; every read checks bounds and throws CORRUPTION. */
export class ByteReader {
  offset: number;

  constructor(
    readonly data: Buffer,
    offset = 0,
    private readonly end = data.length,
    private readonly what = 'record',
  ) {
    this.offset = offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(bytes: number): void {
    if (this.offset + bytes > this.end) throw corruption(`${this.what}: truncated at byte ${this.offset}`);
  }

  byte(): number {
    this.need(1);
    return this.data[this.offset++]!;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    throw corruption(`${this.what}: varint too long at byte ${this.offset}`);
  }

  fixed32(): number {
    this.need(4);
    const value = this.data.readUInt32LE(this.offset);
    this.offset += 4;
    return value;
  }

  fixed64(): number {
    this.need(8);
    const lo = this.data.readUInt32LE(this.offset);
    const hi = this.data.readUInt32LE(this.offset + 4);
    this.offset += 8;
    if (hi > 0x1fffff) throw corruption(`${this.what}: 64-bit value beyond 2^53`);
    return hi * 0x100000000 + lo;
  }

  bytes(length: number): Buffer {
    this.need(length);
    const out = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** Passes `length` bytes; returns where they start (for a caller that copies them itself). */
  skip(length: number): number {
    this.need(length);
    const at = this.offset;
    this.offset += length;
    return at;
  }

  slice(): Buffer {
    return this.bytes(this.varint());
  }

  string(): string {
    return this.slice().toString('utf8');
  }
}

export function writeFixed64(target: Buffer, offset: number, value: number): void {
  target.writeUInt32LE(value % 0x100000000, offset);
  target.writeUInt32LE(Math.floor(value / 0x100000000), offset + 4);
}

export function readFixed64(source: Buffer, offset: number): number {
  return source.readUInt32LE(offset + 4) * 0x100000000 + source.readUInt32LE(offset);
}
