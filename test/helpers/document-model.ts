// The plain in-memory model the document-store model test compares with: collections by name,
// documents by id with their revision, JSON Merge Patch (RFC 7396), and what a transaction of
// writes does to it (all or nothing, later operations seeing earlier ones).
//
// Documents are held as parsed JSON built with own properties only, so "__proto__" is data. Key
// order matters (a read returns fields in the document's order), so documents are compared as
// JSON text; no generated key is integer-like, which JavaScript would move to the front.

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export interface CollectionOptionsModel {
  readonly columns?: Record<string, string>;
  readonly fieldFamiliesMax?: number;
}

export interface ModelDocument {
  readonly revision: number;
  readonly document: JsonObject;
}

export interface ModelCollection {
  /** The TSN that created it. */
  readonly id: number;
  readonly options: CollectionOptionsModel;
  readonly documents: Map<string, ModelDocument>;
}

/** A write as the store's batch takes it, with its condition already a number. */
export type ModelWrite =
  | { readonly op: 'put'; readonly collection: string; readonly id: string; readonly document: JsonObject; readonly ifAbsent?: boolean; readonly ifRevision?: number }
  | { readonly op: 'patch'; readonly collection: string; readonly id: string; readonly patch: JsonObject; readonly ifRevision?: number }
  | { readonly op: 'delete'; readonly collection: string; readonly id: string; readonly ifRevision?: number };

export interface Change {
  readonly collection: string;
  readonly id: string;
  /** The new document; undefined for a delete. */
  readonly document: JsonObject | undefined;
  /** A put of a document that was absent (the store's WriteResult.created); plan() always sets it. */
  readonly created?: boolean;
}

export type Outcome = { readonly error: string } | { readonly changes: readonly Change[] };

export const NOT_FOUND = 'DOCKET_ERR_DOCUMENT_NOT_FOUND';
export const CONFLICT = 'DOCKET_ERR_DOCUMENT_CONFLICT';
export const COLLECTION_NOT_FOUND = 'DOCKET_ERR_COLLECTION_NOT_FOUND';
export const COLLECTION_EXISTS = 'DOCKET_ERR_COLLECTION_EXISTS';

/** The revision of a document written earlier in the same transaction: it matches no ifRevision. */
const PENDING = -1;
/** The store's default fieldFamiliesMax. */
const FIELD_FAMILIES_DEFAULT = 4;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Sets an own, enumerable property: `__proto__` included, never a prototype. */
export function define(target: JsonObject, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** An object with these own properties, in this order. */
export function objectOf(entries: readonly (readonly [string, Json])[]): JsonObject {
  const result: JsonObject = {};
  for (const [key, value] of entries) define(result, key, value);
  return result;
}

/** A deep copy through JSON text (which keeps `__proto__` as an own property). */
export function copyJson<T extends Json>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * RFC 7396: a non-object patch replaces the target; an object patch merges key by key, null
 * removing a key. Keys the target has keep their place; new keys come after them.
 */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return copyJson(patch);
  const result: JsonObject = isObject(target) ? copyJson(target) : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key]!;
    if (value === null) delete result[key];
    else define(result, key, mergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value));
  }
  return result;
}

/** Ids in the store's order: the bytes of their UTF-8. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The document's JSON text with only the named fields, in the document's order. */
export function projectJson(document: JsonObject, fields?: readonly string[]): string {
  if (!fields) return JSON.stringify(document);
  return JSON.stringify(objectOf(Object.keys(document).filter((key) => fields.includes(key)).map((key) => [key, document[key]!])));
}

/** Whether creating a collection that exists with `options` is a no-op (else it conflicts). */
export function sameOptions(existing: CollectionOptionsModel, b: CollectionOptionsModel): boolean {
  // A create that leaves fieldFamiliesMax out takes the existing collection's.
  const normal = (o: CollectionOptionsModel): string => JSON.stringify({ fieldFamiliesMax: o.fieldFamiliesMax ?? existing.fieldFamiliesMax ?? FIELD_FAMILIES_DEFAULT, columns: o.columns });
  return normal(existing) === normal(b);
}

export interface PageOptions {
  readonly limit?: number;
  readonly after?: string;
  readonly prefix?: string;
  readonly fields?: readonly string[];
}

export interface ModelPage {
  readonly documents: { id: string; revision: number; json: string }[];
  readonly next: string | undefined;
}

export class DocumentModel {
  /** The last TSN assigned. */
  tsn = 0;
  readonly collections = new Map<string, ModelCollection>();

  copy(): DocumentModel {
    const model = new DocumentModel();
    model.tsn = this.tsn;
    for (const [name, c] of this.collections) model.collections.set(name, { id: c.id, options: c.options, documents: new Map(c.documents) });
    return model;
  }

  create(name: string, options: CollectionOptionsModel, tsn: number): void {
    this.tsn = tsn;
    this.collections.set(name, { id: tsn, options, documents: new Map() });
  }

  drop(name: string, tsn: number): void {
    this.tsn = tsn;
    this.collections.delete(name);
  }

  /** What one transaction of writes does: the first failing check's error, or every change. */
  plan(writes: readonly ModelWrite[]): Outcome {
    // The store checks every operation's collection before it looks at any document.
    const missing = writes.find((write) => !this.collections.has(write.collection));
    if (missing) return { error: COLLECTION_NOT_FOUND };
    const local = new Map<string, ModelDocument | undefined>();
    const changes: Change[] = [];
    for (const write of writes) {
      const key = `${write.collection}\u0000${write.id}`;
      const current = local.has(key) ? local.get(key) : this.collections.get(write.collection)!.documents.get(write.id);
      const result = step(write, current);
      if ('error' in result) return result;
      local.set(key, result.document === undefined ? undefined : { revision: PENDING, document: result.document });
      changes.push({ collection: write.collection, id: write.id, document: result.document, created: write.op === 'put' && current === undefined });
    }
    return { changes };
  }

  apply(changes: readonly Change[], tsn: number): void {
    this.tsn = tsn;
    for (const change of changes) {
      const { documents } = this.collections.get(change.collection)!;
      if (change.document === undefined) documents.delete(change.id);
      else documents.set(change.id, { revision: tsn, document: change.document });
    }
  }

  /** Every live id of a collection in byte order. */
  ids(collection: string): string[] {
    return [...this.collections.get(collection)!.documents.keys()].sort(byteOrder);
  }

  /** The page a list call must return. */
  page(collection: string, options: PageOptions): ModelPage {
    const limit = options.limit ?? 100;
    const { documents } = this.collections.get(collection)!;
    const ids = this.ids(collection).filter((id) => (options.after === undefined || byteOrder(id, options.after) > 0) && id.startsWith(options.prefix ?? ''));
    const page = ids.slice(0, limit).map((id) => ({ id, revision: documents.get(id)!.revision, json: projectJson(documents.get(id)!.document, options.fields) }));
    return { documents: page, next: ids.length > limit ? page[page.length - 1]!.id : undefined };
  }
}

/** One write against the document's current state (undefined: absent). */
function step(write: ModelWrite, current: ModelDocument | undefined): { error: string } | { document: JsonObject | undefined } {
  if (write.ifRevision !== undefined && (current === undefined || current.revision !== write.ifRevision)) return { error: CONFLICT };
  if (write.op === 'put') {
    if (write.ifAbsent && current !== undefined) return { error: CONFLICT };
    return { document: copyJson(write.document) };
  }
  if (current === undefined) return { error: NOT_FOUND };
  if (write.op === 'delete') return { document: undefined };
  return { document: mergePatch(current.document, write.patch) as JsonObject };
}
