// The plain in-memory model the HTTP model test compares Docket's HTTP API with: for each
// request, what the server must answer (status, error code, body, ETag, Location) given the
// collections and documents the model holds, and what the request changes. Documents, merge
// patches, listing and TSNs come from the store-level model (document-model.ts); this adds what
// HTTP puts around them: preconditions, the order in which a request's faults are found,
// collection definitions and their JSON Schemas, the field families a collection lists, bulk
// loads, and every transaction's changes as the change feed shows them.
//
// Requests are described, not written as HTTP: the test turns a description into a request and
// the model into an expectation, so neither reads the other's output.

import { STATUS_CODES } from 'node:http';
import { DocumentModel, isObject, projectJson, type Json, type JsonObject } from './document-model.js';

export const CODE = {
  BODY_INVALID: 'DOCKET_ERR_BODY_INVALID',
  UNSUPPORTED_MEDIA_TYPE: 'DOCKET_ERR_UNSUPPORTED_MEDIA_TYPE',
  LIMIT_EXCEEDED: 'DOCKET_ERR_LIMIT_EXCEEDED',
  INVALID_ARGUMENT: 'DOCKET_ERR_INVALID_ARGUMENT',
  ID_INVALID: 'DOCKET_ERR_ID_INVALID',
  FIELD_NAME_INVALID: 'DOCKET_ERR_FIELD_NAME_INVALID',
  DOCUMENT_INVALID: 'DOCKET_ERR_DOCUMENT_INVALID',
  DOCUMENT_SCHEMA: 'DOCKET_ERR_DOCUMENT_SCHEMA',
  DOCUMENT_NOT_FOUND: 'DOCKET_ERR_DOCUMENT_NOT_FOUND',
  DOCUMENT_CONFLICT: 'DOCKET_ERR_DOCUMENT_CONFLICT',
  COLLECTION_NOT_FOUND: 'DOCKET_ERR_COLLECTION_NOT_FOUND',
  COLLECTION_EXISTS: 'DOCKET_ERR_COLLECTION_EXISTS',
  COLLECTION_NAME_INVALID: 'DOCKET_ERR_COLLECTION_NAME_INVALID',
  COLLECTION_DEFINITION_INVALID: 'DOCKET_ERR_COLLECTION_DEFINITION_INVALID',
  ROUTE_NOT_FOUND: 'DOCKET_ERR_ROUTE_NOT_FOUND',
} as const;

const STATUS_OF_CODE: Record<string, number> = {
  [CODE.BODY_INVALID]: 400,
  [CODE.UNSUPPORTED_MEDIA_TYPE]: 415,
  [CODE.LIMIT_EXCEEDED]: 413,
  [CODE.INVALID_ARGUMENT]: 400,
  [CODE.ID_INVALID]: 400,
  [CODE.FIELD_NAME_INVALID]: 400,
  [CODE.DOCUMENT_INVALID]: 400,
  [CODE.DOCUMENT_SCHEMA]: 422,
  [CODE.DOCUMENT_NOT_FOUND]: 404,
  [CODE.DOCUMENT_CONFLICT]: 412,
  [CODE.COLLECTION_NOT_FOUND]: 404,
  [CODE.COLLECTION_EXISTS]: 409,
  [CODE.COLLECTION_NAME_INVALID]: 400,
  [CODE.COLLECTION_DEFINITION_INVALID]: 400,
  [CODE.ROUTE_NOT_FOUND]: 404,
};

// Limits as the README states them (not imported: the model says what they are).
const ID_SIZE_BYTES_MAX = 512;
const FIELD_NAME_SIZE_BYTES_MAX = 256;
const DEPTH_MAX = 64;
const LIST_LIMIT_DEFAULT = 100;
const LIST_LIMIT_MAX = 1000;
const FIELD_FAMILIES_DEFAULT = 4;
/** The longest path segment the router takes (3 × the longest id + 64); longer is 414. */
export const PATH_SEGMENT_LENGTH_MAX = 3 * ID_SIZE_BYTES_MAX + 64;
const COLLECTION_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

// ---- what a response must be ----

export interface Expected {
  readonly status: number;
  /** The error code of a refusal (the body is then `{statusCode, code, error, message}`). */
  readonly code?: string;
  /** The body parsed, deep-equal (key order included). */
  readonly json?: unknown;
  /** The body's exact text (a document read). */
  readonly text?: string;
  /** The ETag header; undefined: the response has none. */
  readonly etag?: string;
  /** The Location header; undefined: the response has none. */
  readonly location?: string;
  /** The model's change, applied once the response agrees. */
  readonly commit?: () => void;
}

