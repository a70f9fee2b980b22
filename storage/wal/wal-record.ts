// The payload of one engine WAL record: one write batch with its first LSN and tag, families
// by id. Layout in storage/wal/FORMAT.md.

import { EntryKind } from '../entry.js';
import { corruption } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/coding.js';

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
