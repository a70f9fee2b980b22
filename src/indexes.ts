// Secondary indexes: definitions (checked here, logged by index ops of the binlog record, held
// in the catalog) and the keys a document has in each. An index is a column family of its
// collection, c<id>.<64 + TSN that created it>; its keys are the order-preserving encodings of
// the document's values for its fields (index-key.ts), each inverted for a descending field,
// then the document's id; values are empty. Every live document has one key in each index: a
// field it lacks (or whose path steps through a non-object) is encoded as `missing`, which
// sorts first, so any query can use any index's leading fields. Entries are kept by the write that changes
// the document, in the same transaction (store.ts plans them, the record carries them).

import { DocketError, DocketErrorCode } from './errors.js';
import { encodeJsonText, KeyBuilder, skipEncoded, TAG_MISSING, valueAt } from './documents/index-key.js';
import { familyName, INDEX_FAMILY_NUMBER_BASE } from './documents/keys.js';
import { isPlainObject } from './documents/merge-patch.js';
import * as limits from './limits.js';

export type IndexState = 'building' | 'ready' | 'failed';

export interface IndexField {
  /** A top-level field name, or a dotted path into nested objects (`user.name`). */
  readonly field: string;
  readonly order: 'asc' | 'desc';
}

/** What the binlog logs and the catalog keeps: the JSON text of this, per index. */
export interface IndexDefinition {
  readonly name: string;
  readonly fields: readonly IndexField[];
  readonly unique: boolean;
  readonly familyNumber: number;
  readonly state: IndexState;
  /** Why a build failed (state `failed`). */
  readonly error?: string;
}

/** What a client gives: `{fields: ["a", {"b": "desc"}, ...], unique?}`. */
export interface IndexOptions {
  readonly fields: readonly IndexField[];
  readonly unique: boolean;
}

export class Index {
  readonly family: string;
  /** Per field: the top-level name, the rest of the path, descending. */
  readonly paths: readonly { readonly top: string; readonly rest: readonly string[]; readonly desc: boolean }[];
  /** Documents a running build has visited (in memory; a restarted build starts again). */
  buildScanned = 0;

  constructor(
    readonly collectionId: number,
    readonly definition: IndexDefinition,
  ) {
    this.family = familyName(collectionId, definition.familyNumber);
    this.paths = definition.fields.map(({ field, order }) => {
      const [top, ...rest] = field.split('.');
      return { top: top!, rest, desc: order === 'desc' };
    });
  }

  get name(): string {
    return this.definition.name;
  }

  /** Writes keep it (building or ready); a failed build's index is neither kept nor used. */
  get maintained(): boolean {
    return this.definition.state !== 'failed';
  }

  get ready(): boolean {
    return this.definition.state === 'ready';
  }

  /**
   * The document's key in this index (a new buffer). `values` holds at least the top-level
   * fields the index reads (undefined elsewhere). INDEX_KEY_TOO_LARGE past INDEX_KEY_SIZE_BYTES_MAX.
   */
  keyOf(id: string, names: readonly string[], values: readonly (Buffer | undefined)[], out: KeyBuilder): Buffer {
    out.reset();
    for (const { top, rest, desc } of this.paths) {
      const start = out.length;
      const i = names.indexOf(top);
      const text = i < 0 ? undefined : values[i]!;
      const range = text === undefined ? undefined : rest.length === 0 ? [0, text.length] : valueAt(text, 0, text.length, rest);
      if (text === undefined || range === undefined) out.byte(TAG_MISSING);
      else encodeJsonText(out, text, range[0], range[1]);
      if (desc) out.invertFrom(start);
    }
    const valuesLength = out.length;
    out.append(Buffer.from(id, 'utf8'));
    if (out.length > limits.INDEX_KEY_SIZE_BYTES_MAX) {
      throw new DocketError(DocketErrorCode.INDEX_KEY_TOO_LARGE, `document ${JSON.stringify(id)}: its key in index ${this.name} would be ${out.length} bytes, more than ${limits.INDEX_KEY_SIZE_BYTES_MAX} (indexed values ${valuesLength} bytes)`);
    }
    return out.take();
  }

