// Names of column families and the byte keys of every KV item the document layer writes.
// Keys are order-preserving and injective: ids hold no U+0000 (validate.ts), so the NUL that
// ends an id in a field key never occurs inside one, and a field key's last part is a number.
//
//   family "catalog"      'c' name                      → collection definition (JSON text)
//                         'f' collectionId:u48be name   → field number, family number (varints)
//                         'n' collectionId:u48be        → live documents (varint; record version 2 on)
//                         'x' collectionId:u48be name   → index definition (JSON text; record version 3 on)
//   family "c<id>.0"      id                            → document header (header.ts)
//   family "c<id>.<n>"    id 0x00 fieldNumber:varint    → the field's value as JSON text
//   family "c<id>.<64+t>" encoded values, id            → empty (the index created at TSN t; index-key.ts)
//
// A collection's id is the TSN that created it, so a dropped and re-created name never meets
// its old families. Family 0 of a collection is its meta family, 1 its overflow family.

import { writeVarint } from '../../storage/index.js';

export const CATALOG_FAMILY = 'catalog';
export const META_FAMILY_NUMBER = 0;
export const OVERFLOW_FAMILY_NUMBER = 1;
export const FIRST_FIELD_FAMILY_NUMBER = 2;

const COLLECTION_PREFIX = 0x63; // 'c'
const FIELD_PREFIX = 0x66; // 'f'
const COUNT_PREFIX = 0x6e; // 'n'
const INDEX_PREFIX = 0x78; // 'x'
/** An index's family number is this plus the TSN that created it: never a field family's (< 34), never reused. */
export const INDEX_FAMILY_NUMBER_BASE = 64;

/** Names built once: translation asks for one per KV item (~47 a Reddit comment). */
const familyNames = new Map<number, string[]>();

export function familyName(collectionId: number, familyNumber: number): string {
  let names = familyNames.get(collectionId);
  if (names === undefined) familyNames.set(collectionId, (names = []));
  return (names[familyNumber] ??= `c${collectionId}.${familyNumber}`);
}

export function metaFamily(collectionId: number): string {
  return familyName(collectionId, META_FAMILY_NUMBER);
}

/** The collection id and family number of a family name, or undefined for other families. */
export function parseFamilyName(name: string): { collectionId: number; familyNumber: number } | undefined {
  const match = /^c(\d+)\.(\d+)$/.exec(name);
  return match ? { collectionId: Number(match[1]), familyNumber: Number(match[2]) } : undefined;
}

export function metaKey(id: string): Buffer {
  return Buffer.from(id, 'utf8');
}

export function fieldKey(id: string, fieldNumber: number): Buffer {
  // Written in place (one buffer, not three): a document read or write builds one per field.
  const idBytes = Buffer.byteLength(id, 'utf8');
  const key = Buffer.allocUnsafe(idBytes + 1 + varintBytes(fieldNumber));
  key.write(id, 0, idBytes, 'utf8');
  key[idBytes] = 0;
  writeVarint(key, idBytes + 1, fieldNumber);
  return key;
}

/**
 * fieldKey(id, n) for each n of `fieldNumbers[order[i]]` in turn, as views of one buffer: the id
 * is encoded once for all of a document's fields (a query reads many documents whole).
 */
export function fieldKeysOf(id: string, fieldNumbers: readonly number[], order: readonly number[]): Buffer[] {
  const idBytes = Buffer.from(id, 'utf8');
  let length = 0;
  for (const i of order) length += idBytes.length + 1 + varintBytes(fieldNumbers[i]!);
  const all = Buffer.allocUnsafe(length);
  const keys: Buffer[] = new Array<Buffer>(order.length);
  let at = 0;
  for (let k = 0; k < order.length; k++) {
    const start = at;
    at += idBytes.copy(all, at);
    all[at++] = 0;
    at = writeVarint(all, at, fieldNumbers[order[k]!]!);
    keys[k] = all.subarray(start, at);
  }
  return keys;
}

function varintBytes(value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`varint out of range: ${value}`);
  let bytes = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

export function collectionKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(COLLECTION_PREFIX), Buffer.from(name, 'utf8')]);
}

export const COLLECTION_KEY_PREFIX = Buffer.of(COLLECTION_PREFIX);

export function fieldAssignmentKey(collectionId: number, fieldName: string): Buffer {
  const head = Buffer.alloc(7);
  head[0] = FIELD_PREFIX;
  head.writeUIntBE(collectionId, 1, 6);
  return Buffer.concat([head, Buffer.from(fieldName, 'utf8')]);
}

export const FIELD_ASSIGNMENT_KEY_PREFIX = Buffer.of(FIELD_PREFIX);

/** The key of a collection's exact live document count. */
export function documentCountKey(collectionId: number): Buffer {
  const key = Buffer.alloc(7);
  key[0] = COUNT_PREFIX;
  key.writeUIntBE(collectionId, 1, 6);
  return key;
}

export const DOCUMENT_COUNT_KEY_PREFIX = Buffer.of(COUNT_PREFIX);

/** The parts of a field-assignment key. */
export function parseFieldAssignmentKey(key: Buffer): { collectionId: number; fieldName: string } {
  return { collectionId: key.readUIntBE(1, 6), fieldName: key.subarray(7).toString('utf8') };
}

/** The key of an index's definition. */
export function indexDefinitionKey(collectionId: number, name: string): Buffer {
  const head = Buffer.alloc(7);
  head[0] = INDEX_PREFIX;
  head.writeUIntBE(collectionId, 1, 6);
  return Buffer.concat([head, Buffer.from(name, 'utf8')]);
}

export const INDEX_DEFINITION_KEY_PREFIX = Buffer.of(INDEX_PREFIX);
