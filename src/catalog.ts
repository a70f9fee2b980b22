// The catalog: every live collection, its definition, and which number and column family each
// of its top-level fields has. It lives in the engine's "catalog" family (keys.ts), changes only
// through transactions (so replay rebuilds it), and is held in memory for the commit pipeline.

import { createRequire } from 'node:module';
import type { ValidateFunction } from 'ajv';
import { ByteReader, type Engine } from '../storage/index.js';
import { DocketError, DocketErrorCode } from './errors.js';
import { decodeHeader } from './documents/header.js';
import { Index, type IndexDefinition } from './indexes.js';
import { CATALOG_FAMILY, COLLECTION_KEY_PREFIX, DOCUMENT_COUNT_KEY_PREFIX, FIELD_ASSIGNMENT_KEY_PREFIX, INDEX_DEFINITION_KEY_PREFIX, metaFamily, FIRST_FIELD_FAMILY_NUMBER, META_FAMILY_NUMBER, OVERFLOW_FAMILY_NUMBER, parseFieldAssignmentKey } from './documents/keys.js';
import { setOwn } from './documents/merge-patch.js';
import type { FieldAssignment } from './documents/record.js';
import * as limits from './limits.js';

// ajv is CommonJS; createRequire gives its constructor without default-import guesswork.
const Ajv2020 = createRequire(import.meta.url)('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js').default;
// ownProperties: `required`, `properties`, `dependentRequired` and the rest look at the
// document's own members only, never Object.prototype's (`constructor`, `toString`,
// `__proto__`...). Documents reach validate from JSON.parse, whose `__proto__` keys are own
// data properties (test/http/schema-own-properties.test.ts).
const ajv = new Ajv2020({ strict: false, allErrors: false, ownProperties: true });

/** What a client gives when creating a collection. */
export interface CollectionOptions {
  /** A JSON Schema (2020-12) every document must satisfy. */
  readonly schema?: Record<string, unknown>;
  /** Field name → column label: fields with one label share one column family. */
  readonly columns?: Record<string, string>;
  /** Field families before fields share the overflow family. */
  readonly fieldFamiliesMax?: number;
}

export interface CollectionDefinition extends CollectionOptions {
  readonly id: number;
  readonly name: string;
  readonly fieldFamiliesMax: number;
}

export interface FieldInfo {
  readonly name: string;
  readonly fieldNumber: number;
  readonly familyNumber: number;
}

const SCHEMA_SIZE_BYTES_MAX = 64 * 1024;

export class Collection {
  readonly fields = new Map<string, FieldInfo>();
  readonly fieldsByNumber = new Map<number, FieldInfo>();
  private readonly labelFamilies = new Map<string, number>();
  private nextFieldNumber = 1;
  private nextFamilyNumber = FIRST_FIELD_FAMILY_NUMBER;
  readonly validate: ValidateFunction | undefined;
  /** Set when a drop is sequenced: later plans against this object are refused. */
  dropped = false;
  /**
   * Live documents, exact, as the last sequenced transaction leaves them: the commit pipeline
   * moves it at sequencing and logs it in every transaction that writes the collection.
   */
  documents = 0;
  /**
   * Settles when the create is applied: the catalog names a collection from its sequencing on,
   * but its families exist only once the create reaches the engine, so reads and writes of a
   * collection this new wait for it. Resolved for collections loaded at open.
   */
  applied: Promise<void> = Promise.resolve();
  /** Secondary indexes by name, as the last sequenced transaction leaves them (indexes.ts). */
  readonly indexes = new Map<string, Index>();
  /** The indexes writes keep (building or ready): empty for most collections, and then a write does no index work. */
  maintained: readonly Index[] = [];
  /** Moves whenever an index is defined, changes state or is dropped: a write planned under another epoch is planned again. */
  indexEpoch = 0;

  constructor(readonly definition: CollectionDefinition) {
    this.validate = definition.schema ? compileSchema(definition.schema) : undefined;
  }

  get id(): number {
    return this.definition.id;
  }

  get name(): string {
    return this.definition.name;
  }

  /** Every family number this collection uses: meta, overflow if used, field families and index families. */
  familyNumbers(): number[] {
    const numbers = new Set([META_FAMILY_NUMBER]);
    for (const field of this.fields.values()) numbers.add(field.familyNumber);
    for (const index of this.indexes.values()) numbers.add(index.definition.familyNumber);
    return [...numbers].sort((a, b) => a - b);
  }

