// Translation: a transaction record's bytes and its TSN in, KV items out, always the same items
// in the same order. Recovery depends on this: it rebuilds every item's LSN as the record's
// first LSN plus the item's index, so the items' count and order must never depend on anything
// else.
//
// Per write operation, in order: one catalog item per new field, the header in the meta
// family, one item per field written, one delete per field removed. Per create: the catalog
// item of the collection; per drop: deletes of the collection's catalog items; per count (record
// version 2 on): the collection's count item; per index op (version 3 on): the index's catalog
// item; per dropIndex: its deletion; per entries op: its deletes, then its puts (empty values),
// in the index's family.
//
// It reads the record where it lies (record.ts has the grammar): keys are built in the batch's
// key arena from the record's own bytes (the id's UTF-8 and the field number's varint), and
// each value is a range of the record, so no object is made per field.

import { ByteReader, StorageError, StorageErrorCode, writeVarint, type WriteBatch } from '../../storage/index.js';
import { CATALOG_FAMILY, collectionKey, documentCountKey, familyName, fieldAssignmentKey, indexDefinitionKey, metaFamily } from './keys.js';
import { HEADER_VERSION, FLAG_DELETED } from './header.js';
import { checkRecordVersion, KIND_COUNT, KIND_CREATE, KIND_DROP, KIND_DROP_INDEX, KIND_ENTRIES, KIND_INDEX, KIND_WRITE } from './record.js';

/** What a transaction needs of the engine besides its items. */
export interface Outline {
  /** Families its items need that may not exist yet, in first-use order: a new collection's meta family, new fields' families. */
  readonly families: string[];
  /** Collections it creates, by id. */
  readonly creates: number[];
  /** Collections it drops, with their families. */
  readonly drops: { readonly collectionId: number; readonly familyNumbers: readonly number[] }[];
}

const NO_DROPS: Outline['drops'] = [];

// REQUIRES: pure. Reads nothing but its arguments; appends to `batch`.
export function translate(payload: Buffer, tsn: number, batch: WriteBatch): Outline {
  const reader = new ByteReader(payload, 0, payload.length, 'binlog transaction');
  const version = reader.byte();
  checkRecordVersion(version);
  const outline: Outline = { families: [], creates: [], drops: NO_DROPS };
  const count = reader.varint();
  for (let i = 0; i < count; i++) {
    const kind = reader.byte();
    if (kind === KIND_WRITE) translateWrite(reader, tsn, batch, outline);
    else if (kind === KIND_COUNT && version >= 2) translateCount(reader, batch);
    else if (kind === KIND_CREATE) translateCreate(reader, batch, outline);
    else if (kind === KIND_DROP) translateDrop(reader, batch, outline, version);
    else if (kind === KIND_ENTRIES && version >= 3) translateEntries(reader, batch);
    else if (kind === KIND_INDEX && version >= 3) translateIndex(reader, batch, outline);
    else if (kind === KIND_DROP_INDEX && version >= 3) translateDropIndex(reader, batch, outline);
    else throw corrupt(`unknown operation kind ${kind}`);
  }
  if (reader.remaining !== 0) throw corrupt(`${reader.remaining} bytes after the last operation`);
  return outline;
}

function translateCreate(reader: ByteReader, batch: WriteBatch, outline: Outline): void {
  const collectionId = reader.varint();
  const name = reader.string();
  const definition = reader.slice();
  batch.put(CATALOG_FAMILY, collectionKey(name), definition);
  outline.creates.push(collectionId);
  addFamily(outline, metaFamily(collectionId));
}

/** The collection's count item; its value is the record's own varint. */
function translateCount(reader: ByteReader, batch: WriteBatch): void {
  const collectionId = reader.varint();
  const start = reader.offset;
  reader.varint();
  batch.put(CATALOG_FAMILY, documentCountKey(collectionId), reader.data.subarray(start, reader.offset));
}

function translateDrop(reader: ByteReader, batch: WriteBatch, outline: Outline, version: number): void {
  const collectionId = reader.varint();
  batch.delete(CATALOG_FAMILY, collectionKey(reader.string()));
  const familyNumbers: number[] = [];
  for (let n = counted(reader); n > 0; n--) familyNumbers.push(reader.varint());
  for (let n = counted(reader); n > 0; n--) batch.delete(CATALOG_FAMILY, fieldAssignmentKey(collectionId, reader.string()));
  // Version 1 had no count item: its drops translate as they always did (same items, same LSNs).
  if (version >= 2) batch.delete(CATALOG_FAMILY, documentCountKey(collectionId));
  if (version >= 3) for (let n = counted(reader); n > 0; n--) batch.delete(CATALOG_FAMILY, indexDefinitionKey(collectionId, reader.string()));
  if (outline.drops === NO_DROPS) (outline as { drops: Outline['drops'] }).drops = [];
  outline.drops.push({ collectionId, familyNumbers });
}

/** An index's catalog item (its definition, the record's own bytes); its family is named for creation. */
function translateIndex(reader: ByteReader, batch: WriteBatch, outline: Outline): void {
  const collectionId = reader.varint();
  const name = reader.string();
  const familyNumber = reader.varint();
  batch.put(CATALOG_FAMILY, indexDefinitionKey(collectionId, name), reader.slice());
  addFamily(outline, familyName(collectionId, familyNumber));
}