export function refusal(code: string, status = STATUS_OF_CODE[code]!): Expected {
  return { status, code };
}

export function errorBody(status: number, code: string): { statusCode: number; code: string; error: string } {
  return { statusCode: status, code, error: STATUS_CODES[status] ?? 'Error' };
}

// ---- what a request sends ----

/** A body: JSON text of a value, one of the known-bad bodies, or nothing at all. */
export type Body =
  | { readonly kind: 'json'; readonly value: Json; readonly contentType: string }
  | { readonly kind: 'raw'; readonly name: RawBodyName }
  | { readonly kind: 'none' };

export const JSON_CONTENT_TYPES = ['application/json', 'application/merge-patch+json', 'application/json; charset=utf-8'] as const;

/** Nested arrays, the outermost at depth 1. */
export function nestedArrays(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/** Bodies a client gets wrong, each with the refusal it earns before any route logic runs. */
export const RAW_BODIES = {
  truncated: { bytes: Buffer.from('{"title":"a'), contentType: 'application/json', refusal: refusal(CODE.BODY_INVALID) },
  empty: { bytes: Buffer.alloc(0), contentType: 'application/json', refusal: refusal(CODE.BODY_INVALID) },
  trailing: { bytes: Buffer.from('{"n":1} {"n":2}'), contentType: 'application/merge-patch+json', refusal: refusal(CODE.BODY_INVALID) },
  badUtf8: { bytes: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), contentType: 'application/json', refusal: refusal(CODE.BODY_INVALID) },
  // The document itself is depth 1: `{"a":` + 64 arrays is 65 levels.
  tooDeep: { bytes: Buffer.from(`{"a":${nestedArrays(DEPTH_MAX)}}`), contentType: 'application/json', refusal: refusal(CODE.LIMIT_EXCEEDED) },
  textPlain: { bytes: Buffer.from('{"n":1}'), contentType: 'text/plain', refusal: refusal(CODE.UNSUPPORTED_MEDIA_TYPE) },
  // A media type the server knows (bulk takes it) but a one-document route does not.
  ndjson: { bytes: Buffer.from('{"n":1}\n'), contentType: 'application/x-ndjson', refusal: refusal(CODE.UNSUPPORTED_MEDIA_TYPE) },
} as const;

export type RawBodyName = keyof typeof RAW_BODIES;

/** The parsed body (undefined: none was sent), or the refusal parsing it earns. */
function parseBody(body: Body): { value: Json | undefined } | { refusal: Expected } {
  if (body.kind === 'none') return { value: undefined };
  if (body.kind === 'json') return { value: body.value };
  return { refusal: RAW_BODIES[body.name].refusal };
}

// ---- collection definitions ----

const NUMERIC_SCHEMA = { type: 'object', required: ['n'], properties: { n: { type: 'number' } } };
const TAGS_SCHEMA = { type: 'object', properties: { tags: { type: 'array' } } };

export interface DefinitionCase {
  /** The body of the PUT; undefined: none. */
  readonly body: Json | undefined;
  /** Refused for its shape (before the name is looked at) or for its content (after). */
  readonly invalid?: 'shape' | 'content';
  /** Its schema as a predicate on documents. */
  readonly accepts?: (document: JsonObject) => boolean;
}

const hasNumericN = (document: JsonObject): boolean => Object.hasOwn(document, 'n') && typeof document.n === 'number';
const tagsIsArray = (document: JsonObject): boolean => !Object.hasOwn(document, 'tags') || Array.isArray(document.tags);

export const DEFINITIONS: readonly DefinitionCase[] = [
  { body: undefined },
  { body: {} },
  { body: { fieldFamiliesMax: 4 } }, // The default said out loud: the same definition as none.
  { body: { columns: { title: 'text', body: 'text' } } },
  { body: { schema: NUMERIC_SCHEMA }, accepts: hasNumericN },
  { body: { schema: NUMERIC_SCHEMA, columns: { title: 'text', body: 'text', n: 'small' }, fieldFamiliesMax: 1 }, accepts: hasNumericN },
  { body: { fieldFamiliesMax: 0 } }, // Every field in the overflow family.
  { body: { schema: TAGS_SCHEMA, columns: { tags: 'list', meta: 'list' } }, accepts: tagsIsArray },
  { body: { bogus: 1 }, invalid: 'shape' },
  { body: [1], invalid: 'shape' },
  { body: null, invalid: 'shape' },
  { body: { schema: { type: 'nonsense' } }, invalid: 'content' },
  { body: { schema: 5 }, invalid: 'content' },
  { body: { fieldFamiliesMax: 33 }, invalid: 'content' },
  { body: { fieldFamiliesMax: 1.5 }, invalid: 'content' },
  { body: { columns: { title: '' } }, invalid: 'content' },
];