  /** Whether a key holds every indexed field (a unique index constrains only such keys). */
  complete(key: Buffer): boolean {
    let at = 0;
    for (const { desc } of this.paths) {
      if ((key[at]! ^ (desc ? 0xff : 0)) === TAG_MISSING) return false;
      at = skipEncoded(key, at, desc);
    }
    return true;
  }

  /** Where the id starts in a key: after the last field's encoding. */
  idStart(key: Buffer): number {
    let at = 0;
    for (const { desc } of this.paths) at = skipEncoded(key, at, desc);
    return at;
  }

  /** Info for GET .../indexes and /stats. */
  info(documents: number): Record<string, unknown> {
    const { name, fields, unique, state, error } = this.definition;
    return {
      name,
      fields,
      unique,
      state,
      family: this.family,
      ...(error ? { error } : {}),
      ...(state === 'building' ? { progress: { documentsScanned: this.buildScanned, documentsTotal: documents } } : {}),
    };
  }
}

/** The family number of an index created by transaction `tsn`. */
export function indexFamilyNumber(tsn: number): number {
  return INDEX_FAMILY_NUMBER_BASE + tsn;
}

const invalid = (message: string): DocketError => new DocketError(DocketErrorCode.INDEX_DEFINITION_INVALID, message);

export function checkIndexName(name: string): void {
  if (!limits.INDEX_NAME_PATTERN.test(name)) throw invalid(`an index name is 1 to 64 of [A-Za-z0-9_-], got ${JSON.stringify(name)}`);
}

/** Checks a client's index definition: `{fields: [name | {name: "asc"|"desc"}], unique?: boolean}`. */
export function indexOptionsOf(body: unknown): IndexOptions {
  if (!isPlainObject(body)) throw invalid('an index definition is a JSON object {fields, unique?}');
  for (const key of Object.keys(body)) if (key !== 'fields' && key !== 'unique') throw invalid(`unknown key ${JSON.stringify(key)} in an index definition; it takes fields and unique`);
  const { fields, unique } = body as { fields?: unknown; unique?: unknown };
  if (unique !== undefined && typeof unique !== 'boolean') throw invalid('unique must be true or false');
  if (!Array.isArray(fields) || fields.length === 0) throw invalid('fields must be a non-empty array of field names or {name: "asc" | "desc"}');
  if (fields.length > limits.INDEX_FIELDS_MAX) throw invalid(`an index has at most ${limits.INDEX_FIELDS_MAX} fields, got ${fields.length}`);
  const checked: IndexField[] = fields.map((entry: unknown) => {
    let field: unknown = entry;
    let order: unknown = 'asc';
    if (isPlainObject(entry)) {
      const keys = Object.keys(entry);
      if (keys.length !== 1) throw invalid('a field given as an object names one field: {"name": "asc" | "desc"}');
      field = keys[0];
      order = (entry as Record<string, unknown>)[keys[0]!];
    }
    if (typeof field !== 'string') throw invalid('a field is a string or {name: "asc" | "desc"}');
    if (order !== 'asc' && order !== 'desc') throw invalid(`field ${JSON.stringify(field)}: the order is "asc" or "desc"`);
    checkFieldPath(field, invalid);
    return { field, order };
  });
  if (new Set(checked.map((f) => f.field)).size !== checked.length) throw invalid('an index names each field once');
  return { fields: checked, unique: unique === true };
}

/** A dotted field path: non-empty steps, within the bounds. */
export function checkFieldPath(field: string, error: (message: string) => DocketError): void {
  if (field.length === 0 || Buffer.byteLength(field, 'utf8') > limits.INDEX_FIELD_PATH_BYTES_MAX) throw error(`a field path is 1 to ${limits.INDEX_FIELD_PATH_BYTES_MAX} bytes`);
  const steps = field.split('.');
  if (steps.length > limits.INDEX_FIELD_PATH_STEPS_MAX) throw error(`a field path has at most ${limits.INDEX_FIELD_PATH_STEPS_MAX} dotted steps`);
  if (steps.some((step) => step.length === 0)) throw error(`field path ${JSON.stringify(field)} has an empty step`);
}

/** Whether an existing index is what a create asks for (then the create is a no-op). */
export function sameIndex(definition: IndexDefinition, options: IndexOptions): boolean {
  return definition.unique === options.unique && JSON.stringify(definition.fields) === JSON.stringify(options.fields);
}
