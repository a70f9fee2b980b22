// Documents come back as they were sent: each value is the client's JSON text less insignificant
// whitespace, through PUT, POST, bulk NDJSON and PATCH, and across a restart (replay and flushed
// tables alike). Numbers no double can hold, 1.0, -0 and string escapes round-trip byte for byte.

import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildApp } from '../../server/app.js';

const SEGMENT_SIZE_BYTES = 256 * 1024;

async function openApp(directory: string): Promise<FastifyInstance> {
  const app = await buildApp({ config: { dataDirectory: directory }, store: { binlogSegmentSizeBytes: SEGMENT_SIZE_BYTES } });
  await app.docket.opened;
  return app;
}

async function send(app: FastifyInstance, method: 'GET' | 'PUT' | 'PATCH' | 'POST', url: string, body?: string, type = 'application/json'): Promise<{ status: number; body: string }> {
  const response = await app.inject({ method, url, ...(body === undefined ? {} : { payload: body, headers: { 'content-type': type } }) });
  return { status: response.statusCode, body: response.body };
}

const NUMBERS = '{"a":9007199254740993,"b":12345678901234567890123,"c":-0,"d":1.0,"e":1e400,"f":-1.5E-7,"g":0.10}';
const STRINGS = '{"s":"\\u00e9\\ud83d\\ude00\\/\\"","t":"é😀","u":"\\ud800"}';

t.test('values come back byte for byte through PUT, POST, bulk and PATCH, before and after a restart', async (t) => {
  const directory = t.testdir();
  let app = await openApp(directory);
  t.equal((await send(app, 'PUT', '/collections/c')).status, 201);
  t.equal((await send(app, 'PUT', '/collections/c/docs/numbers', NUMBERS)).status, 201);
  t.equal((await send(app, 'PUT', '/collections/c/docs/strings', STRINGS)).status, 201);
  t.equal((await send(app, 'PUT', '/collections/c/docs/spaced', ' {\n "a" : [ 1.0 , { "b" : " x y " } ] ,\t"c":1e400 }\r\n')).status, 201);
  const posted = JSON.parse((await send(app, 'POST', '/collections/c/docs', '{"p":1.50}')).body) as { id: string };
  const bulk = await send(app, 'POST', '/collections/c/bulk', '{"id":"line1","n":100000000000000000001}\n{"id":"line2","n":2.50,"m":{"deep":1E2}}\n', 'application/x-ndjson');
  t.equal(bulk.status, 200, bulk.body);
  t.equal((await send(app, 'PUT', '/collections/c/docs/patched', '{"o":{"x":1.0,"y":12345678901234567890123,"gone":true},"n":1e400,"keep":-0}')).status, 201);
  const patch = await send(app, 'PATCH', '/collections/c/docs/patched', '{"o":{"z":2.0,"gone":null},"new":[1.0]}', 'application/merge-patch+json');
  t.equal(patch.status, 200, patch.body);

  const expected: [string, string][] = [
    ['numbers', NUMBERS],
    ['strings', STRINGS],
    ['spaced', '{"a":[1.0,{"b":" x y "}],"c":1e400}'],
    [posted.id, '{"p":1.50}'],
    ['line1', '{"id":"line1","n":100000000000000000001}'],
    ['line2', '{"id":"line2","n":2.50,"m":{"deep":1E2}}'],
    ['patched', '{"o":{"x":1.0,"y":12345678901234567890123,"z":2.0},"n":1e400,"keep":-0,"new":[1.0]}'],
  ];
  const check = async (when: string): Promise<void> => {
    for (const [id, text] of expected) {
      const reply = await send(app, 'GET', `/collections/c/docs/${id}`);
      t.equal(reply.status, 200, `${id} ${when}`);
      t.equal(reply.body, `${text}\n`, `${id} reads back byte for byte ${when}`);
    }
  };
  await check('as written');
  // A crash-like close replays the binlog; a clean close flushes tables. Both read the same bytes.
  await app.docket.store.close({ flush: false });
  await app.close();
  app = await openApp(directory);
  await check('after replaying the binlog');
  await app.close();
  app = await openApp(directory);
  await check('after a clean close, from tables');
  await app.close();
});

t.test('a duplicate top-level name is refused with its code and nothing is stored; nested duplicates are data', async (t) => {
  const app = await openApp(t.testdir());
  t.teardown(() => app.close());
  await send(app, 'PUT', '/collections/c');
  const reply = await send(app, 'PUT', '/collections/c/docs/d', '{"a":1,"b":2,"a":3}');
  t.equal(reply.status, 400);
  t.match(JSON.parse(reply.body), { code: 'DOCKET_ERR_DOCUMENT_FIELD_DUPLICATE', message: /names field "a" twice/ });
  t.equal((await send(app, 'GET', '/collections/c/docs/d')).status, 404);
  t.equal((await send(app, 'PUT', '/collections/c/docs/n', '{"a":{"x":1,"x":2}}')).status, 201);
  t.equal((await send(app, 'GET', '/collections/c/docs/n')).body, '{"a":{"x":1,"x":2}}\n');
  const bulk = JSON.parse((await send(app, 'POST', '/collections/c/bulk', '{"id":"ok"}\n{"id":"dup","id":"dup"}\n', 'application/x-ndjson')).body) as { stored: number; errors: { line: number; code: string }[] };
  t.equal(bulk.stored, 1);
  t.match(bulk.errors, [{ line: 2, code: 'DOCKET_ERR_DOCUMENT_FIELD_DUPLICATE' }]);
});

t.test('a schema sees the parsed value, and what is stored is still the text sent', async (t) => {
  const app = await openApp(t.testdir());
  t.teardown(() => app.close());
  const created = await send(app, 'PUT', '/collections/s', JSON.stringify({ schema: { type: 'object', properties: { n: { type: 'number', minimum: 1 } }, required: ['n'] } }));
  t.equal(created.status, 201);
  t.equal((await send(app, 'PUT', '/collections/s/docs/a', '{"n":0.5}')).status, 422, 'the schema refuses 0.5');
  t.equal((await send(app, 'PUT', '/collections/s/docs/b', '{"n":1.000}')).status, 201);
  t.equal((await send(app, 'GET', '/collections/s/docs/b')).body, '{"n":1.000}\n');
  t.equal((await send(app, 'PATCH', '/collections/s/docs/b', '{"n":0}', 'application/merge-patch+json')).status, 422, 'a patch the schema refuses changes nothing');
  t.equal((await send(app, 'GET', '/collections/s/docs/b')).body, '{"n":1.000}\n');
});
