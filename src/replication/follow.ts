// A standby's catalog follows the records it replays. On a primary the catalog changes at
// sequencing (commit.ts hooks); a standby learns the same changes from the shipped record, just
// before its items go to the engine: a new collection (reads of it wait until its create is
// applied), a dropped one, newly numbered fields, each collection's live count, and indexes
// defined, changing state or dropped (the primary builds them; a standby only replays).
//
// The catalog items a transaction writes tell what changed: count items (one per collection a
// write touched, in nearly every record) are read in place; only a record with a create, a drop
// or a new field (rare once a collection's fields are known) is decoded whole.

import type { WriteBatch } from '../../storage/index.js';
import { ByteReader } from '../../storage/index.js';
import type { Outline } from '../documents/translate.js';
import { decodeTransaction } from '../documents/record.js';
import { CATALOG_FAMILY, DOCUMENT_COUNT_KEY_PREFIX } from '../documents/keys.js';
import { Collection, type CollectionDefinition } from '../catalog.js';
import type { IndexDefinition } from '../indexes.js';

const COUNT_PREFIX = DOCUMENT_COUNT_KEY_PREFIX[0]!;

export interface CatalogLearner {
  learn(id: number, name: string): void;
}

export function followCatalog(catalog: Map<string, Collection>, feed: CatalogLearner, applied: () => Promise<void>, outline: Outline, batch: WriteBatch, payload: Buffer): void {
  let structural = outline.creates.length > 0 || outline.drops.length > 0;
  let counts = false;
  for (let i = 0; i < batch.length && !structural; i++) {
    if (batch.families[i] !== CATALOG_FAMILY) continue;
    if (batch.keyArena[batch.keyStarts[i]!] === COUNT_PREFIX) counts = true;
    else structural = true;
  }
  if (structural) {
    applyStructure(catalog, feed, applied, payload);
    return;
  }
  if (!counts) return;
  for (let i = 0; i < batch.length; i++) {
    if (batch.families[i] !== CATALOG_FAMILY || batch.keyArena[batch.keyStarts[i]!] !== COUNT_PREFIX) continue;
    const id = batch.keyArena.readUIntBE(batch.keyStarts[i]! + 1, 6);
    const collection = byId(catalog, id);
    const start = batch.valueStarts[i]!;
    if (collection) collection.documents = new ByteReader(batch.valueSources[i]!, start, start + batch.valueLengths[i]!, 'document count').varint();
  }
}

function applyStructure(catalog: Map<string, Collection>, feed: CatalogLearner, applied: () => Promise<void>, payload: Buffer): void {
  for (const op of decodeTransaction(payload).ops) {
    if (op.kind === 'create') {
      const collection = new Collection(JSON.parse(op.definition) as CollectionDefinition);
      collection.applied = applied();
      collection.applied.catch(() => undefined);
      catalog.set(op.name, collection);
      feed.learn(op.collectionId, op.name);
    } else if (op.kind === 'drop') {
      const collection = catalog.get(op.name);
      if (collection && collection.id === op.collectionId) {
        collection.dropped = true;
        catalog.delete(op.name);
      }
    } else if (op.kind === 'write') {
      const collection = byId(catalog, op.collectionId);
      if (collection) for (const field of op.assignments) collection.add(field);
    } else if (op.kind === 'count') {
      const collection = byId(catalog, op.collectionId);
      if (collection) collection.documents = op.documents;
    } else if (op.kind === 'index') {
      // Defined, or its state changed (building -> ready or failed): queries use it once ready.
      byId(catalog, op.collectionId)?.setIndex(op.name, JSON.parse(op.definition) as IndexDefinition);
    } else if (op.kind === 'dropIndex') {
      byId(catalog, op.collectionId)?.setIndex(op.name, undefined);
    }
  }
}

function byId(catalog: Map<string, Collection>, id: number): Collection | undefined {
  for (const collection of catalog.values()) if (collection.id === id) return collection;
  return undefined;
}
