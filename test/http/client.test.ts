// A client generated from openapi.yaml works against the real server. openapi-typescript turns
// the spec into types, a small openapi-fetch program written against them must compile under
// strict TypeScript (so the types fit real use, and misuse does not compile), and then that same
// program, compiled, drives a live server over a socket: the types and the wire agree.

import t from 'tap';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import openapiTS, { astToString } from 'openapi-typescript';
import { compileClient, runCompiledClient } from '../helpers/compile-client.js';

const SPEC_URL = new URL('../../openapi.yaml', import.meta.url);

// Every call the program makes is typed by the generated `paths`; what it saw comes back for
// the test to check. `misuses` is never called: each line in it must fail to compile.
const CLIENT_PROGRAM = `
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './api.js';

type WriteResult = components['schemas']['WriteResult'];
type ErrorCode = components['schemas']['ErrorCode'];

export async function run(baseUrl: string) {
  const client = createClient<paths>({ baseUrl });
  const books = { collection: 'books' };
  const dune = { collection: 'books', id: 'dune' };

  const created = await client.PUT('/collections/{collection}', { params: { path: books }, body: { columns: { title: 'text', author: 'text' } } });
  const put = await client.PUT('/collections/{collection}/docs/{id}', { params: { path: dune }, body: { title: 'Dune', year: 1965, author: 'Herbert' } });
  const written: WriteResult | undefined = put.data;
  const etag = put.response.headers.get('etag') ?? '';
  const fields = await client.GET('/collections/{collection}/docs/{id}', { params: { path: dune, query: { fields: ['title', 'year'] } } });
  const patched = await client.PATCH('/collections/{collection}/docs/{id}', {
    params: { path: dune, header: { 'If-Match': etag } },
    body: { year: 1966, author: null },
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  const afterPatch = await client.GET('/collections/{collection}/docs/{id}', { params: { path: dune } });
  const head = await client.HEAD('/collections/{collection}/docs/{id}', { params: { path: dune } });
  const stale = await client.PUT('/collections/{collection}/docs/{id}', { params: { path: dune, header: { 'If-Match': etag } }, body: { title: 'Dune Messiah' } });
  const staleCode: ErrorCode | undefined = stale.error?.code;
  const posted = await client.POST('/collections/{collection}/docs', { params: { path: books }, body: { title: 'Children of Dune' } });
  const page = await client.GET('/collections/{collection}/docs', { params: { path: books, query: { limit: 10, fields: ['title'] } } });
  const listed = (page.data?.documents ?? []).map((d) => ({ id: d.id, rev: d.rev, title: d.doc['title'] }));
  const deleted = await client.DELETE('/collections/{collection}/docs/{id}', { params: { path: dune } });
  const gone = await client.GET('/collections/{collection}/docs/{id}', { params: { path: dune } });
  const goneCode: ErrorCode | undefined = gone.error?.code;
  const info = await client.GET('/collections/{collection}', { params: { path: books } });

  // A JSON Patch (RFC 6902): the media type picks it; a failed test is a coded 409.
  const jsonPatched = await client.PATCH('/collections/{collection}/docs/{id}', {
    params: { path: { collection: 'books', id: posted.data?.id ?? '' } },
    body: [{ op: 'test', path: '/title', value: 'Children of Dune' }, { op: 'add', path: '/series', value: ['Dune', 3] }, { op: 'replace', path: '/title', value: null }],
    headers: { 'content-type': 'application/json-patch+json' },
  });
  const failedTest = await client.PATCH('/collections/{collection}/docs/{id}', {
    params: { path: { collection: 'books', id: posted.data?.id ?? '' } },
    body: [{ op: 'test', path: '/title', value: 'Dune' }],
    headers: { 'content-type': 'application/json-patch+json' },
  });
  const afterJsonPatch = await client.GET('/collections/{collection}/docs/{id}', { params: { path: { collection: 'books', id: posted.data?.id ?? '' } } });

  // Bulk NDJSON: the body is text, sent as it is (openapi-fetch JSON-encodes bodies unless told not to).
  const bulk = await client.POST('/collections/{collection}/bulk', {
    params: { path: books },
    body: '{"id":"emma","title":"Emma"}\\n{"id":"persuasion","title":"Persuasion"}\\n',
    bodySerializer: (body) => body,
    headers: { 'content-type': 'application/x-ndjson' },
  });
  const stored: number | undefined = bulk.data?.stored;

  // The change feed as a long poll: data is the JSON page, changes and all.
  const since = (deleted.data?.tsn ?? 0);
  const feed = await client.GET('/changes', { params: { query: { since, feed: 'longpoll', timeout: 10000, collection: 'books', include_docs: true } } });
  const changes = (feed.data?.changes ?? []).map((c) => ('id' in c ? { tsn: c.tsn, id: c.id, op: c.op, doc: c.doc } : { tsn: c.tsn, op: c.op }));
  const now = await client.GET('/changes', { params: { query: { since: 'now', feed: 'longpoll', timeout: 0 } } });

  // An index and a query through it (or a scan while it builds: the answer is the same).
  const indexed = await client.PUT('/collections/{collection}/indexes/{name}', { params: { path: { collection: 'books', name: 'by_title' } }, body: { fields: ['title', { year: 'desc' }] } });
  const found = await client.POST('/collections/{collection}/find', { params: { path: books }, body: { selector: { title: { $in: ['Emma', 'Dune'] } }, fields: ['title'], allow_scan: true } });

  return {
    created: { status: created.response.status, data: created.data, location: created.response.headers.get('location') },
    put: { status: put.response.status, data: written, etag },
    fields: { status: fields.response.status, data: fields.data },
    patched: { status: patched.response.status, rev: patched.data?.rev, etag: patched.response.headers.get('etag') },
    afterPatch: afterPatch.data,
    head: { status: head.response.status, etag: head.response.headers.get('etag') },
    stale: { status: stale.response.status, code: staleCode },
    posted: { status: posted.response.status, id: posted.data?.id },
    listed: { status: page.response.status, documents: listed, next: page.data?.next },
    deleted: { status: deleted.response.status, rev: deleted.data?.rev },
    gone: { status: gone.response.status, code: goneCode },
    fieldNames: info.data?.fields.map((f) => f.name) ?? [],
    jsonPatched: { status: jsonPatched.response.status, rev: jsonPatched.data?.rev },
    failedTest: { status: failedTest.response.status, code: failedTest.error?.code },
    afterJsonPatch: afterJsonPatch.data,
    bulk: { status: bulk.response.status, stored, failed: bulk.data?.failed, tsn: bulk.data?.tsn },
    changes: { status: feed.response.status, changes, last: feed.data?.last },
    now: now.data,
    indexed: { status: indexed.response.status, name: indexed.data?.name, fields: indexed.data?.fields },
    found: { status: found.response.status, documents: (found.data?.documents ?? []).map((d) => ({ id: d.id, doc: d.doc })) },
  };
}

export function misuses(client: Client<paths>): void {
  // @ts-expect-error no such path in the contract
  void client.GET('/collections/{collection}/nothing', { params: { path: { collection: 'books' } } });
  // @ts-expect-error a document is a JSON object, not a string
  void client.PUT('/collections/{collection}/docs/{id}', { params: { path: { collection: 'books', id: 'x' } }, body: 'Dune' });
  // @ts-expect-error limit is an integer
  void client.GET('/collections/{collection}/docs', { params: { path: { collection: 'books' }, query: { limit: 'ten' } } });
  // @ts-expect-error the path needs its id
  void client.DELETE('/collections/{collection}/docs/{id}', { params: { path: { collection: 'books' } } });
  // @ts-expect-error documents are not POSTed to a collection's own path
  void client.POST('/collections/{collection}', { params: { path: { collection: 'books' } }, body: {} });
  // @ts-expect-error the change feed's feed is normal or longpoll (the stream has its own path)
  void client.GET('/changes', { params: { query: { feed: 'sometimes' } } });
  // @ts-expect-error since is a tsn or 'now'
  void client.GET('/changes', { params: { query: { since: 'yesterday' } } });
}
`;

