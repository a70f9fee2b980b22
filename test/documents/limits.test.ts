// The store's bounds on collections: COLLECTIONS_MAX of them, and FAMILIES_RESERVED_MAX column
// families reserved among them (2 + fieldFamiliesMax each), so that a write never finds the
// engine out of families. Both refuse with 409 DOCKET_ERR_COLLECTION_LIMIT and change nothing.

import t from 'tap';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { DocumentStore } from '../../src/store.js';
import * as limits from '../../src/limits.js';

const name = (i: number): string => `c${String(i).padStart(5, '0')}`;

t.test(`a store holds ${limits.COLLECTIONS_MAX} collections, and refuses one more`, async (t) => {
  const store = await DocumentStore.open({ directory: '/db', fileSystem: new SimFileSystem(), epochCheckIntervalMs: 0 });
  t.teardown(() => store.close());
  for (let i = 0; i < limits.COLLECTIONS_MAX; i++) await store.createCollection(name(i));
  const tsn = store.lastTsn;
  await t.rejects(store.createCollection('one_more'), { code: 'DOCKET_ERR_COLLECTION_LIMIT', message: new RegExp(`at most ${limits.COLLECTIONS_MAX} collections`) });
  t.equal(store.lastTsn, tsn, 'the refused create logged nothing');
  t.equal(store.listCollections().length, limits.COLLECTIONS_MAX);
  await store.put(name(limits.COLLECTIONS_MAX - 1), 'doc', { a: 1, b: 2, c: 3, d: 4, e: 5 });
  t.equal((await store.get(name(limits.COLLECTIONS_MAX - 1), 'doc'))!.json, '{"a":1,"b":2,"c":3,"d":4,"e":5}', 'the last collection takes writes');
  t.equal(store.collectionInfo(name(limits.COLLECTIONS_MAX - 1)).documents, 1);
});

t.test('collections with many field families reach the family reservation first', async (t) => {
  const store = await DocumentStore.open({ directory: '/db', fileSystem: new SimFileSystem(), epochCheckIntervalMs: 0 });
  t.teardown(() => store.close());
  const each = 2 + limits.FIELD_FAMILIES_PER_COLLECTION_MAX;
  const fit = Math.floor(limits.FAMILIES_RESERVED_MAX / each);
  for (let i = 0; i < fit; i++) await store.createCollection(name(i), { fieldFamiliesMax: limits.FIELD_FAMILIES_PER_COLLECTION_MAX });
  await t.rejects(store.createCollection('wide', { fieldFamiliesMax: limits.FIELD_FAMILIES_PER_COLLECTION_MAX }), { code: 'DOCKET_ERR_COLLECTION_LIMIT', message: /column families/ });
  const left = limits.FAMILIES_RESERVED_MAX - fit * each;
  if (left >= 2) await store.createCollection('narrow', { fieldFamiliesMax: left - 2 }); // What is left still fits a narrower one.
  t.equal(store.listCollections().length, fit + (left >= 2 ? 1 : 0));
});