interface CollectionState {
  readonly name: string;
  /** The TSN that created it. */
  readonly id: number;
  readonly definition: DefinitionCase;
  readonly fieldFamiliesMax: number;
  readonly columns: Record<string, string> | undefined;
  /** Every field name ever written, with its family number, in the order they were assigned. */
  readonly fields: Map<string, number>;
  readonly labelFamilies: Map<string, number>;
  nextFamily: number;
  /** Committed document writes: an upper bound on the meta family's entries. */
  writes: number;
}

const META_FAMILY = 0;
const OVERFLOW_FAMILY = 1;
const FIRST_FIELD_FAMILY = 2;

/** Two definitions are the same when they ask for the same families, columns and schema. */
function sameDefinition(existing: DefinitionCase, b: DefinitionCase): boolean {
  // A create that leaves fieldFamiliesMax out takes the existing collection's.
  const existingMax = (existing.body as JsonObject | undefined)?.fieldFamiliesMax ?? FIELD_FAMILIES_DEFAULT;
  const key = (d: DefinitionCase): string => {
    const body = (d.body ?? {}) as JsonObject;
    return JSON.stringify([body.fieldFamiliesMax ?? existingMax, body.schema ?? null, body.columns ?? null]);
  };
  return key(existing) === key(b);
}

// ---- ids, conditions, documents ----

/** Why an id is refused (README: 1..512 bytes of well-formed UTF-8 without control characters). */
export function idFault(id: string): string | undefined {
  if (id.length === 0 || Buffer.byteLength(id, 'utf8') > ID_SIZE_BYTES_MAX || !id.isWellFormed() || CONTROL.test(id)) return CODE.ID_INVALID;
  return undefined;
}

/** A document id in a path: a string, or a segment the router refuses before any route runs. */
export type PathId = { readonly id: string } | { readonly router: 'badEncoding' | 'tooLong' };

/** What the router answers for a bad segment. */
export function routerRefusal(fault: 'badEncoding' | 'tooLong'): Expected {
  return fault === 'tooLong' ? refusal(CODE.LIMIT_EXCEEDED, 414) : refusal(CODE.INVALID_ARGUMENT);
}

/** An If-Match / If-None-Match header as a client writes it. */
export type TagHeader = { readonly star: true } | { readonly tags: readonly { readonly revision: number; readonly weak?: boolean }[] } | { readonly garbage: string };

export function formatTags(header: TagHeader): string {
  if ('star' in header) return '*';
  if ('garbage' in header) return header.garbage;
  return header.tags.map((tag) => `${tag.weak ? 'W/' : ''}"${tag.revision}"`).join(', ');
}

/** Whether a document at `revision` (undefined: absent) matches; weak tags match only if `weak`. */
function tagsMatch(header: TagHeader, revision: number | undefined, weak: boolean): boolean {
  if (revision === undefined || 'garbage' in header) return false;
  if ('star' in header) return true;
  return header.tags.some((tag) => tag.revision === revision && (weak || !tag.weak));
}

export interface Conditions {
  readonly ifMatch?: TagHeader;
  readonly ifNoneMatch?: TagHeader;
}

/** Why a document is refused (the test's documents are far below every size limit, so no byte count). */
function documentFault(value: Json | undefined): string | undefined {
  if (!isObject(value)) return CODE.DOCUMENT_INVALID;
  for (const name of Object.keys(value)) {
    if (Buffer.byteLength(name, 'utf8') > FIELD_NAME_SIZE_BYTES_MAX || !name.isWellFormed()) return CODE.FIELD_NAME_INVALID;
  }
  return undefined;
}

/** The value as the server will hold it: through JSON text and back. */
function normal(value: JsonObject): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

export type WriteMethod = 'PUT' | 'PATCH' | 'DELETE';
type WriteOp = 'put' | 'patch' | 'delete';