const compile = (directory: string): string[] => compileClient(directory);

t.test('a client generated from openapi.yaml compiles, refuses misuse, and round-trips with a live server', async (t) => {
  const directory = t.testdir({ 'package.json': JSON.stringify({ type: 'module' }) });
  const types = astToString(await openapiTS(SPEC_URL));
  t.match(types, /"\/collections\/\{collection\}\/docs\/\{id\}": \{/, 'the document path is in the generated types');
  writeFileSync(path.join(directory, 'api.ts'), types);
  writeFileSync(path.join(directory, 'client.ts'), CLIENT_PROGRAM);
  t.same(compile(directory), [], 'the client program compiles against the generated types');

  // The same program with one @ts-expect-error removed must not compile: the types have teeth.
  writeFileSync(path.join(directory, 'client.ts'), CLIENT_PROGRAM.replace('// @ts-expect-error a document is a JSON object, not a string\n', ''));
  t.match(compile(directory).join('\n'), /client\.ts:\d+: .*not assignable/, 'a string body does not compile');
  writeFileSync(path.join(directory, 'client.ts'), CLIENT_PROGRAM);
  t.same(compile(directory), []);

  const seen = await runCompiledClient(t, directory);

  t.match(seen.created, { status: 201, data: { name: 'books', created: true }, location: '/collections/books' });
  t.equal(seen.put.status, 201);
  t.equal(seen.put.data.rev, seen.put.data.tsn, 'a revision is the tsn that wrote it');
  t.equal(seen.put.etag, `"${seen.put.data.rev}"`, 'the ETag is the revision');
  t.same(seen.fields, { status: 200, data: { title: 'Dune', year: 1965 } }, 'only the fields asked for');
  t.equal(seen.patched.status, 200);
  t.ok(seen.patched.rev > seen.put.data.rev, 'a patch has a later revision');
  t.equal(seen.patched.etag, `"${seen.patched.rev}"`);
  t.same(seen.afterPatch, { title: 'Dune', year: 1966 }, 'the merge patch changed year and removed author');
  t.same(seen.head, { status: 200, etag: seen.patched.etag });
  t.same(seen.stale, { status: 412, code: 'DOCKET_ERR_DOCUMENT_CONFLICT' }, 'If-Match with a stale ETag is refused');
  t.equal(seen.posted.status, 201);
  t.match(seen.posted.id, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'a generated id');
  t.same(seen.listed, {
    status: 200,
    documents: [
      { id: seen.posted.id, rev: seen.patched.rev + 1, title: 'Children of Dune' },
      { id: 'dune', rev: seen.patched.rev, title: 'Dune' },
    ],
    next: null,
  }, 'both documents, in id order, with their revisions');
  t.equal(seen.deleted.status, 200);
  t.ok(seen.deleted.rev > seen.patched.rev);
  t.same(seen.gone, { status: 404, code: 'DOCKET_ERR_DOCUMENT_NOT_FOUND' });
  t.same(seen.fieldNames.sort(), ['author', 'title', 'year']);

  t.equal(seen.jsonPatched.status, 200);
  t.same(seen.failedTest, { status: 409, code: 'DOCKET_ERR_PATCH_TEST_FAILED' }, 'a failed JSON Patch test is a coded 409');
  t.same(seen.afterJsonPatch, { title: null, series: ['Dune', 3] }, 'the JSON Patch set a value to null and added a member');
  t.same(seen.bulk, { status: 200, stored: 2, failed: 0, tsn: seen.deleted.rev + 2 }, 'the NDJSON body went as text: both lines stored');
  t.same(seen.changes, {
    status: 200,
    changes: [
      { tsn: seen.deleted.rev + 1, id: seen.posted.id, op: 'patch', doc: { title: null, series: ['Dune', 3] } },
      { tsn: seen.deleted.rev + 2, id: 'emma', op: 'put', doc: { id: 'emma', title: 'Emma' } },
      { tsn: seen.deleted.rev + 2, id: 'persuasion', op: 'put', doc: { id: 'persuasion', title: 'Persuasion' } },
    ],
    last: seen.deleted.rev + 2,
  }, 'the long poll read data.changes, documents included');
  t.same(seen.now, { changes: [], last: seen.deleted.rev + 2 }, 'since=now starts at the end');
  t.same(seen.indexed, { status: 201, name: 'by_title', fields: [{ field: 'title', order: 'asc' }, { field: 'year', order: 'desc' }] }, 'an index defined through the generated client');
  t.same(seen.found, { status: 200, documents: [{ id: 'emma', doc: { title: 'Emma' } }] }, 'a find through the generated client');
});
