// A write batch: puts and deletes over several column families, applied atomically with
// consecutive LSNs (item i gets LSN first + i). Its encoding is the engine WAL's record payload.

import { corruption, invalidArgument } from './errors.js';
import { EntryKind } from './entry.js';
import { BATCH_ITEMS_MAX, KEY_SIZE_BYTES_MAX, VALUE_SIZE_BYTES_MAX } from './limits.js';
import { ByteReader, ByteWriter } from './util/coding.js';

export interface BatchItem {
  readonly family: string;
  readonly kind: EntryKind;
  readonly key: Buffer;
  readonly value: Buffer;
}

const EMPTY = Buffer.alloc(0);

export class WriteBatch {
  readonly items: BatchItem[] = [];
  sizeBytes = 0;

  put(family: string, key: Buffer, value: Buffer): this {
    if (value.length > VALUE_SIZE_BYTES_MAX) throw invalidArgument(`value of ${value.length} bytes exceeds ${VALUE_SIZE_BYTES_MAX}`);
    return this.add({ family, kind: EntryKind.PUT, key, value });
  }

  delete(family: string, key: Buffer): this {
    return this.add({ family, kind: EntryKind.DELETE, key, value: EMPTY });
  }

  private add(item: BatchItem): this {
    if (item.key.length > KEY_SIZE_BYTES_MAX) throw invalidArgument(`key of ${item.key.length} bytes exceeds ${KEY_SIZE_BYTES_MAX}`);
    if (this.items.length >= BATCH_ITEMS_MAX) throw invalidArgument(`a batch holds at most ${BATCH_ITEMS_MAX} items`);
    this.items.push(item);
    this.sizeBytes += item.key.length + item.value.length + 16;
    return this;
  }

  get length(): number {
    return this.items.length;
  }
}

/** A batch as the engine WAL stores it: families by id, so a later rename cannot confuse replay. */
export interface LoggedBatch {
  lsnFirst: number;
  /** Absent when the batch carried no tag. */
  tag: number | undefined;
  items: { familyId: number; kind: EntryKind; key: Buffer; value: Buffer }[];
}

export function encodeLoggedBatch(writer: ByteWriter, batch: LoggedBatch): void {
  writer.varint(batch.lsnFirst).varint(batch.tag === undefined ? 0 : batch.tag + 1).varint(batch.items.length);
  for (const item of batch.items) writer.varint(item.familyId).byte(item.kind).slice(item.key).slice(item.value);
}

export function decodeLoggedBatch(payload: Buffer): LoggedBatch {
  const r = new ByteReader(payload, 0, payload.length, 'WAL record');
  const lsnFirst = r.varint();
  const tagPlusOne = r.varint();
  const count = r.varint();
  const items: LoggedBatch['items'] = [];
  for (let i = 0; i < count; i++) {
    const familyId = r.varint();
    const kind = r.byte();
    if (kind !== EntryKind.PUT && kind !== EntryKind.DELETE) throw corruption(`WAL record: unknown item kind ${kind}`);
    items.push({ familyId, kind, key: r.slice(), value: r.slice() });
  }
  if (r.remaining !== 0) throw corruption('WAL record: trailing bytes');
  return { lsnFirst, tag: tagPlusOne === 0 ? undefined : tagPlusOne - 1, items };
}