  /** Records an index's definition (from the catalog, or from a transaction being sequenced); undefined drops it. */
  setIndex(name: string, definition: IndexDefinition | undefined): void {
    if (definition) this.indexes.set(name, new Index(this.id, definition));
    else this.indexes.delete(name);
    this.maintained = [...this.indexes.values()].filter((index) => index.maintained);
    this.indexEpoch++;
  }

  /** Whether some index writes keep is unique (writes then take the collection's unique lock). */
  get hasUniqueIndex(): boolean {
    return this.maintained.some((index) => index.definition.unique);
  }

  /** Records a field (from the catalog, or from a transaction being sequenced). */
  add(field: FieldInfo): void {
    this.fields.set(field.name, field);
    this.fieldsByNumber.set(field.fieldNumber, field);
    this.nextFieldNumber = Math.max(this.nextFieldNumber, field.fieldNumber + 1);
    if (field.familyNumber >= FIRST_FIELD_FAMILY_NUMBER) this.nextFamilyNumber = Math.max(this.nextFamilyNumber, field.familyNumber + 1);
    const label = this.definition.columns?.[field.name];
    if (label !== undefined && field.familyNumber !== OVERFLOW_FAMILY_NUMBER) this.labelFamilies.set(label, field.familyNumber);
  }

  /**
   * Gives a new field its number and family, and records it. REQUIRES: called only while
   * sequencing a transaction (the assignment goes into its record), in TSN order.
   */
  assign(name: string): FieldAssignment {
    if (this.fields.size >= limits.FIELDS_PER_COLLECTION_MAX) {
      throw new DocketError(DocketErrorCode.COLLECTION_LIMIT, `collection ${this.name} has ${limits.FIELDS_PER_COLLECTION_MAX} distinct fields, the most it can have`);
    }
    const fieldNumber = this.nextFieldNumber;
    const field = { name, fieldNumber, familyNumber: this.familyFor(name, fieldNumber) };
    this.add(field);
    return field;
  }

  /**
   * A new field's family: its column label's if the label has one; else a new family while
   * there are fewer than fieldFamiliesMax; else the field families in turn, by field number,
   * so a document's fields spread evenly over a few families (the overflow family only when
   * fieldFamiliesMax is 0). Any mapping reads back right: it is logged with the field.
   */
  private familyFor(name: string, fieldNumber: number): number {
    const label = this.definition.columns?.[name];
    const known = label === undefined ? undefined : this.labelFamilies.get(label);
    if (known !== undefined) return known;
    const fieldFamilies = this.nextFamilyNumber - FIRST_FIELD_FAMILY_NUMBER;
    if (fieldFamilies < this.definition.fieldFamiliesMax) return this.nextFamilyNumber;
    return fieldFamilies === 0 ? OVERFLOW_FAMILY_NUMBER : FIRST_FIELD_FAMILY_NUMBER + ((fieldNumber - 1) % fieldFamilies);
  }
}

function compileSchema(schema: Record<string, unknown>): ValidateFunction {
  try {
    return ajv.compile(withOwnProto(schema) as Record<string, unknown>);
  } catch (error) {
    throw new DocketError(DocketErrorCode.COLLECTION_DEFINITION_INVALID, `the schema does not compile: ${(error as Error).message}`);
  }
}

const PROTO = '__proto__';
const PROTO_PATTERN = '^__proto__$';

/**
 * The schema as ajv is given it. ajv skips a `__proto__` entry of `properties` (against
 * pollution of its own objects), so a schema typing `__proto__` would judge nothing; such an
 * entry is compiled as the equivalent `patternProperties` entry `^__proto__$` (which counts
 * for additionalProperties and unevaluatedProperties the same way). `required` and
 * `dependentRequired` need nothing: ajv takes `__proto__` there as any other name. A copy:
 * the definition is logged as the client gave it.
 */
function withOwnProto(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withOwnProto);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) setOwn(copy, key, withOwnProto(value));
  const properties = copy['properties'];
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties) || !Object.hasOwn(properties, PROTO)) return copy;
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(properties)) if (key !== PROTO) setOwn(rest, key, value);
  const patterns: Record<string, unknown> = {};
  const given = copy['patternProperties'];
  if (typeof given === 'object' && given !== null) for (const [key, value] of Object.entries(given)) setOwn(patterns, key, value);
  const proto = (properties as Record<string, unknown>)[PROTO];
  patterns[PROTO_PATTERN] = Object.hasOwn(patterns, PROTO_PATTERN) ? { allOf: [patterns[PROTO_PATTERN], proto] } : proto;
  copy['properties'] = rest;
  copy['patternProperties'] = patterns;
  return copy;
}

