// The payload of a binlog transaction record: what translation needs, and nothing it would
// have to look up. Whatever depends on the state at commit time (field numbers and families,
// which old fields a replace removes) is decided then and written here, so translation is a
// pure function of the record (translate.ts). The binlog frames it: src/binlog/FORMAT.md.
//
//   payload := version:byte(3) count:varint op{count}   (version 1: no count op; 1 and 2: no index ops)
//   op      := kind:byte (create | drop | write | count | index | dropIndex | entries)
//   create  := collectionId:varint name:str definition:str              (kind 1)
//   drop    := collectionId:varint name:str n:varint familyNumber{n}
//              m:varint fieldName:str{m}
//              k:varint indexName:str{k}                                 (kind 2; k from version 3 on)
//   write   := action:byte collectionId:varint id:str deleted:byte
//              n:varint fieldNumber{n}                                   (the header's fields)
//              a:varint (fieldName:str fieldNumber:varint familyNumber:varint){a}   (new fields)
//              p:varint (fieldNumber:varint familyNumber:varint value:bytes){p}     (puts)
//              d:varint (fieldNumber:varint familyNumber:varint){d}                 (deletes)
//   count   := collectionId:varint documents:varint                      (kind 4)
//   index   := collectionId:varint name:str familyNumber:varint definition:str   (kind 5, version 3)
//   dropIndex := collectionId:varint name:str familyNumber:varint        (kind 6, version 3)
//   entries := collectionId:varint familyNumber:varint
//              d:varint key:str{d} p:varint key:str{p}                   (kind 7, version 3: index keys deleted, put)
//   str, bytes := length:varint byte{length}      action := 1 put | 2 patch | 3 delete

import { ByteReader, ByteWriter, StorageError, StorageErrorCode } from '../../storage/index.js';

/** The version this build writes. */
export const RECORD_VERSION = 3;
/** The oldest version it reads (FORMAT.md: version 1 is version 2 without count ops, version 2 is version 3 without index ops). */
export const RECORD_VERSION_MIN = 1;

/** UNSUPPORTED_VERSION unless this build reads records of `version`. */
export function checkRecordVersion(version: number): void {
  if (version < RECORD_VERSION_MIN || version > RECORD_VERSION) {
    throw new StorageError(StorageErrorCode.UNSUPPORTED_VERSION, `binlog transaction version ${version}; this build reads versions ${RECORD_VERSION_MIN} to ${RECORD_VERSION}`);
  }
}

export type WriteAction = 'put' | 'patch' | 'delete';
const ACTIONS: readonly WriteAction[] = ['put', 'patch', 'delete'];

export interface CreateCollectionOp {
  readonly kind: 'create';
  readonly collectionId: number;
  readonly name: string;
  /** The collection's definition as JSON text (catalog.ts). */
  readonly definition: string;
}

export interface DropCollectionOp {
  readonly kind: 'drop';
  readonly collectionId: number;
  readonly name: string;
  readonly familyNumbers: readonly number[];
  readonly fieldNames: readonly string[];
  /** The collection's indexes, whose catalog items go with it (version 3 on). */
  readonly indexNames: readonly string[];
}

/** Defines an index or changes its state (version 3 on): its catalog item; its family is created on first use. */
export interface IndexOp {
  readonly kind: 'index';
  readonly collectionId: number;
  readonly name: string;
  readonly familyNumber: number;
  /** The index's definition as JSON text (indexes.ts). */
  readonly definition: string;
}

export interface DropIndexOp {
  readonly kind: 'dropIndex';
  readonly collectionId: number;
  readonly name: string;
  readonly familyNumber: number;
}

/** Index keys one write deletes and puts in one index's family (version 3 on). */
export interface EntriesOp {
  readonly kind: 'entries';
  readonly collectionId: number;
  readonly familyNumber: number;
  readonly deletes: readonly Buffer[];
  readonly puts: readonly Buffer[];
}

export interface FieldAssignment {
  readonly name: string;
  readonly fieldNumber: number;
  readonly familyNumber: number;
}

export interface FieldPut {
  readonly fieldNumber: number;
  readonly familyNumber: number;
  /** The field's value as UTF-8 JSON text. */
  readonly value: Buffer;
}

export interface FieldDelete {
  readonly fieldNumber: number;
  readonly familyNumber: number;
}

export interface WriteOp {
  readonly kind: 'write';
  readonly action: WriteAction;
  readonly collectionId: number;
  readonly id: string;
  readonly deleted: boolean;
  readonly fieldNumbers: readonly number[];
  readonly assignments: readonly FieldAssignment[];
  readonly puts: readonly FieldPut[];
  readonly deletes: readonly FieldDelete[];
}

/** A collection's exact live document count after the transaction (version 2 on). */
export interface CountOp {
  readonly kind: 'count';
  readonly collectionId: number;
  readonly documents: number;
}

export type Operation = CreateCollectionOp | DropCollectionOp | WriteOp | CountOp | IndexOp | DropIndexOp | EntriesOp;

