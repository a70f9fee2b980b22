// Checks on what clients send, before anything is sequenced or logged: ids, field names and
// documents against the limits in src/limits.ts. Each failure is a coded DocketError that
// names the problem.

import { DocketError, DocketErrorCode } from '../errors.js';
import * as limits from '../limits.js';
import { isPlainObject } from './merge-patch.js';

// Control characters (U+0000-U+001F, U+007F): an id must read back the same in a URL, a log
// line and a key, and U+0000 ends an id inside a field key (keys.ts).
const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new DocketError(DocketErrorCode.ID_INVALID, 'a document id must be a non-empty string');
  if (Buffer.byteLength(id, 'utf8') > limits.ID_SIZE_BYTES_MAX) throw new DocketError(DocketErrorCode.ID_INVALID, `a document id is at most ${limits.ID_SIZE_BYTES_MAX} bytes of UTF-8`);
  if (!id.isWellFormed()) throw new DocketError(DocketErrorCode.ID_INVALID, 'a document id must be well-formed Unicode (no lone surrogates)');
  if (CONTROL.test(id)) throw new DocketError(DocketErrorCode.ID_INVALID, 'a document id must not hold control characters');
}

export function checkFieldName(name: string): void {
  if (Buffer.byteLength(name, 'utf8') > limits.FIELD_NAME_SIZE_BYTES_MAX) {
    throw new DocketError(DocketErrorCode.FIELD_NAME_INVALID, `field name ${JSON.stringify(name.slice(0, 40))}... is longer than ${limits.FIELD_NAME_SIZE_BYTES_MAX} bytes`);
  }
  if (!name.isWellFormed()) throw new DocketError(DocketErrorCode.FIELD_NAME_INVALID, `field name ${JSON.stringify(name)} is not well-formed Unicode`);
}

export function checkCollectionName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !limits.COLLECTION_NAME_PATTERN.test(name)) {
    throw new DocketError(DocketErrorCode.COLLECTION_NAME_INVALID, `a collection name matches ${limits.COLLECTION_NAME_PATTERN.source}, got ${JSON.stringify(String(name).slice(0, 80))}`);
  }
}

/** A document's top-level fields in its order: names and their values' JSON text, parallel. */
export interface FieldList {
  readonly names: string[];
  readonly values: Buffer[];
}

/**
 * The document's top-level fields as names and JSON text in the document's order, after
 * checking that it is an object of JSON values within the limits. Each value is serialised
 * exactly once.
 */
export function documentFields(document: unknown): FieldList {
  if (!isPlainObject(document)) throw new DocketError(DocketErrorCode.DOCUMENT_INVALID, 'a document must be a JSON object');
  const names = Object.keys(document);
  if (names.length > limits.FIELDS_PER_DOCUMENT_MAX) throw limit(`a document has at most ${limits.FIELDS_PER_DOCUMENT_MAX} top-level fields, got ${names.length}`);
  const values: Buffer[] = [];
  // Exactly the bytes assemble() will write: the braces, and per field its quoted name, a
  // colon, its value and a comma, less the comma the last field goes without.
  let sizeBytes = 1;
  for (const name of names) {
    checkFieldName(name);
    const value = document[name];
    checkValue(value, 2, name);
    const text = Buffer.from(JSON.stringify(value), 'utf8');
    sizeBytes += Buffer.byteLength(JSON.stringify(name), 'utf8') + text.length + 2;
    if (sizeBytes > limits.DOCUMENT_SIZE_BYTES_MAX) throw limit(`a document is at most ${limits.DOCUMENT_SIZE_BYTES_MAX} bytes of JSON`);
    values.push(text);
  }
  return { names, values };
}

/** Values JSON can hold, nested at most DOCUMENT_DEPTH_MAX deep. */
function checkValue(value: unknown, depth: number, path: string): void {
  switch (typeof value) {
    case 'string': // NB: a lone surrogate is fine here: JSON.stringify writes it as an escape.
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw invalid(`${path} holds ${value}, which JSON cannot represent`);
      return;
    case 'object':
      if (value === null) return;
      if (depth > limits.DOCUMENT_DEPTH_MAX) throw limit(`a document nests at most ${limits.DOCUMENT_DEPTH_MAX} levels deep`);
      if (Array.isArray(value)) for (let i = 0; i < value.length; i++) checkValue(value[i], depth + 1, `${path}[${i}]`);
      else for (const key of Object.keys(value)) checkValue((value as Record<string, unknown>)[key], depth + 1, `${path}.${key}`);
      return;
    default:
      throw invalid(`${path} holds a ${typeof value}, which JSON cannot represent`);
  }
}

function invalid(message: string): DocketError {
  return new DocketError(DocketErrorCode.DOCUMENT_INVALID, message);
}

export function limit(message: string): DocketError {
  return new DocketError(DocketErrorCode.LIMIT_EXCEEDED, message);
}