function translateDropIndex(reader: ByteReader, batch: WriteBatch, outline: Outline): void {
  const collectionId = reader.varint();
  batch.delete(CATALOG_FAMILY, indexDefinitionKey(collectionId, reader.string()));
  const familyNumber = reader.varint();
  if (outline.drops === NO_DROPS) (outline as { drops: Outline['drops'] }).drops = [];
  outline.drops.push({ collectionId, familyNumbers: [familyNumber] });
}

/** An index's deletes then puts; keys are ranges of the record, values empty. */
function translateEntries(reader: ByteReader, batch: WriteBatch): void {
  const { data } = reader;
  const collectionId = reader.varint();
  const family = familyName(collectionId, reader.varint());
  for (let n = counted(reader); n > 0; n--) {
    const length = reader.varint();
    batch.beginKey().keyBytes(data, reader.offset, reader.offset + length).deleteKey(family);
    reader.offset += length;
    checkBounds(reader);
  }
  for (let n = counted(reader); n > 0; n--) {
    const length = reader.varint();
    batch.beginKey().keyBytes(data, reader.offset, reader.offset + length).putValue(family, data, 0, 0);
    reader.offset += length;
    checkBounds(reader);
  }
}

function translateWrite(reader: ByteReader, tsn: number, batch: WriteBatch, outline: Outline): void {
  const { data } = reader;
  reader.byte(); // The action: translation writes the same items for each.
  const collectionId = reader.varint();
  const idLength = reader.varint();
  const idStart = reader.offset;
  reader.offset += idLength;
  const deleted = reader.byte() === 1;
  const fieldCount = reader.varint();
  const fieldsStart = reader.offset;
  for (let n = fieldCount; n > 0; n--) reader.varint();
  const fieldsEnd = reader.offset;
  checkBounds(reader);
  for (let n = counted(reader); n > 0; n--) translateAssignment(reader, batch, collectionId, outline);
  const header = encodeHeaderFrom(tsn, deleted, fieldCount, data, fieldsStart, fieldsEnd);
  batch.beginKey().keyBytes(data, idStart, idStart + idLength).putValue(metaFamily(collectionId), header, 0, header.length);
  for (let n = counted(reader); n > 0; n--) {
    const family = fieldKeyAt(reader, batch, collectionId, data, idStart, idLength);
    const valueLength = reader.varint();
    const valueStart = reader.offset;
    reader.offset += valueLength;
    checkBounds(reader);
    batch.putValue(family, data, valueStart, valueStart + valueLength);
  }
  for (let n = counted(reader); n > 0; n--) batch.deleteKey(fieldKeyAt(reader, batch, collectionId, data, idStart, idLength));
}

/** Begins the key `id 0x00 fieldNumber` of the field whose numbers the reader is at; returns its family. */
function fieldKeyAt(reader: ByteReader, batch: WriteBatch, collectionId: number, data: Buffer, idStart: number, idLength: number): string {
  const numberStart = reader.offset;
  reader.varint();
  const numberEnd = reader.offset;
  const family = familyName(collectionId, reader.varint());
  batch.beginKey().keyBytes(data, idStart, idStart + idLength).keyByte(0).keyBytes(data, numberStart, numberEnd);
  return family;
}

/** A field's catalog item: its key names it, its value is the record's own two varints. */
function translateAssignment(reader: ByteReader, batch: WriteBatch, collectionId: number, outline: Outline): void {
  const name = reader.string();
  const start = reader.offset;
  reader.varint();
  const familyNumber = reader.varint();
  batch.put(CATALOG_FAMILY, fieldAssignmentKey(collectionId, name), reader.data.subarray(start, reader.offset));
  addFamily(outline, familyName(collectionId, familyNumber));
}

/** header.ts's encoding, with the field numbers' varints copied from the record as they are. */
function encodeHeaderFrom(revision: number, deleted: boolean, count: number, data: Buffer, start: number, end: number): Buffer {
  const header = Buffer.allocUnsafe(2 + 16 + (end - start));
  header[0] = HEADER_VERSION;
  header[1] = deleted ? FLAG_DELETED : 0;
  let at = writeVarint(header, 2, revision);
  at = writeVarint(header, at, count);
  data.copy(header, at, start, end);
  return header.subarray(0, at + end - start);
}

function addFamily(outline: Outline, name: string): void {
  if (!outline.families.includes(name)) outline.families.push(name);
}

/** A count, which can never exceed the bytes left (each counted thing takes at least one). */
function counted(reader: ByteReader): number {
  const count = reader.varint();
  if (count > reader.remaining) throw corrupt(`count ${count} exceeds the bytes left`);
  return count;
}

function checkBounds(reader: ByteReader): void {
  if (reader.remaining < 0) throw corrupt('truncated');
}

function corrupt(message: string): StorageError {
  return new StorageError(StorageErrorCode.CORRUPTION, `binlog transaction: ${message}`);
}