export interface Transaction {
  readonly ops: readonly Operation[];
}

export const KIND_CREATE = 1;
export const KIND_DROP = 2;
export const KIND_WRITE = 3;
export const KIND_COUNT = 4;
export const KIND_INDEX = 5;
export const KIND_DROP_INDEX = 6;
export const KIND_ENTRIES = 7;

/**
 * A write op's fields as numbers, for encodeWriteFields: parallel columns the commit pipeline
 * fills and reuses, so encoding makes no object per field.
 */
export class WriteFields {
  /** The header's field numbers, in document order. */
  fieldNumbers: number[] = [];
  assignments: FieldAssignment[] = [];
  /** Per put: its field and family numbers and its value (JSON text). */
  putFieldNumbers: number[] = [];
  putFamilyNumbers: number[] = [];
  putValues: Buffer[] = [];
  deleteFieldNumbers: number[] = [];
  deleteFamilyNumbers: number[] = [];

  reset(): void {
    this.fieldNumbers.length = 0;
    this.assignments.length = 0;
    this.putFieldNumbers.length = 0;
    this.putFamilyNumbers.length = 0;
    this.putValues.length = 0;
    this.deleteFieldNumbers.length = 0;
    this.deleteFamilyNumbers.length = 0;
  }
}

/** Starts a record of `count` operations. */
export function beginRecord(writer: ByteWriter, count: number): void {
  writer.reset();
  writer.byte(RECORD_VERSION).varint(count);
}

export function encodeCreate(writer: ByteWriter, collectionId: number, name: string, definition: string): void {
  writer.byte(KIND_CREATE).varint(collectionId).string(name).string(definition);
}

export function encodeCount(writer: ByteWriter, collectionId: number, documents: number): void {
  writer.byte(KIND_COUNT).varint(collectionId).varint(documents);
}

export function encodeIndex(writer: ByteWriter, collectionId: number, name: string, familyNumber: number, definition: string): void {
  writer.byte(KIND_INDEX).varint(collectionId).string(name).varint(familyNumber).string(definition);
}

export function encodeDropIndex(writer: ByteWriter, collectionId: number, name: string, familyNumber: number): void {
  writer.byte(KIND_DROP_INDEX).varint(collectionId).string(name).varint(familyNumber);
}

export function encodeEntries(writer: ByteWriter, collectionId: number, familyNumber: number, deletes: readonly Buffer[], puts: readonly Buffer[]): void {
  writer.byte(KIND_ENTRIES).varint(collectionId).varint(familyNumber).varint(deletes.length);
  for (const key of deletes) writer.slice(key);
  writer.varint(puts.length);
  for (const key of puts) writer.slice(key);
}

/** Appends a write op (the grammar above) from its columns. */
export function encodeWriteFields(writer: ByteWriter, action: WriteAction, collectionId: number, id: string, deleted: boolean, fields: WriteFields): void {
  writer.byte(KIND_WRITE).byte(ACTIONS.indexOf(action) + 1).varint(collectionId).string(id).byte(deleted ? 1 : 0);
  const { fieldNumbers, assignments, putFieldNumbers, putFamilyNumbers, putValues, deleteFieldNumbers, deleteFamilyNumbers } = fields;
  writer.varint(fieldNumbers.length);
  for (let i = 0; i < fieldNumbers.length; i++) writer.varint(fieldNumbers[i]!);
  writer.varint(assignments.length);
  for (const a of assignments) writer.string(a.name).varint(a.fieldNumber).varint(a.familyNumber);
  writer.varint(putValues.length);
  for (let i = 0; i < putValues.length; i++) writer.varint(putFieldNumbers[i]!).varint(putFamilyNumbers[i]!).slice(putValues[i]!);
  writer.varint(deleteFieldNumbers.length);
  for (let i = 0; i < deleteFieldNumbers.length; i++) writer.varint(deleteFieldNumbers[i]!).varint(deleteFamilyNumbers[i]!);
}

export function encodeTransaction(transaction: Transaction, writer = new ByteWriter(1024)): Buffer {
  writer.reset();
  writer.byte(RECORD_VERSION).varint(transaction.ops.length);
  for (const op of transaction.ops) {
    if (op.kind === 'create') writer.byte(KIND_CREATE).varint(op.collectionId).string(op.name).string(op.definition);
    else if (op.kind === 'drop') encodeDrop(writer, op);
    else if (op.kind === 'count') encodeCount(writer, op.collectionId, op.documents);
    else if (op.kind === 'index') encodeIndex(writer, op.collectionId, op.name, op.familyNumber, op.definition);
    else if (op.kind === 'dropIndex') encodeDropIndex(writer, op.collectionId, op.name, op.familyNumber);
    else if (op.kind === 'entries') encodeEntries(writer, op.collectionId, op.familyNumber, op.deletes, op.puts);
    else encodeWrite(writer, op);
  }
  return Buffer.from(writer.view());
}

