// PATCH with `application/json-patch+json` (RFC 6902) through the HTTP API: one transaction that
// writes only the top-level fields the patch changes (read back from its binlog record), every
// failure a coded 4xx that leaves the document as it was, and the media type refused elsewhere.

import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { gzipSync } from 'node:zlib';
import { buildApp } from '../../server/app.js';
import type { Binlog } from '../../src/binlog/binlog.js';
import { decodeTransaction, type WriteOp } from '../../src/documents/record.js';
import * as limits from '../../src/limits.js';

const JSON_PATCH = 'application/json-patch+json';

async function send(app: FastifyInstance, method: 'GET' | 'PUT' | 'PATCH' | 'POST', url: string, body?: string | Buffer, type = 'application/json', headers: Record<string, string> = {}) {
  const response = await app.inject({ method, url, headers: { ...headers, ...(body === undefined ? {} : { 'content-type': type }) }, ...(body === undefined ? {} : { payload: body }) });
  return { status: response.statusCode, body: response.body, etag: response.headers.etag, json: () => JSON.parse(response.body) as Record<string, unknown> };
}

/** The write a transaction's binlog record holds. */
async function writeOf(app: FastifyInstance, tsn: number): Promise<WriteOp> {
  const binlog = (app.docket.store as unknown as { binlog: Binlog }).binlog;
  for await (const record of binlog.read(tsn, { throughTsn: tsn })) return decodeTransaction(record.payload).ops[0] as WriteOp;
  throw new Error(`no record for TSN ${tsn}`);
}

const DOCUMENT = '{"title":"Dune","big":9007199254740993,"tags":["sf","classic"],"ratings":{"n":2,"avg":4.50},"note":"\\u00e9"}';

t.test('a JSON Patch applies as one transaction that writes only the fields it changes', async (t) => {
  const directory = t.testdir();
  let app = await buildApp({ config: { dataDirectory: directory } });
  t.teardown(() => app.close());
  await app.docket.opened;
  t.equal((await send(app, 'PUT', '/collections/books', '{"schema":{"type":"object","required":["title"]}}')).status, 201);
  const put = await send(app, 'PUT', '/collections/books/docs/dune', DOCUMENT);
  t.equal(put.status, 201);

  const patch = JSON.stringify([
    { op: 'test', path: '/title', value: 'Dune' },
    { op: 'add', path: '/tags/1', value: 'desert' },
    { op: 'replace', path: '/ratings/n', value: 3 },
    { op: 'copy', from: '/title', path: '/sortTitle' },
    { op: 'remove', path: '/tags/2' },
  ]);
  const patched = await send(app, 'PATCH', '/collections/books/docs/dune', patch, JSON_PATCH, { 'if-match': put.etag! });
  t.equal(patched.status, 200, patched.body);
  const { tsn } = patched.json() as { tsn: number };
  t.equal(patched.etag, `"${tsn}"`);
  const after = await send(app, 'GET', '/collections/books/docs/dune');
  t.equal(after.body, '{"title":"Dune","big":9007199254740993,"tags":["sf","desert"],"ratings":{"n":3,"avg":4.50},"note":"\\u00e9","sortTitle":"Dune"}\n', 'fields the patch does not write keep their bytes; 4.50 in a written member keeps its text');

  const write = await writeOf(app, tsn);
  t.equal(write.action, 'patch');
  t.same(write.puts.map((p) => p.value.toString()).sort(), ['"Dune"', '["sf","desert"]', '{"n":3,"avg":4.50}'], 'only tags, ratings and the new sortTitle are written; title, only tested and copied from, is not');
  t.same(write.deletes, []);

  const removed = await send(app, 'PATCH', '/collections/books/docs/dune', '[{"op":"remove","path":"/note"},{"op":"move","from":"/sortTitle","path":"/sort"}]', JSON_PATCH);
  t.equal(removed.status, 200, removed.body);
  const second = await writeOf(app, (removed.json() as { tsn: number }).tsn);
  t.same(second.puts.map((p) => p.value.toString()), ['"Dune"'], 'a move writes its target');
  t.equal(second.deletes.length, 2, 'and deletes its source, as remove deletes its field');
  t.equal((await send(app, 'GET', '/collections/books/docs/dune')).body, '{"title":"Dune","big":9007199254740993,"tags":["sf","desert"],"ratings":{"n":3,"avg":4.50},"sort":"Dune"}\n', 'JSON responses end with a newline');

  const gzipped = await app.inject({ method: 'PATCH', url: '/collections/books/docs/dune', headers: { 'content-type': JSON_PATCH, 'content-encoding': 'gzip' }, payload: gzipSync('[{"op":"add","path":"/gz","value":1.0}]') });
  t.equal(gzipped.statusCode, 200, 'a JSON Patch body may come gzip-encoded, as a JSON body may');
  t.equal((await send(app, 'GET', '/collections/books/docs/dune?fields=gz')).body, '{"gz":1.0}\n');

  const setNull = await send(app, 'PATCH', '/collections/books/docs/dune', '[{"op":"replace","path":"/sort","value":null}]', JSON_PATCH);
  t.equal(setNull.status, 200);
  t.equal((await send(app, 'GET', '/collections/books/docs/dune?fields=sort')).body, '{"sort":null}\n', 'unlike a merge patch, a JSON Patch can set a value to null');

  // The patches' records replay to the same document (a close without a flush, as after a crash).
  const patchedText = (await send(app, 'GET', '/collections/books/docs/dune')).body;
  await app.docket.store.close({ flush: false });
  await app.close();
  app = await buildApp({ config: { dataDirectory: directory } });
  await app.docket.opened;
  t.equal((await send(app, 'GET', '/collections/books/docs/dune')).body, patchedText, 'the same bytes after replaying the binlog');
});