export interface WriteRequest {
  readonly method: WriteMethod;
  readonly collection: string;
  readonly id: PathId;
  readonly body: Body;
  readonly conditions: Conditions;
}

export interface ListRequest {
  readonly collection: string;
  readonly limit?: number | string;
  readonly after?: string;
  readonly prefix?: string;
  readonly fields?: readonly string[];
}

export interface InfoExpectation {
  /** The info with `fields` sorted by name, `documents` exact, and without `documentsEstimate`. */
  readonly info: JsonObject;
  readonly documentsEstimateMin: number;
  readonly documentsEstimateMax: number;
}

export function documentPath(collection: string, id: string): string {
  return `/collections/${encodeURIComponent(collection)}/docs/${encodeURIComponent(id)}`;
}

// ---- the model ----

/** One operation of a transaction, as the change feed shows it. */
export type ModelChange =
  | { readonly tsn: number; readonly collection: string; readonly id: string; readonly op: 'put' | 'patch' | 'delete'; readonly rev: number }
  | { readonly tsn: number; readonly collection: string; readonly op: 'create_collection' | 'drop_collection' };

export class HttpModel {
  private constructor(
    readonly store: DocumentModel,
    private readonly states: Map<string, CollectionState>,
    /** Every transaction's changes, by TSN - 1: every TSN is one transaction. */
    private readonly history: ModelChange[][],
  ) {}

  static empty(): HttpModel {
    return new HttpModel(new DocumentModel(), new Map(), []);
  }

  /** An independent copy: what-if evaluation of concurrent requests at each point of their order. */
  clone(): HttpModel {
    const states = new Map([...this.states].map(([name, state]) => [name, { ...state, fields: new Map(state.fields), labelFamilies: new Map(state.labelFamilies) }]));
    return new HttpModel(this.store.copy(), states, [...this.history]);
  }

  private record(tsn: number, changes: ModelChange[]): void {
    if (this.history.length !== tsn - 1) throw new Error(`model: transaction ${tsn} after ${this.history.length}`);
    this.history.push(changes);
  }

  get tsn(): number {
    return this.store.tsn;
  }

  collectionNames(): string[] {
    return [...this.states.keys()].sort();
  }

  liveIds(collection: string): string[] {
    return this.states.has(collection) ? this.store.ids(collection) : [];
  }

  revisionOf(collection: string, id: string): number | undefined {
    return this.store.collections.get(collection)?.documents.get(id)?.revision;
  }

  // ---- collections ----

  /** PUT /collections/{name} with DEFINITIONS[index] (or a known-bad body). */
  createCollection(name: string, definition: DefinitionCase | { readonly raw: RawBodyName }): Expected {
    if ('raw' in definition) return RAW_BODIES[definition.raw].refusal;
    if (definition.invalid === 'shape') return refusal(CODE.COLLECTION_DEFINITION_INVALID);
    if (!COLLECTION_NAME.test(name)) return refusal(CODE.COLLECTION_NAME_INVALID);
    if (definition.invalid === 'content') return refusal(CODE.COLLECTION_DEFINITION_INVALID);
    const existing = this.states.get(name);
    if (existing) {
      if (!sameDefinition(existing.definition, definition)) return refusal(CODE.COLLECTION_EXISTS);
      return { status: 200, json: { name, created: false, tsn: existing.id } };
    }
    const tsn = this.tsn + 1;
    const body = (definition.body ?? {}) as JsonObject;
    return {
      status: 201,
      json: { name, created: true, tsn },
      location: `/collections/${encodeURIComponent(name)}`,
      commit: () => {
        this.record(tsn, [{ tsn, collection: name, op: 'create_collection' }]);
        this.store.create(name, {}, tsn);
        this.states.set(name, {
          name, id: tsn, definition,
          fieldFamiliesMax: (body.fieldFamiliesMax as number | undefined) ?? FIELD_FAMILIES_DEFAULT,
          columns: body.columns as Record<string, string> | undefined,
          fields: new Map(), labelFamilies: new Map(), nextFamily: FIRST_FIELD_FAMILY, writes: 0,
        });
      },
    };
  }

  dropCollection(name: string): Expected {
    if (!this.states.has(name)) return refusal(CODE.COLLECTION_NOT_FOUND);
    const tsn = this.tsn + 1;
    return {
      status: 200,
      json: { name, dropped: true, tsn },
      commit: () => {
        this.record(tsn, [{ tsn, collection: name, op: 'drop_collection' }]);
        this.store.drop(name, tsn);
        this.states.delete(name);
      },
    };
  }

