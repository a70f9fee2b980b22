// The document cache: whole documents by collection, id and revision. A hit must give exactly
// what assembling from the engine gives; a new revision is a new key; a dropped and re-created
// collection has a new id; the charge stays within the capacity; 0 turns it off.

import t from 'tap';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { DocumentStore, type StoreOptions } from '../../src/store.js';

async function open(options: Partial<StoreOptions> = {}): Promise<DocumentStore> {
  const store = await DocumentStore.open({ directory: '/db', fileSystem: new SimFileSystem(), epochCheckIntervalMs: 0, ...options });
  await store.createCollection('posts');
  return store;
}

t.test('a second read of the same revision is a hit with the same text; a new revision misses', async (t) => {
  const store = await open();
  t.teardown(() => store.close());
  await store.put('posts', 'a', JSON.parse('{"title":"x","n":[1,{"deep":true}],"__proto__":{"p":1}}'));
  const first = await store.get('posts', 'a');
  const second = await store.get('posts', 'a');
  t.same(second, first);
  t.match(store.stats().documentCache, { hits: 1, misses: 1, documents: 1 });
  t.equal((await store.get('posts', 'a', { fields: ['title'] }))!.json, '{"title":"x"}', 'projections bypass it');
  t.match(store.stats().documentCache, { hits: 1, misses: 1 });
  await store.patch('posts', 'a', { title: 'y' });
  t.equal((await store.get('posts', 'a'))!.json, '{"title":"y","n":[1,{"deep":true}],"__proto__":{"p":1}}');
  t.match(store.stats().documentCache, { hits: 1, misses: 2 });
  await store.delete('posts', 'a');
  t.equal(await store.get('posts', 'a'), undefined, 'a deleted document is not served from the cache');
  const listed = await store.list('posts');
  t.same(listed.documents, []);
});

t.test('a re-created collection does not see the old one\'s cached documents', async (t) => {
  const store = await open();
  t.teardown(() => store.close());
  await store.put('posts', 'a', { v: 'old' });
  t.equal((await store.get('posts', 'a'))!.json, '{"v":"old"}');
  await store.dropCollection('posts');
  await store.createCollection('posts');
  t.equal(await store.get('posts', 'a'), undefined);
  await store.put('posts', 'a', { v: 'new' });
  t.equal((await store.get('posts', 'a'))!.json, '{"v":"new"}');
});

t.test('the cache holds to its capacity, and 0 turns it off', async (t) => {
  const small = await open({ documentCacheBytes: 4096 });
  t.teardown(() => small.close());
  for (let i = 0; i < 50; i++) await small.put('posts', `d${i}`, { text: 'x'.repeat(100), i });
  for (let i = 0; i < 50; i++) t.equal((await small.get('posts', `d${i}`))!.json, `{"text":"${'x'.repeat(100)}","i":${i}}`);
  const stats = small.stats().documentCache;
  t.ok(stats.usageBytes <= 4096 && stats.documents > 0 && stats.documents < 50, `${stats.documents} documents in ${stats.usageBytes} of 4096 bytes`);
  const none = await open({ documentCacheBytes: 0 });
  t.teardown(() => none.close());
  await none.put('posts', 'a', { v: 1 });
  t.equal((await none.get('posts', 'a'))!.json, '{"v":1}');
  t.equal((await none.get('posts', 'a'))!.json, '{"v":1}');
  t.match(none.stats().documentCache, { hits: 0, misses: 2, documents: 0, usageBytes: 0 });
});
