// Translation: a transaction record and its TSN in, KV items out, always the same items in the
// same order. Recovery depends on this: it rebuilds every item's LSN as the record's first LSN
// plus the item's index, so the items' count and order must never depend on anything else.
//
// Per write operation, in order: one catalog item per new field, the header in the meta
// family, one item per field written, one delete per field removed.

import { ByteWriter, WriteBatch } from '../../storage/index.js';
import { encodeHeader } from './header.js';
import { CATALOG_FAMILY, collectionKey, familyName, fieldAssignmentKey, fieldKey, metaFamily, metaKey } from './keys.js';
import type { DropCollectionOp, Transaction, WriteOp } from './record.js';

export interface Translation {
  readonly batch: WriteBatch;
}

// REQUIRES: pure. Reads nothing but its arguments.
export function translate(transaction: Transaction, tsn: number): Translation {
  const batch = new WriteBatch();
  for (const op of transaction.ops) {
    if (op.kind === 'create') batch.put(CATALOG_FAMILY, collectionKey(op.name), Buffer.from(op.definition, 'utf8'));
    else if (op.kind === 'drop') translateDrop(batch, op);
    else translateWrite(batch, op, tsn);
  }
  return { batch };
}

function translateDrop(batch: WriteBatch, op: DropCollectionOp): void {
  batch.delete(CATALOG_FAMILY, collectionKey(op.name));
  for (const name of op.fieldNames) batch.delete(CATALOG_FAMILY, fieldAssignmentKey(op.collectionId, name));
}

function translateWrite(batch: WriteBatch, op: WriteOp, tsn: number): void {
  const { collectionId, id } = op;
  for (const a of op.assignments) {
    batch.put(CATALOG_FAMILY, fieldAssignmentKey(collectionId, a.name), Buffer.from(new ByteWriter(16).varint(a.fieldNumber).varint(a.familyNumber).view()));
  }
  batch.put(metaFamily(collectionId), metaKey(id), encodeHeader({ revision: tsn, deleted: op.deleted, fieldNumbers: op.fieldNumbers }));
  for (const put of op.puts) batch.put(familyName(collectionId, put.familyNumber), fieldKey(id, put.fieldNumber), put.value);
  for (const d of op.deletes) batch.delete(familyName(collectionId, d.familyNumber), fieldKey(id, d.fieldNumber));
}