  /** GET /collections/{name}: undefined if there is none (404). */
  info(name: string): InfoExpectation | undefined {
    const state = this.states.get(name);
    if (!state) return undefined;
    const body = (state.definition.body ?? {}) as JsonObject;
    const familyName = (n: number): string => `c${state.id}.${n}`;
    const fields = [...state.fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([field, family]) => ({ name: field, family: familyName(family) }));
    const families = [...new Set([META_FAMILY, ...state.fields.values()])].sort((a, b) => a - b).map(familyName);
    const info: JsonObject = { name, id: state.id };
    if (body.schema !== undefined) info.schema = body.schema;
    if (body.columns !== undefined) info.columns = body.columns;
    info.fields = fields;
    info.families = families;
    info.documents = this.store.collections.get(name)!.documents.size;
    return { info, documentsEstimateMin: this.store.collections.get(name)!.documents.size, documentsEstimateMax: state.writes };
  }

  // ---- documents ----

  /** PUT, PATCH or DELETE of one document. */
  write(request: WriteRequest): Expected {
    if ('router' in request.id) return routerRefusal(request.id.router);
    const { method, collection } = request;
    const id = request.id.id;
    const parsed = parseBody(request.body);
    if ('refusal' in parsed) return parsed.refusal;
    if (method !== 'DELETE' && parsed.value === undefined) return refusal(CODE.BODY_INVALID);
    // The body is read whole first: its shape and names, as well as its syntax, come before the rest.
    if (method !== 'DELETE' && documentFault(parsed.value)) return refusal(documentFault(parsed.value)!);
    const { ifMatch, ifNoneMatch } = request.conditions;
    if ((ifMatch && 'garbage' in ifMatch) || (ifNoneMatch && 'garbage' in ifNoneMatch)) return refusal(CODE.INVALID_ARGUMENT);
    const state = this.states.get(collection);
    if (!state) return refusal(CODE.COLLECTION_NOT_FOUND);
    if (idFault(id)) return refusal(idFault(id)!);
    const current = this.store.collections.get(collection)!.documents.get(id);
    const revision = current?.revision;
    const holds = (ifMatch === undefined || tagsMatch(ifMatch, revision, false)) && (ifNoneMatch === undefined || !tagsMatch(ifNoneMatch, revision, false));
    if (!holds) return refusal(CODE.DOCUMENT_CONFLICT);
    let document: JsonObject | undefined;
    if (method === 'PUT') {
      document = normal(parsed.value as JsonObject);
    } else {
      if (!current) return refusal(CODE.DOCUMENT_NOT_FOUND);
      if (method === 'PATCH') {
        const outcome = this.store.plan([{ op: 'patch', collection, id, patch: parsed.value as JsonObject }]);
        document = 'changes' in outcome ? outcome.changes[0]!.document : undefined;
      }
    }
    if (document !== undefined) {
      if (state.definition.accepts && !state.definition.accepts(document)) return refusal(CODE.DOCUMENT_SCHEMA);
      if (documentFault(document)) return refusal(documentFault(document)!);
    }
    const created = method === 'PUT' && current === undefined;
    return this.committed(state, method.toLowerCase() as WriteOp, id, document, created ? 201 : 200);
  }

  /** POST: a new document under an id the server makes up; `commitWithId` then takes that id. */
  post(collection: string, body: Body): Expected & { readonly commitWithId?: (id: string) => void } {
    const parsed = parseBody(body);
    if ('refusal' in parsed) return parsed.refusal;
    if (parsed.value === undefined) return refusal(CODE.BODY_INVALID);
    if (documentFault(parsed.value)) return refusal(documentFault(parsed.value)!);
    const state = this.states.get(collection);
    if (!state) return refusal(CODE.COLLECTION_NOT_FOUND);
    const document = normal(parsed.value as JsonObject);
    if (state.definition.accepts && !state.definition.accepts(document)) return refusal(CODE.DOCUMENT_SCHEMA);
    const tsn = this.tsn + 1;
    return { status: 201, etag: `"${tsn}"`, commitWithId: (id) => this.apply(state, tsn, [{ op: 'put', id, document }]) };
  }

