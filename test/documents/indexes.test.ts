// Secondary indexes through the store: definitions, maintenance by every kind of write in the
// same transaction, unique indexes under concurrent writers, background builds, reopen, and the
// queries (find, bookmark, count by group) that use them. auditIndexes walks documents and
// index families and must find them in exact agreement after each step.

import t from 'tap';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { DocumentStore } from '../../src/store.js';
import type { Binlog } from '../../src/binlog/binlog.js';
import { decodeTransaction } from '../../src/documents/record.js';
import * as limits from '../../src/limits.js';

async function open(fileSystem = new SimFileSystem()): Promise<{ store: DocumentStore; fileSystem: SimFileSystem }> {
  return { store: await DocumentStore.open({ directory: '/db', fileSystem, epochCheckIntervalMs: 0 }), fileSystem };
}

const ids = (result: { documents: { id: string }[] }): string[] => result.documents.map((d) => d.id);

t.test('index definitions: create, idempotent create, conflicting create, list, drop, coded errors', async (t) => {
  const { store } = await open();
  t.teardown(() => store.close());
  await store.createCollection('c');
  const created = await store.createIndex('c', 'by_a', { fields: ['a', { b: 'desc' }] });
  t.equal(created.created, true);
  t.match(created.index, { name: 'by_a', state: 'ready', unique: false, fields: [{ field: 'a', order: 'asc' }, { field: 'b', order: 'desc' }] });
  t.equal((await store.createIndex('c', 'by_a', { fields: ['a', { b: 'desc' }] })).created, false, 'the same definition again is a no-op');
  await t.rejects(store.createIndex('c', 'by_a', { fields: ['a'] }), { code: 'DOCKET_ERR_INDEX_EXISTS' });
  await t.rejects(store.createIndex('c', 'bad name', { fields: ['a'] }), { code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  await t.rejects(store.createIndex('c', 'x', { fields: [] }), { code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  await t.rejects(store.createIndex('c', 'x', { fields: ['a', 'a'] }), { code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  await t.rejects(store.createIndex('c', 'x', { fields: [{ a: 'up' }] }), { code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  await t.rejects(store.createIndex('c', 'x', { fields: ['a..b'] }), { code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  await t.rejects(store.createIndex('c', 'x', { fields: Array.from({ length: 9 }, (_, i) => `f${i}`) }), { code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  await t.rejects(store.createIndex('c', 'x', { fields: ['a'], unique: 'yes' }), { code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  await t.rejects(store.createIndex('nope', 'x', { fields: ['a'] }), { code: 'DOCKET_ERR_COLLECTION_NOT_FOUND' });
  for (let i = 1; i < 8; i++) await store.createIndex('c', `i${i}`, { fields: [`f${i}`] });
  await t.rejects(store.createIndex('c', 'i8', { fields: ['g'] }), { code: 'DOCKET_ERR_COLLECTION_LIMIT' }, 'at most 8 indexes');
  t.equal(store.listIndexes('c').length, 8);
  await store.dropIndex('c', 'i7');
  await t.rejects(store.dropIndex('c', 'i7'), { code: 'DOCKET_ERR_INDEX_NOT_FOUND' });
  t.equal(store.listIndexes('c').length, 7);
  t.same(await store.auditIndexes(), []);
});

t.test('writes keep indexes exact: put, replace, patch touching and not touching, delete, batch, JSON Patch', async (t) => {
  const { store, fileSystem } = await open();
  await store.createCollection('c');
  await store.createIndex('c', 'by_author', { fields: ['author', { score: 'desc' }] });
  await store.createIndex('c', 'by_nested', { fields: ['user.name'] });
  await store.put('c', 'd1', { author: 'ann', score: 5, user: { name: 'x' } });
  await store.put('c', 'd2', { author: 'bob', score: 7 });
  await store.put('c', 'd3', { author: 'ann', score: 9, user: { name: 'y' } });
  t.same(await store.auditIndexes(), []);
  await store.put('c', 'd1', { author: 'cat', score: 5 }); // replace
  await store.patch('c', 'd2', { title: 'untouched index fields' });
  await store.patch('c', 'd3', { score: 1, user: { name: 'z' } });
  await store.delete('c', 'd2');
  await store.batch([
    { op: 'put', collection: 'c', id: 'd4', document: { author: 'ann', score: 2 } },
    { op: 'patch', collection: 'c', id: 'd4', patch: { score: 3 } },
    { op: 'put', collection: 'c', id: 'd5', document: { author: 'dan' } },
    { op: 'delete', collection: 'c', id: 'd5' },
  ]);
  t.same(await store.auditIndexes(), []);
  t.same(ids(await store.find('c', { selector: { author: 'ann' } })), ['d4', 'd3'], 'score descending within the author');
  t.same(ids(await store.find('c', { selector: { 'user.name': { $gte: 'y' } } })), ['d3']);
  await store.close();
  const reopened = (await open(fileSystem)).store;
  t.teardown(() => reopened.close());
  t.same(await reopened.auditIndexes(), [], 'exact after reopen');
  t.same(ids(await reopened.find('c', { selector: { author: 'ann' }, sort: [{ score: 'desc' }] })), ['d4', 'd3']);
  t.same(ids(await reopened.find('c', { selector: { author: 'ann' }, sort: [{ score: 'asc' }] })), ['d3', 'd4'], 'a reverse scan gives the opposite order');
  await reopened.dropCollection('c');
  await reopened.createCollection('c');
  t.same(reopened.listIndexes('c'), [], 'a dropped collection takes its indexes with it');
  t.same(await reopened.auditIndexes(), []);
});

t.test('a unique index refuses a conflicting write with a coded 409, also between concurrent writers', async (t) => {
  const { store } = await open();
  t.teardown(() => store.close());
  await store.createCollection('u');
  await store.createIndex('u', 'email', { fields: ['email'], unique: true });
  await store.put('u', 'a', { email: 'x@y' });
  await t.rejects(store.put('u', 'b', { email: 'x@y' }), { code: 'DOCKET_ERR_INDEX_UNIQUE_CONFLICT' });
  await store.put('u', 'a', { email: 'x@y', more: 1 }, {}); // the holder may rewrite itself
  await store.put('u', 'c', {}); // lacking the field never conflicts
  await store.put('u', 'd', {});
  // Concurrent writers of one value: exactly one wins.
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.put('u', `w${i}`, { email: 'same@z' })));
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one of ten concurrent writers wins');
  t.ok(results.every((r) => r.status === 'fulfilled' || (r.reason as { code: string }).code === 'DOCKET_ERR_INDEX_UNIQUE_CONFLICT'));
  // A value released by a pending write can be taken by the next.
  const move = store.patch('u', 'a', { email: 'moved@y' });
  const take = store.put('u', 'e', { email: 'x@y' });
  await Promise.all([move, take]);
  // Within one batch: two documents with one value conflict.
  await t.rejects(store.batch([{ op: 'put', collection: 'u', id: 'f', document: { email: 'q' } }, { op: 'put', collection: 'u', id: 'g', document: { email: 'q' } }]), { code: 'DOCKET_ERR_INDEX_UNIQUE_CONFLICT' });
  t.same(await store.auditIndexes(), []);
  t.equal((await store.count('u', { selector: { email: 'x@y' } })).count, 1);
});

t.test('an index created on a non-empty collection builds in the background while writes go on', async (t) => {
  const { store, fileSystem } = await open();
  await store.createCollection('c');
  await store.batch(Array.from({ length: 1200 }, (_, i) => ({ op: 'put' as const, collection: 'c', id: `d${String(i).padStart(5, '0')}`, document: { n: i % 37, s: `v${i % 5}` } })));
  const created = await store.createIndex('c', 'by_n', { fields: ['n'] });
  t.equal(created.index['state'], 'building');
  await t.rejects(store.find('c', { selector: { n: 3 } }), { code: 'DOCKET_ERR_QUERY_NO_INDEX', message: /not ready yet: by_n/ }, 'queries do not use it until it is ready');
  const writes = [];
  for (let i = 0; i < 100; i++) writes.push(store.put('c', `d${String(i * 7).padStart(5, '0')}`, { n: 1000 + i }));
  for (let i = 0; i < 30; i++) writes.push(store.delete('c', `d${String(i * 11 + 3).padStart(5, '0')}`));
  await Promise.all(writes);
  await store.indexBuildsIdle();
  t.equal(store.indexInfo('c', 'by_n')['state'], 'ready');
  t.same(await store.auditIndexes(), []);
  const all = await store.count('c', { selector: { n: { $gte: 0 } } });
  t.equal(all.count, 1200 - 30);
  // A unique index over duplicate values fails its build, and says why.
  await store.createIndex('c', 'u_s', { fields: ['s'], unique: true });
  await store.indexBuildsIdle();
  t.match(store.indexInfo('c', 'u_s'), { state: 'failed', error: /unique index u_s/ });
  await store.dropIndex('c', 'u_s');
  // A build cut short by a close starts again at the next open.
  await store.createIndex('c', 'by_s', { fields: ['s', 'n'] });
  await store.close();
  const reopened = (await open(fileSystem)).store;
  t.teardown(() => reopened.close());
  await reopened.indexBuildsIdle();
  t.equal(reopened.indexInfo('c', 'by_s')['state'], 'ready');
  t.same(await reopened.auditIndexes(), []);
  const groups = await reopened.count('c', { selector: {}, group_by: 's' });
  t.equal(groups.documents_read, 0, 'count by group reads no document');
  t.equal(groups.groups!.reduce((sum, g) => sum + g.count, 0), 1170);
  t.same(groups.groups!.map((g) => (g.missing ? 'missing' : g.value)), ['missing', 'v0', 'v1', 'v2', 'v3', 'v4'], 'the replaced documents lack s: their group comes first');
  t.equal(groups.groups![0]!.count, (await reopened.count('c', { selector: { s: { $exists: false } } })).count);
});

t.test('find: operators, ranges, sort, limit and a bookmark that resumes exactly; explain; bad queries', async (t) => {
  const { store } = await open();
  t.teardown(() => store.close());
  await store.createCollection('q');
  await store.createIndex('q', 'sub_time', { fields: ['sub', 'time'] });
  const docs = Array.from({ length: 60 }, (_, i) => ({ op: 'put' as const, collection: 'q', id: `k${i}`, document: { sub: i % 3 === 0 ? 'a' : 'b', time: 1000 - i, score: i } }));
  await store.batch(docs);
  const wanted = docs.filter((d) => d.document.sub === 'a' && d.document.time >= 960 && d.document.time < 990).sort((x, y) => x.document.time - y.document.time).map((d) => d.id);
  const pages: string[] = [];
  let bookmark: string | undefined;
  do {
    const page = await store.find('q', { selector: { sub: 'a', time: { $gte: 960, $lt: 990 } }, sort: ['time'], limit: 3, ...(bookmark ? { bookmark } : {}) });
    t.equal(page.index, 'sub_time');
    pages.push(...ids(page));
    bookmark = page.bookmark;
  } while (bookmark);
  t.same(pages, wanted, 'the pages together are the answer, in order, each document once');
  const explain = await store.explain('q', { selector: { sub: 'a', time: { $gt: 990 } }, execution_stats: true });
  t.match(explain, { index: { name: 'sub_time' }, covered: true, execution_stats: { results: 4 } });
  t.same(ids(await store.find('q', { selector: { sub: { $in: ['a', 'b'] }, time: 999 } })), ['k1']);
  t.same(ids(await store.find('q', { selector: { sub: 'a', $or: [{ time: 1000 }, { score: 3 }] } })), ['k3', 'k0']);
  t.same(ids(await store.find('q', { selector: { score: { $lt: 2 } }, allow_scan: true })), ['k0', 'k1'], 'a scan, when allowed');
  t.same((await store.find('q', { selector: { sub: 'a', time: 1000 }, fields: ['score'] })).documents[0]!.json, '{"score":0}');
  await t.rejects(store.find('q', { selector: { score: 3 } }), { code: 'DOCKET_ERR_QUERY_NO_INDEX', message: /\["score"\]/ }, 'names the index that would serve it');
  await t.rejects(store.find('q', { selector: { sub: 'a' }, sort: ['score'] }), { code: 'DOCKET_ERR_QUERY_NO_INDEX' });
  for (const bad of [
    { selector: { a: { $regex: 'x' } } },
    { selector: { $nor: [] } },
    { selector: { a: { $in: 'x' } } },
    { selector: { a: { $in: Array.from({ length: 257 }, (_, i) => i) } } },
    { selector: { a: { $exists: 1 } } },
    { selector: { $and: Array.from({ length: 65 }, (_, i) => ({ [`f${i}`]: 1 })) } },
    { selector: { $or: [{ $or: [{ $or: [{ $or: [{ $or: [{ $or: [{ $or: [{ $or: [{ a: 1 }] }] }] }] }] }] }] }] } },
    { selector: [] },
    { selector: {}, limit: 0 },
    { selector: {}, bookmark: 'not a bookmark' },
    { selector: {}, surprise: true },
  ]) {
    await t.rejects(store.find('q', bad), { code: 'DOCKET_ERR_QUERY_INVALID' }, JSON.stringify(bad).slice(0, 60));
  }
});

t.test('the record: a write to a collection without indexes carries no index op; with one, only the keys that move', async (t) => {
  const { store } = await open();
  t.teardown(() => store.close());
  const binlog = (store as unknown as { binlog: Binlog }).binlog;
  const kinds = async (tsn: number): Promise<string[]> => {
    for await (const record of binlog.read(tsn, { throughTsn: tsn })) return decodeTransaction(record.payload).ops.map((op) => op.kind);
    throw new Error(`no record ${tsn}`);
  };
  await store.createCollection('plain');
  await store.createCollection('indexed');
  await store.createIndex('indexed', 'by_a', { fields: ['a'] });
  t.same(await kinds((await store.put('plain', 'x', { a: 1, b: 2 })).tsn), ['write', 'count']);
  t.same(await kinds((await store.put('indexed', 'x', { a: 1, b: 2 })).tsn), ['write', 'entries', 'count']);
  t.same(await kinds((await store.patch('indexed', 'x', { b: 3 })).tsn), ['write', 'count'], 'a patch that leaves the indexed field alone moves no key');
  t.same(await kinds((await store.patch('indexed', 'x', { a: 2 })).tsn), ['write', 'entries', 'count']);
  // A key past INDEX_KEY_SIZE_BYTES_MAX is refused, and nothing is written.
  const before = store.lastTsn;
  await t.rejects(store.put('indexed', 'big', { a: 'x'.repeat(limits.INDEX_KEY_SIZE_BYTES_MAX) }), { code: 'DOCKET_ERR_INDEX_KEY_TOO_LARGE' });
  t.equal(store.lastTsn, before, 'the refused write took no TSN');
  t.equal(await store.get('indexed', 'big'), undefined);
  await store.put('plain', 'big', { a: 'x'.repeat(limits.INDEX_KEY_SIZE_BYTES_MAX) });
  t.same(await store.auditIndexes(), []);
});