t.test('every failure is a coded 4xx and leaves the document as it was', async (t) => {
  const app = await buildApp({ config: { dataDirectory: t.testdir() } });
  t.teardown(() => app.close());
  await app.docket.opened;
  t.equal((await send(app, 'PUT', '/collections/books', '{"schema":{"type":"object","required":["title"]}}')).status, 201);
  const put = await send(app, 'PUT', '/collections/books/docs/dune', DOCUMENT);
  const before = await send(app, 'GET', '/collections/books/docs/dune');
  const tsnBefore = app.docket.store.lastTsn;

  const many = JSON.stringify(Array.from({ length: limits.JSON_PATCH_OPERATIONS_MAX + 1 }, () => ({ op: 'test', path: '/title', value: 'Dune' })));
  const cases: [string, string | Buffer, number, string, string?][] = [
    ['a failed test, after operations that would apply', '[{"op":"add","path":"/x","value":1},{"op":"test","path":"/title","value":"Emma"}]', 409, 'DOCKET_ERR_PATCH_TEST_FAILED'],
    ['a path that does not exist', '[{"op":"replace","path":"/ratings/missing","value":1}]', 409, 'DOCKET_ERR_PATCH_CONFLICT'],
    ['an index out of range', '[{"op":"add","path":"/tags/5","value":"x"}]', 409, 'DOCKET_ERR_PATCH_CONFLICT'],
    ['an unknown op', '[{"op":"merge","path":"/title"}]', 400, 'DOCKET_ERR_PATCH_INVALID'],
    ['not an array', '{"op":"remove","path":"/title"}', 400, 'DOCKET_ERR_PATCH_INVALID'],
    ['a bad pointer', '[{"op":"remove","path":"title"}]', 400, 'DOCKET_ERR_PATCH_INVALID'],
    [`more than ${limits.JSON_PATCH_OPERATIONS_MAX} operations`, many, 400, 'DOCKET_ERR_PATCH_INVALID'],
    ['not JSON', '[{"op":', 400, 'DOCKET_ERR_BODY_INVALID'],
    ['not UTF-8', Buffer.concat([Buffer.from('[{"op":"add","path":"/t","value":"'), Buffer.from([0xff]), Buffer.from('"}]')]), 400, 'DOCKET_ERR_BODY_INVALID'],
    ['the result breaks the schema', '[{"op":"remove","path":"/title"}]', 422, 'DOCKET_ERR_DOCUMENT_SCHEMA'],
    ['the result is not an object', '[{"op":"replace","path":"","value":[]}]', 400, 'DOCKET_ERR_DOCUMENT_INVALID'],
    ['the result is over the size limit', JSON.stringify([{ op: 'add', path: '/half', value: 'x'.repeat(limits.DOCUMENT_SIZE_BYTES_MAX / 2) }, { op: 'copy', from: '/half', path: '/other' }]), 413, 'DOCKET_ERR_LIMIT_EXCEEDED'],
    ['a field name over its limit', JSON.stringify([{ op: 'add', path: `/${'n'.repeat(limits.FIELD_NAME_SIZE_BYTES_MAX + 1)}`, value: 1 }]), 400, 'DOCKET_ERR_FIELD_NAME_INVALID'],
    ['a stale If-Match', '[{"op":"remove","path":"/note"}]', 412, 'DOCKET_ERR_DOCUMENT_CONFLICT', '"1"'],
  ];
  for (const [name, body, status, code, ifMatch] of cases) {
    const reply = await send(app, 'PATCH', '/collections/books/docs/dune', body, JSON_PATCH, ifMatch === undefined ? {} : { 'if-match': ifMatch });
    t.equal(reply.status, status, `${name}: ${reply.body.slice(0, 200)}`);
    t.equal(reply.json().code, code, name);
    t.type(reply.json().message, 'string');
  }
  const after = await send(app, 'GET', '/collections/books/docs/dune');
  t.equal(after.body, before.body, 'the document is as it was');
  t.equal(after.etag, put.etag, 'at the same revision');
  t.equal(app.docket.store.lastTsn, tsnBefore, 'and no transaction was logged');

  const missing = await send(app, 'PATCH', '/collections/books/docs/nope', '[]', JSON_PATCH);
  t.same([missing.status, missing.json().code], [404, 'DOCKET_ERR_DOCUMENT_NOT_FOUND'], 'a missing document is 404');
  const empty = await send(app, 'PATCH', '/collections/books/docs/dune', '[]', JSON_PATCH);
  t.equal(empty.status, 200, 'an empty patch is a write that changes nothing');
  t.equal((await send(app, 'GET', '/collections/books/docs/dune')).body, before.body);

  // The media type is a PATCH body only.
  const putPatch = await send(app, 'PUT', '/collections/books/docs/other', '{"title":"x"}', JSON_PATCH);
  t.same([putPatch.status, putPatch.json().code], [415, 'DOCKET_ERR_UNSUPPORTED_MEDIA_TYPE'], 'PUT of a document refuses it');
  const createPatch = await send(app, 'PUT', '/collections/other', '{}', JSON_PATCH);
  t.same([createPatch.status, createPatch.json().code], [415, 'DOCKET_ERR_UNSUPPORTED_MEDIA_TYPE'], 'a collection definition refuses it');
  const bulkPatch = await send(app, 'POST', '/collections/books/bulk', '[]', JSON_PATCH);
  t.same([bulkPatch.status, bulkPatch.json().code], [415, 'DOCKET_ERR_UNSUPPORTED_MEDIA_TYPE'], 'bulk refuses it');
});