  private committed(state: CollectionState, op: WriteOp, id: string, document: JsonObject | undefined, status: number): Expected {
    const tsn = this.tsn + 1;
    return {
      status,
      json: { id, rev: tsn, tsn },
      etag: `"${tsn}"`,
      ...(status === 201 && { location: documentPath(state.name, id) }),
      commit: () => this.apply(state, tsn, [{ op, id, document }]),
    };
  }

  /** One transaction of writes to one collection, in order. */
  private apply(state: CollectionState, tsn: number, writes: readonly { op: WriteOp; id: string; document: JsonObject | undefined }[]): void {
    this.record(tsn, writes.map(({ op, id }) => ({ tsn, collection: state.name, id, op, rev: tsn })));
    this.store.apply(writes.map(({ id, document }) => ({ collection: state.name, id, document })), tsn);
    state.writes += writes.length;
    for (const { document } of writes) for (const field of Object.keys(document ?? {})) this.assign(state, field);
  }

  /** A new field's family, as the catalog gives it: its column's, a new one, or overflow. */
  private assign(state: CollectionState, field: string): void {
    if (state.fields.has(field)) return;
    const label = state.columns && Object.hasOwn(state.columns, field) ? state.columns[field] : undefined;
    const known = label === undefined ? undefined : state.labelFamilies.get(label);
    const families = state.nextFamily - FIRST_FIELD_FAMILY;
    const spread = families === 0 ? OVERFLOW_FAMILY : FIRST_FIELD_FAMILY + (state.fields.size % families); // Field numbers start at 1.
    const family = known ?? (families < state.fieldFamiliesMax ? state.nextFamily : spread);
    state.fields.set(field, family);
    if (family >= FIRST_FIELD_FAMILY) state.nextFamily = Math.max(state.nextFamily, family + 1);
    if (label !== undefined && family !== OVERFLOW_FAMILY) state.labelFamilies.set(label, family);
  }

  /** GET (or HEAD) of one document. */
  read(collection: string, id: PathId, fields: readonly string[] | undefined, ifNoneMatch: TagHeader | undefined): Expected {
    if ('router' in id) return routerRefusal(id.router);
    if (!this.states.has(collection)) return refusal(CODE.COLLECTION_NOT_FOUND);
    if (idFault(id.id)) return refusal(idFault(id.id)!);
    const current = this.store.collections.get(collection)!.documents.get(id.id);
    if (!current) return refusal(CODE.DOCUMENT_NOT_FOUND);
    const etag = `"${current.revision}"`;
    if (ifNoneMatch !== undefined && tagsMatch(ifNoneMatch, current.revision, true)) return { status: 304, etag, text: '' };
    return { status: 200, etag, text: `${projectJson(current.document, fields)}\n` }; // Every JSON response ends with a newline.
  }

  /** One page of GET /collections/{c}/docs. */
  list(request: ListRequest): Expected & { readonly next?: string | null } {
    const { limit } = request;
    if (limit !== undefined && !(typeof limit === 'number' && Number.isInteger(limit) && limit >= 1 && limit <= LIST_LIMIT_MAX)) return refusal(CODE.INVALID_ARGUMENT);
    if (!this.states.has(request.collection)) return refusal(CODE.COLLECTION_NOT_FOUND);
    if (request.after !== undefined && idFault(request.after)) return refusal(idFault(request.after)!);
    const page = this.store.page(request.collection, {
      limit: (limit as number | undefined) ?? LIST_LIMIT_DEFAULT,
      ...(request.after !== undefined && { after: request.after }),
      ...(request.prefix !== undefined && { prefix: request.prefix }),
      ...(request.fields !== undefined && { fields: request.fields }),
    });
    const next = page.next ?? null;
    const documents = page.documents.map((d) => ({ id: d.id, rev: d.revision, doc: JSON.parse(d.json) as Json }));
    return { status: 200, json: { documents, next }, next };
  }
  // ---- the change feed ----

  /** One page of GET /changes (feed=normal): whole transactions after `since` until `limit` changes. */
  changes(request: ChangesRequest): Expected & { readonly last?: number } {
    const { since = 0, limit = CHANGES_LIMIT_DEFAULT, collection } = request;
    if (!(typeof since === 'number' && Number.isSafeInteger(since) && since >= 0)) return refusal(CODE.INVALID_ARGUMENT);
    if (!(typeof limit === 'number' && Number.isInteger(limit) && limit >= 1 && limit <= CHANGES_LIMIT_MAX)) return refusal(CODE.INVALID_ARGUMENT);
    const changes: ModelChange[] = [];
    let last = since;
    for (let tsn = since + 1; tsn <= this.tsn && changes.length < limit; tsn++) {
      changes.push(...this.history[tsn - 1]!.filter((change) => collection === undefined || change.collection === collection));
      last = tsn;
    }
    return { status: 200, json: { changes, last }, last };
  }

