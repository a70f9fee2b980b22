// The change feed's `since=now` and `include_docs=true`, on pages, long polls and the event stream
// at GET /changes/stream, and whole transactions past `limit`. Every wait is on an event: the long
// poll is known to be waiting when the store's waitForChanges is entered, the stream to have
// started when its headers arrive.

import type { FastifyInstance } from 'fastify';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import * as limits from '../../src/limits.js';
import { openApp } from '../helpers/app.js';


async function call(app: FastifyInstance, method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST', url: string, body?: string, type = 'application/json') {
  const response = await app.inject({ method, url, ...(body === undefined ? {} : { payload: body, headers: { 'content-type': type } }) });
  return { status: response.statusCode, body: response.body, type: response.headers['content-type'] };
}

/** Resolves the next time the store starts waiting for a change (a long poll or a stream is idle). */
function nextWait(app: FastifyInstance): Promise<void> {
  const store = app.docket.store;
  const original = store.waitForChanges.bind(store);
  return new Promise((resolve) => {
    store.waitForChanges = (...args) => {
      store.waitForChanges = original;
      const waiting = original(...args);
      resolve();
      return waiting;
    };
  });
}

t.test('since=now starts at the last acknowledged transaction', async (t) => {
  const app = await openApp(t);
  t.equal((await call(app, 'PUT', '/collections/c')).status, 201);
  t.equal((await call(app, 'PUT', '/collections/c/docs/a', '{"n":1}')).status, 201);
  t.same(JSON.parse((await call(app, 'GET', '/changes?since=now')).body), { changes: [], last: 2 }, 'nothing yet, and where it stands');

  const waiting = nextWait(app);
  const poll = call(app, 'GET', '/changes?since=now&feed=longpoll&timeout=60000');
  await waiting;
  t.equal((await call(app, 'PUT', '/collections/c/docs/b', '{"n":2}')).status, 201);
  t.same(JSON.parse((await poll).body), { changes: [{ tsn: 3, collection: 'c', id: 'b', op: 'put', rev: 3 }], last: 3 }, 'a long poll from now sees the next write only');

  t.same(JSON.parse((await call(app, 'GET', '/changes?since=now&feed=longpoll&timeout=0')).body), { changes: [], last: 3 });
  for (const bad of ['later', '-1', '01', '9007199254740992', '']) {
    const reply = await call(app, 'GET', `/changes?since=${bad}`);
    t.equal(reply.status, 400, `since=${bad} is refused`);
    t.equal(JSON.parse(reply.body).code, 'DOCKET_ERR_INVALID_ARGUMENT');
  }
});

t.test('include_docs=true: puts and patches carry the document as stored now, deletions none', async (t) => {
  const app = await openApp(t);
  await call(app, 'PUT', '/collections/c');
  await call(app, 'PUT', '/collections/c/docs/a', '{"big":9007199254740993,"x":1.0}');
  await call(app, 'PATCH', '/collections/c/docs/a', '[{"op":"add","path":"/y","value":true}]', 'application/json-patch+json');
  await call(app, 'PUT', '/collections/c/docs/b', '{"n":1}');
  await call(app, 'DELETE', '/collections/c/docs/b');
  const reply = await call(app, 'GET', '/changes?since=0&include_docs=true');
  t.equal(reply.status, 200);
  t.match(reply.type, /^application\/json/);
  const A = '{"big":9007199254740993,"x":1.0,"y":true}';
  t.equal(
    reply.body,
    `{"changes":[{"tsn":1,"collection":"c","op":"create_collection"},{"tsn":2,"collection":"c","id":"a","op":"put","rev":2,"doc":${A}},{"tsn":3,"collection":"c","id":"a","op":"patch","rev":3,"doc":${A}},{"tsn":4,"collection":"c","id":"b","op":"put","rev":4,"doc":null},{"tsn":5,"collection":"c","id":"b","op":"delete","rev":5}],"last":5}\n`,
    'documents spliced in byte for byte; null for one deleted since; no doc on a deletion',
  );
  t.notMatch((await call(app, 'GET', '/changes?since=0')).body, /"doc"/, 'without include_docs there are none');

  // A collection dropped and created again under its name: the old changes' documents are gone.
  await call(app, 'DELETE', '/collections/c');
  await call(app, 'PUT', '/collections/c');
  await call(app, 'PUT', '/collections/c/docs/a', '{"new":1}');
  const again = JSON.parse((await call(app, 'GET', '/changes?since=0&include_docs=true&collection=c')).body) as { changes: { tsn: number; doc?: unknown }[] };
  t.same(again.changes.filter((c) => c.tsn <= 3).map((c) => c.doc), [undefined, null, null], 'not the new collection\'s document of the same id');
  t.same(again.changes.at(-1)!.doc, { new: 1 });
});