export function encodeDrop(writer: ByteWriter, op: DropCollectionOp): void {
  writer.byte(KIND_DROP).varint(op.collectionId).string(op.name).varint(op.familyNumbers.length);
  for (const number of op.familyNumbers) writer.varint(number);
  writer.varint(op.fieldNames.length);
  for (const name of op.fieldNames) writer.string(name);
  writer.varint(op.indexNames.length);
  for (const name of op.indexNames) writer.string(name);
}

function encodeWrite(writer: ByteWriter, op: WriteOp): void {
  writer.byte(KIND_WRITE).byte(ACTIONS.indexOf(op.action) + 1).varint(op.collectionId).string(op.id).byte(op.deleted ? 1 : 0);
  writer.varint(op.fieldNumbers.length);
  for (const number of op.fieldNumbers) writer.varint(number);
  writer.varint(op.assignments.length);
  for (const a of op.assignments) writer.string(a.name).varint(a.fieldNumber).varint(a.familyNumber);
  writer.varint(op.puts.length);
  for (const put of op.puts) writer.varint(put.fieldNumber).varint(put.familyNumber).slice(put.value);
  writer.varint(op.deletes.length);
  for (const d of op.deletes) writer.varint(d.fieldNumber).varint(d.familyNumber);
}

/** Decodes a payload; CORRUPTION if it does not parse (the binlog's CRC passed, so it is a bug or a bad version). */
export function decodeTransaction(payload: Buffer): Transaction {
  const reader = new ByteReader(payload, 0, payload.length, 'binlog transaction');
  const version = reader.byte();
  checkRecordVersion(version);
  const count = reader.varint();
  const ops: Operation[] = [];
  for (let i = 0; i < count; i++) ops.push(decodeOp(reader, version));
  if (reader.remaining !== 0) throw new StorageError(StorageErrorCode.CORRUPTION, `binlog transaction: ${reader.remaining} bytes after the last operation`);
  return { ops };
}

function decodeOp(reader: ByteReader, version: number): Operation {
  const kind = reader.byte();
  if (kind === KIND_COUNT && version >= 2) return { kind: 'count', collectionId: reader.varint(), documents: reader.varint() };
  if (kind === KIND_CREATE) return { kind: 'create', collectionId: reader.varint(), name: reader.string(), definition: reader.string() };
  if (kind === KIND_DROP) return decodeDrop(reader, version);
  if (version >= 3 && kind === KIND_INDEX) return { kind: 'index', collectionId: reader.varint(), name: reader.string(), familyNumber: reader.varint(), definition: reader.string() };
  if (version >= 3 && kind === KIND_DROP_INDEX) return { kind: 'dropIndex', collectionId: reader.varint(), name: reader.string(), familyNumber: reader.varint() };
  if (version >= 3 && kind === KIND_ENTRIES) {
    const collectionId = reader.varint();
    const familyNumber = reader.varint();
    return { kind: 'entries', collectionId, familyNumber, deletes: repeat(reader, () => reader.slice()), puts: repeat(reader, () => reader.slice()) };
  }
  if (kind === KIND_WRITE) return decodeWrite(reader);
  throw new StorageError(StorageErrorCode.CORRUPTION, `binlog transaction: unknown operation kind ${kind}`);
}

function decodeDrop(reader: ByteReader, version: number): DropCollectionOp {
  const collectionId = reader.varint();
  const name = reader.string();
  const familyNumbers = repeat(reader, () => reader.varint());
  const fieldNames = repeat(reader, () => reader.string());
  const indexNames = version >= 3 ? repeat(reader, () => reader.string()) : [];
  return { kind: 'drop', collectionId, name, familyNumbers, fieldNames, indexNames };
}

function decodeWrite(reader: ByteReader): WriteOp {
  const action = ACTIONS[reader.byte() - 1];
  if (action === undefined) throw new StorageError(StorageErrorCode.CORRUPTION, 'binlog transaction: unknown write action');
  const collectionId = reader.varint();
  const id = reader.string();
  const deleted = reader.byte() === 1;
  const fieldNumbers = repeat(reader, () => reader.varint());
  const assignments = repeat(reader, () => ({ name: reader.string(), fieldNumber: reader.varint(), familyNumber: reader.varint() }));
  const puts = repeat(reader, () => ({ fieldNumber: reader.varint(), familyNumber: reader.varint(), value: reader.slice() }));
  const deletes = repeat(reader, () => ({ fieldNumber: reader.varint(), familyNumber: reader.varint() }));
  return { kind: 'write', action, collectionId, id, deleted, fieldNumbers, assignments, puts, deletes };
}

function repeat<T>(reader: ByteReader, item: () => T): T[] {
  const count = reader.varint();
  if (count > reader.remaining) throw new StorageError(StorageErrorCode.CORRUPTION, `binlog transaction: count ${count} exceeds the bytes left`);
  const items: T[] = [];
  for (let i = 0; i < count; i++) items.push(item());
  return items;
}