  // ---- bulk loads ----

  /**
   * POST /collections/{c}/bulk. Lines without the id field get ids the server makes up, which
   * the response does not name: `commit` takes them, in line order, once the test has found them.
   */
  bulk(request: BulkRequest): BulkExpected {
    if (request.contentType.split(';')[0]!.trim().toLowerCase() !== NDJSON) return refusal(CODE.UNSUPPORTED_MEDIA_TYPE);
    const idField = request.idField ?? 'id';
    if (idField.length === 0 || typeof request.atomic === 'string') return refusal(CODE.INVALID_ARGUMENT);
    const state = this.states.get(request.collection);
    if (!state) return refusal(CODE.COLLECTION_NOT_FOUND);
    const errors: { line: number; code: string }[] = [];
    const good: { id: string | undefined; document: JsonObject }[] = [];
    let lines = 0;
    request.lines.forEach((line, index) => {
      if (/^[ \t\r]*$/.test(line)) return; // Blank: skipped, not counted.
      lines++;
      const outcome = bulkLine(line, idField, state.definition.accepts);
      if ('code' in outcome) errors.push({ line: index + 1, code: outcome.code });
      else good.push(outcome);
    });
    const report = (stored: number, tsn: number | null): JsonObject => ({ lines, stored, failed: errors.length, tsn, errors, errorsTruncated: false });
    if (request.atomic === true && errors.length > 0) {
      const status = STATUS_OF_CODE[errors[0]!.code]!;
      return { status, code: errors[0]!.code, json: { ...errorBody(status, errors[0]!.code), errors, errorsTruncated: false } };
    }
    if (good.length === 0) return { status: 200, json: report(0, null), generated: 0 };
    const tsn = this.tsn + 1;
    return {
      status: 200,
      json: report(good.length, tsn),
      generated: good.filter((line) => line.id === undefined).length,
      named: good.flatMap((line) => (line.id === undefined ? [] : [line.id])),
      commitWithIds: (generated) => {
        const ids = [...generated];
        this.apply(state, tsn, good.map(({ id, document }) => ({ op: 'put' as const, id: id ?? ids.shift()!, document })));
      },
    };
  }
}

export const NDJSON = 'application/x-ndjson';
const CHANGES_LIMIT_DEFAULT = 1000;
const CHANGES_LIMIT_MAX = 10_000;

export interface ChangesRequest {
  readonly since?: number | string;
  readonly limit?: number | string;
  readonly collection?: string;
}

export interface BulkRequest {
  readonly collection: string;
  readonly contentType: string;
  /** Absent: the default, `id`. */
  readonly idField?: string;
  /** A string is a value the query refuses. */
  readonly atomic?: boolean | string;
  /** The body's lines, without their line ends. */
  readonly lines: readonly string[];
}

export type BulkExpected = Expected & {
  /** How many stored lines had no id field. */
  readonly generated?: number;
  /** The ids the stored lines named. */
  readonly named?: readonly string[];
  readonly commitWithIds?: (generated: readonly string[]) => void;
};

/** One NDJSON line: the document to store under its id (undefined: generated), or why it is refused. */
function bulkLine(line: string, idField: string, accepts: ((document: JsonObject) => boolean) | undefined): { id: string | undefined; document: JsonObject } | { code: string } {
  let value: Json;
  try {
    value = JSON.parse(line) as Json;
  } catch {
    return { code: CODE.BODY_INVALID };
  }
  if (!isObject(value)) return { code: CODE.DOCUMENT_INVALID };
  const id = Object.hasOwn(value, idField) ? value[idField] : undefined;
  if (Object.hasOwn(value, idField) && typeof id !== 'string') return { code: CODE.ID_INVALID };
  if (typeof id === 'string' && idFault(id)) return { code: idFault(id)! };
  if (documentFault(value)) return { code: documentFault(value)! };
  if (accepts && !accepts(value)) return { code: CODE.DOCUMENT_SCHEMA };
  return { id: id as string | undefined, document: value };
}