t.test('GET /changes/stream: an event stream from now, with documents', async (t) => {
  const app = await openApp(t);
  await call(app, 'PUT', '/collections/c');
  await call(app, 'PUT', '/collections/c/docs/old', '{"n":0}');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  let text = '';
  let onText: () => void = () => undefined;
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/changes/stream?since=now&include_docs=true' }, resolve);
    request.on('error', reject);
    t.teardown(() => request.destroy());
  });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /^text\/event-stream/);
  response.setEncoding('utf8');
  response.on('data', (chunk: string) => {
    text += chunk;
    onText();
  });
  // The headers went out after the stream took its start: a write now comes after it.
  await call(app, 'PUT', '/collections/c/docs/new', '{"n":12345678901234567890}');
  await new Promise<void>((resolve) => {
    onText = () => void (text.includes('\n\n') && resolve());
    onText();
  });
  t.equal(text, 'id: 3\nevent: change\ndata: {"tsn":3,"collection":"c","id":"new","op":"put","rev":3,"doc":{"n":12345678901234567890}}\n\n', 'only the write after now, with its document');
});

t.test('a page never splits a transaction, so it can hold more than limit changes', async (t) => {
  const app = await openApp(t);
  await call(app, 'PUT', '/collections/c');
  const bulk = await call(app, 'POST', '/collections/c/bulk', '{"id":"a"}\n{"id":"b"}\n{"id":"c"}\n', 'application/x-ndjson');
  t.equal(bulk.status, 200, bulk.body);
  const page = JSON.parse((await call(app, 'GET', '/changes?since=1&limit=1')).body) as { changes: { tsn: number }[]; last: number };
  t.same(page.changes.map((c) => c.tsn), [2, 2, 2], 'the whole bulk transaction, three changes for a limit of one');
  t.equal(page.last, 2);
});

t.test('a page with include_docs ends at a transaction boundary once it carries CHANGES_DOCS_BYTES_MAX of documents', async (t) => {
  const app = await openApp(t);
  await call(app, 'PUT', '/collections/c');
  const big = 'x'.repeat(1_000_000);
  const count = Math.ceil(limits.CHANGES_DOCS_BYTES_MAX / 1_000_000) + 2;
  for (let i = 0; i < count; i++) t.equal((await call(app, 'PUT', `/collections/c/docs/d${i}`, `{"s":"${big}"}`)).status, 201);
  const last = 1 + count;
  const first = JSON.parse((await call(app, 'GET', '/changes?since=1&include_docs=true')).body) as { changes: { tsn: number; doc: { s: string } }[]; last: number };
  t.ok(first.last < last, `the page stopped early (at TSN ${first.last} of ${last})`);
  t.equal(first.changes.at(-1)!.tsn, first.last, 'its last is the last transaction it holds');
  t.ok(first.changes.length * 1_000_000 >= limits.CHANGES_DOCS_BYTES_MAX, 'after reaching the bound');
  t.ok(first.changes.every((c) => c.doc.s.length === 1_000_000), 'every document whole');
  const rest = JSON.parse((await call(app, 'GET', `/changes?since=${first.last}&include_docs=true`)).body) as { changes: { tsn: number }[]; last: number };
  t.same([...first.changes, ...rest.changes].map((c) => c.tsn), Array.from({ length: count }, (_, i) => i + 2), 'the next page goes on where it stopped');
  t.equal(rest.last, last);
});
