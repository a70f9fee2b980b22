// The properties block of an SSTable: facts about the table stored as a block of named values
// (sorted names; numbers as fixed64, keys as raw bytes). Unknown names are ignored on read, so
// a later version may add properties without a format change.

import { EntryKind } from '../entry.js';
import { corruption } from '../errors.js';
import { readFixed64, writeFixed64 } from '../util/coding.js';
import { BlockBuilder } from './block-builder.js';
import { decodeBlock } from './block.js';

export interface TableProperties {
  readonly entries: number;
  readonly distinctKeys: number;
  readonly deletions: number;
  /** Bytes of the data blocks with their trailers: the offset where the filter block starts. */
  readonly dataSizeBytes: number;
  /** User keys; empty when the table has no entries. */
  readonly smallestKey: Buffer;
  readonly largestKey: Buffer;
  /** Zero when the table has no entries. */
  readonly smallestLsn: number;
  readonly largestLsn: number;
  /** The whole file, footer included. */
  readonly fileSizeBytes: number;
  readonly formatVersion: number;
}

type NumberName = Exclude<keyof TableProperties, 'smallestKey' | 'largestKey'>;

/** Names on disk (frozen) of the numeric properties. */
const NUMBER_NAMES: Record<NumberName, string> = {
  entries: 'entry-count',
  distinctKeys: 'distinct-key-count',
  deletions: 'deletion-count',
  dataSizeBytes: 'data-size-bytes',
  smallestLsn: 'smallest-lsn',
  largestLsn: 'largest-lsn',
  fileSizeBytes: 'file-size-bytes',
  formatVersion: 'format-version',
};
const SMALLEST_KEY = 'smallest-key';
const LARGEST_KEY = 'largest-key';

/**
 * Numbers are fixed64, so the block's size does not depend on its values: the writer sizes
 * the block before it knows `fileSizeBytes`, which counts the block itself.
 */
export function encodeProperties(properties: TableProperties): Buffer {
  const named: Array<[Buffer, Buffer]> = [
    [Buffer.from(SMALLEST_KEY), properties.smallestKey],
    [Buffer.from(LARGEST_KEY), properties.largestKey],
  ];
  for (const [field, name] of Object.entries(NUMBER_NAMES) as Array<[NumberName, string]>) {
    const value = Buffer.alloc(8);
    writeFixed64(value, 0, properties[field]);
    named.push([Buffer.from(name), value]);
  }
  named.sort((a, b) => Buffer.compare(a[0], b[0]));
  const block = new BlockBuilder(1, 512);
  for (const [name, value] of named) block.add(name, 0, EntryKind.PUT, value);
  return Buffer.from(block.finish());
}

export function decodeProperties(data: Buffer, what: string): TableProperties {
  const byName = new Map<string, Buffer>();
  for (const entry of decodeBlock(data, what)) byName.set(entry.key.toString('latin1'), entry.value);
  const required = (name: string): Buffer => {
    const value = byName.get(name);
    if (value === undefined) throw corruption(`${what}: property ${name} is missing`);
    return value;
  };
  const numbers = {} as Record<NumberName, number>;
  for (const [field, name] of Object.entries(NUMBER_NAMES) as Array<[NumberName, string]>) {
    const value = required(name);
    if (value.length !== 8) throw corruption(`${what}: property ${name} is ${value.length} bytes, not 8`);
    if (value.readUInt32LE(4) > 0x1fffff) throw corruption(`${what}: property ${name} is beyond 2^53`);
    numbers[field] = readFixed64(value, 0);
  }
  return { ...numbers, smallestKey: Buffer.from(required(SMALLEST_KEY)), largestKey: Buffer.from(required(LARGEST_KEY)) };
}
