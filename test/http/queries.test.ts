// The index and query routes over HTTP: status codes, coded errors, documents spliced in as
// stored (1.0 stays 1.0, big numbers keep their digits), bookmarks, counts by group.

import t from 'tap';
import { openApp } from '../helpers/app.js';

const json = (body: unknown) => ({ payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

t.test('indexes and queries over HTTP', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  const created = await app.inject({ method: 'PUT', url: '/collections/c/indexes/by_sub', ...json({ fields: ['sub', { score: 'desc' }] }) });
  t.equal(created.statusCode, 201, created.body);
  t.match(created.json(), { name: 'by_sub', state: 'ready', created: true });
  t.equal(created.headers['location'], '/collections/c/indexes/by_sub');
  t.equal((await app.inject({ method: 'PUT', url: '/collections/c/indexes/by_sub', ...json({ fields: ['sub', { score: 'desc' }] }) })).statusCode, 200);
  t.match((await app.inject({ method: 'PUT', url: '/collections/c/indexes/by_sub', ...json({ fields: ['sub'] }) })).json(), { code: 'DOCKET_ERR_INDEX_EXISTS' });
  t.match((await app.inject({ method: 'PUT', url: '/collections/c/indexes/x', ...json({ fields: 'sub' }) })).json(), { statusCode: 400, code: 'DOCKET_ERR_INDEX_DEFINITION_INVALID' });
  t.match((await app.inject({ method: 'GET', url: '/collections/c/indexes/nope' })).json(), { statusCode: 404, code: 'DOCKET_ERR_INDEX_NOT_FOUND' });
  const texts = ['{"sub":"a","score":1.0}', '{"sub":"a","score":12345678901234567890123}', '{"sub":"b","score":3}', '{"sub":"a","score":-2}'];
  for (const [i, text] of texts.entries()) {
    const put = await app.inject({ method: 'PUT', url: `/collections/c/docs/d${i}`, payload: text, headers: { 'content-type': 'application/json' } });
    t.equal(put.statusCode, 201);
  }
  const first = await app.inject({ method: 'POST', url: '/collections/c/find', ...json({ selector: { sub: 'a' }, limit: 2 }) });
  t.equal(first.statusCode, 200, first.body);
  t.ok(first.body.includes('"doc":{"sub":"a","score":12345678901234567890123}'), 'a document goes out as stored');
  const page1 = first.json() as { documents: { id: string }[]; bookmark: string; index: string };
  t.same(page1.documents.map((d) => d.id), ['d1', 'd0']);
  t.equal(page1.index, 'by_sub');
  const second = (await app.inject({ method: 'POST', url: '/collections/c/find', ...json({ selector: { sub: 'a' }, limit: 2, bookmark: page1.bookmark }) })).json() as { documents: { id: string }[]; bookmark: string | null };
  t.same(second.documents.map((d) => d.id), ['d3']);
  t.equal(second.bookmark, null);
  const refused = await app.inject({ method: 'POST', url: '/collections/c/find', ...json({ selector: { score: { $gt: 0 } } }) });
  t.equal(refused.statusCode, 400);
  t.match(refused.json(), { code: 'DOCKET_ERR_QUERY_NO_INDEX', message: /\["score"\]/ });
  t.match((await app.inject({ method: 'POST', url: '/collections/c/find', ...json({ selector: { sub: { $like: 'a' } } }) })).json(), { statusCode: 400, code: 'DOCKET_ERR_QUERY_INVALID' });
  t.match((await app.inject({ method: 'POST', url: '/collections/c/find', payload: '{"selector":', headers: { 'content-type': 'application/json' } })).json(), { statusCode: 400 });
  const explain = await app.inject({ method: 'POST', url: '/collections/c/explain', ...json({ selector: { sub: 'a', score: { $lt: 5 } }, execution_stats: true }) });
  t.match(explain.json(), { index: { name: 'by_sub' }, covered: true, execution_stats: { results: 2 } });
  const count = await app.inject({ method: 'POST', url: '/collections/c/count', ...json({ group_by: 'sub' }) });
  t.same(count.json(), { count: 4, index: 'by_sub', complete: true, documents_read: 0, groups: [{ value: 'a', count: 3 }, { value: 'b', count: 1 }] });
  const stats = (await app.inject({ method: 'GET', url: '/stats' })).json() as { indexes: { count: number } };
  t.equal(stats.indexes.count, 1);
  t.equal((await app.inject({ method: 'DELETE', url: '/collections/c/indexes/by_sub' })).statusCode, 200);
  t.same((await app.inject({ method: 'GET', url: '/collections/c/indexes' })).json(), { indexes: [] });
});