/** Checks what a client asks for and gives the definition a create transaction logs. */
export function defineCollection(id: number, name: string, options: CollectionOptions): CollectionDefinition {
  const invalid = (message: string): DocketError => new DocketError(DocketErrorCode.COLLECTION_DEFINITION_INVALID, message);
  const { schema, columns } = options;
  if (schema !== undefined && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) throw invalid('schema must be a JSON object');
  if (schema !== undefined && JSON.stringify(schema).length > SCHEMA_SIZE_BYTES_MAX) throw invalid(`a schema is at most ${SCHEMA_SIZE_BYTES_MAX} bytes`);
  if (columns !== undefined && (typeof columns !== 'object' || columns === null || Array.isArray(columns))) throw invalid('columns must map field names to labels');
  for (const label of Object.values(columns ?? {})) if (typeof label !== 'string' || label.length === 0 || label.length > 64) throw invalid('a column label is a string of 1 to 64 characters');
  const fieldFamiliesMax = options.fieldFamiliesMax ?? limits.FIELD_FAMILIES_PER_COLLECTION_DEFAULT;
  if (!Number.isInteger(fieldFamiliesMax) || fieldFamiliesMax < 0 || fieldFamiliesMax > limits.FIELD_FAMILIES_PER_COLLECTION_MAX) {
    throw invalid(`fieldFamiliesMax must be an integer 0..${limits.FIELD_FAMILIES_PER_COLLECTION_MAX}`);
  }
  const definition: CollectionDefinition = { id, name, fieldFamiliesMax, ...(schema ? { schema } : {}), ...(columns ? { columns } : {}) };
  if (schema) compileSchema(schema);
  return definition;
}

/** Whether a create of an existing collection asks for the same thing (then it is a no-op). */
export function sameOptions(definition: CollectionDefinition, options: CollectionOptions): boolean {
  // A create that leaves fieldFamiliesMax out takes the collection's, whatever the default was when it was made.
  const wanted = defineCollection(definition.id, definition.name, { ...options, fieldFamiliesMax: options.fieldFamiliesMax ?? definition.fieldFamiliesMax });
  return JSON.stringify(wanted) === JSON.stringify(definition);
}

/** Reads every collection and field assignment from the catalog family. */
export async function loadCatalog(engine: Engine): Promise<Map<string, Collection>> {
  const byId = new Map<number, Collection>();
  for await (const { value } of engine.iterator(CATALOG_FAMILY, { prefix: COLLECTION_KEY_PREFIX })) {
    const collection = new Collection(JSON.parse(value.toString('utf8')) as CollectionDefinition);
    byId.set(collection.id, collection);
  }
  for await (const { key, value } of engine.iterator(CATALOG_FAMILY, { prefix: FIELD_ASSIGNMENT_KEY_PREFIX })) {
    const { collectionId, fieldName } = parseFieldAssignmentKey(key);
    const reader = new ByteReader(value, 0, value.length, 'field assignment');
    byId.get(collectionId)?.add({ name: fieldName, fieldNumber: reader.varint(), familyNumber: reader.varint() });
  }
  for await (const { key, value } of engine.iterator(CATALOG_FAMILY, { prefix: INDEX_DEFINITION_KEY_PREFIX })) {
    const definition = JSON.parse(value.toString('utf8')) as IndexDefinition;
    byId.get(key.readUIntBE(1, 6))?.setIndex(definition.name, definition);
  }
  const uncounted = new Set(byId.values());
  for await (const { key, value } of engine.iterator(CATALOG_FAMILY, { prefix: DOCUMENT_COUNT_KEY_PREFIX })) {
    const collection = byId.get(key.readUIntBE(1, 6));
    if (!collection) continue;
    collection.documents = new ByteReader(value, 0, value.length, 'document count').varint();
    uncounted.delete(collection);
  }
  // A collection no transaction has written since it was created has no count item, nor has one
  // last written by a build before record version 2: count its live headers once.
  for (const collection of uncounted) collection.documents = await countLive(engine, collection.id);
  return new Map([...byId.values()].map((collection) => [collection.name, collection]));
}

async function countLive(engine: Engine, collectionId: number): Promise<number> {
  let documents = 0;
  for await (const { value } of engine.iterator(metaFamily(collectionId))) if (!decodeHeader(value).deleted) documents++;
  return documents;
}
