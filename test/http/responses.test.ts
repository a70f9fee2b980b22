// What every response goes through last: JSON bodies (documents, lists, errors, the not-found
// handler, errors written to the socket before routing) end with a newline; large bodies are
// compressed with br or gzip as Accept-Encoding asks, with Vary, never a document (its strong
// ETag names the stored bytes); a long poll is compressed when it answers, and an event stream
// is not buffered for compression. A raw `/` in an id is a coded 404 saying to percent-encode it.

import type { FastifyInstance } from 'fastify';
import * as http from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import t from 'tap';
import { acceptedCoding } from '../../server/http/responses.js';
import { openApp } from '../helpers/app.js';


async function fill(app: FastifyInstance, count: number): Promise<void> {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ id: `d${String(i).padStart(4, '0')}`, body: `document number ${i}, with some text to compress` })).join('\n');
  const response = await app.inject({ method: 'POST', url: '/collections/c/bulk', headers: { 'content-type': 'application/x-ndjson' }, payload: lines });
  if (response.json().stored !== count) throw new Error(response.body);
}

t.test('every JSON response ends with one newline', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  await app.inject({ method: 'PUT', url: '/collections/c/docs/d', payload: { a: 1 } });
  const cases: [string, string, number][] = [
    ['GET', '/collections/c/docs/d', 200],
    ['GET', '/collections/c/docs', 200],
    ['GET', '/collections/c', 200],
    ['GET', '/', 200],
    ['GET', '/changes', 200],
    ['GET', '/collections/c/docs/missing', 404],
    ['GET', '/nowhere', 404],
    ['GET', '/changes?limit=0', 400],
    ['GET', '/openapi.json', 200],
  ];
  for (const [method, url, status] of cases) {
    const response = await app.inject({ method: method as 'GET', url });
    t.equal(response.statusCode, status, `${method} ${url}`);
    t.ok(response.body.endsWith('}\n') && !response.body.endsWith('\n\n'), `${method} ${url} ends with one newline`);
    t.equal(response.headers['content-length'], String(Buffer.byteLength(response.body)), 'content-length counts it');
  }
  t.equal((await app.inject({ method: 'GET', url: '/collections/c/docs/d' })).body, '{"a":1}\n', 'a document: as stored, then the newline');
  const head = await app.inject({ method: 'HEAD', url: '/collections/c/docs/d' });
  t.equal(head.headers['content-length'], '8', 'HEAD: the length GET sends');
  // An error written straight to the socket, before any route: a malformed request line.
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const raw = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('NOT A REQUEST\r\n\r\n'));
    let text = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  t.match(raw, /^HTTP\/1\.1 400 /);
  t.ok(raw.endsWith('}\n'), 'a client error ends with a newline too');
});

t.test('Accept-Encoding: br or gzip by weight', async (t) => {
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['identity', undefined],
    ['gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br', 'br'],
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['br;q=0, gzip;q=0', undefined],
    ['*', 'br'],
    ['*;q=0.1, br;q=0', 'gzip'],
    ['deflate', undefined],
    ['GZIP ; Q=0.8', 'gzip'],
  ];
  for (const [header, expected] of cases) t.equal(acceptedCoding(header), expected, JSON.stringify(header));
});

t.test('large responses are compressed when the client accepts it; documents and small ones are not', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  await fill(app, 200);
  const plain = await app.inject({ method: 'GET', url: '/collections/c/docs?limit=200' });
  t.equal(plain.headers['content-encoding'], undefined, 'no Accept-Encoding: identity');
  t.equal(plain.headers.vary, 'Accept-Encoding');
  for (const [accept, coding, decode] of [['gzip', 'gzip', zlib.gunzipSync], ['gzip, deflate, br', 'br', zlib.brotliDecompressSync]] as const) {
    for (const url of ['/collections/c/docs?limit=200', '/changes', '/openapi.yaml']) {
      const response = await app.inject({ method: 'GET', url, headers: { 'accept-encoding': accept } });
      t.equal(response.statusCode, 200);
      t.equal(response.headers['content-encoding'], coding, `${url} with ${accept}`);
      t.equal(response.headers.vary, 'Accept-Encoding');
      const body = decode(response.rawPayload);
      const identity = await app.inject({ method: 'GET', url });
      t.ok(body.equals(identity.rawPayload), `${url}: decodes to the identity body`);
      t.ok(response.rawPayload.length < identity.rawPayload.length / 3, `${url}: ${identity.rawPayload.length} -> ${response.rawPayload.length} bytes`);
      t.equal(response.headers['content-length'], String(response.rawPayload.length));
    }
  }
  const big = await app.inject({ method: 'PUT', url: '/collections/c/docs/big', payload: { text: 'x'.repeat(10_000) } });
  t.equal(big.statusCode, 201);
  const document = await app.inject({ method: 'GET', url: '/collections/c/docs/big', headers: { 'accept-encoding': 'gzip' } });
  t.equal(document.headers['content-encoding'], undefined, 'a document (strong ETag) goes as stored');
  const small = await app.inject({ method: 'GET', url: '/collections/c/docs?limit=1&prefix=d', headers: { 'accept-encoding': 'gzip' } });
  t.equal(small.headers['content-encoding'], undefined, 'under 1 KiB: not worth it');
  t.equal(small.headers.vary, undefined);
  const none = await app.inject({ method: 'GET', url: '/collections/c/docs?limit=200', headers: { 'accept-encoding': 'gzip;q=0, br;q=0' } });
  t.equal(none.headers['content-encoding'], undefined, 'q=0 refuses a coding');
});

t.test('a long poll is compressed when it answers; an event stream flushes each event uncompressed', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  await fill(app, 5);
  const last = app.docket.store.lastTsn;
  // The long poll waits; one bulk transaction of 100 documents is a page worth compressing.
  const poll = app.inject({ method: 'GET', url: `/changes?since=${last}&feed=longpoll&timeout=30000`, headers: { 'accept-encoding': 'gzip' } });
  await app.docket.store.batch(Array.from({ length: 100 }, (_, i) => ({ op: 'put' as const, collection: 'c', id: `p${i}`, document: { i } })));
  const response = await poll;
  t.equal(response.headers['content-encoding'], 'gzip');
  const page = JSON.parse(zlib.gunzipSync(response.rawPayload).toString('utf8')) as { changes: unknown[]; last: number };
  t.equal(page.changes.length, 100, 'the long poll answered with the transaction');

  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const stream = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: `/changes?feed=sse&since=${app.docket.store.lastTsn}`, headers: { 'accept-encoding': 'gzip, br' }, agent: false }, resolve);
    request.on('error', reject);
  });
  t.teardown(() => stream.destroy());
  t.equal(stream.headers['content-type'], 'text/event-stream; charset=utf-8');
  t.equal(stream.headers['content-encoding'], undefined, 'events are not compressed');
  stream.setEncoding('utf8');
  // Each write reaches the client as its own event, while the stream stays open.
  for (const id of ['s1', 's2']) {
    const event = new Promise<string>((resolve) => {
      let text = '';
      const onData = (chunk: string): void => {
        text += chunk;
        if (text.includes(`"id":"${id}"`)) {
          stream.off('data', onData);
          resolve(text);
        }
      };
      stream.on('data', onData);
    });
    await app.docket.store.put('c', id, { n: 1 });
    t.match(await event, new RegExp(`event: change\\ndata: \\{[^\\n]*"id":"${id}"`), `the event for ${id} arrives`);
  }
});

t.test('a raw / in an id: a coded 404 saying to percent-encode it', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  for (const [url, encoded] of [['/collections/c/docs/a/b', '/collections/c/docs/a%2Fb'], ['/collections/c/docs/a/b/c', '/collections/c/docs/a%2Fb%2Fc'], ['/collections/c/docs/a/', '/collections/c/docs/a%2F']]) {
    for (const method of ['GET', 'PUT', 'DELETE'] as const) {
      const response = await app.inject({ method, url, ...(method === 'PUT' ? { payload: { a: 1 } } : {}) });
      t.equal(response.statusCode, 404, `${method} ${url}`);
      t.equal(response.json().code, 'DOCKET_ERR_ROUTE_NOT_FOUND');
      t.match(response.json().message, `must be percent-encoded as %2F (${encoded})`, `${method} ${url} says how`);
    }
  }
  const other = await app.inject({ method: 'GET', url: '/collections/c/nothing/a/b' });
  t.notMatch(other.json().message, /percent-encoded/, 'other paths: the plain message');
  const put = await app.inject({ method: 'PUT', url: '/collections/c/docs/a%2Fb', payload: { slash: true } });
  t.equal(put.statusCode, 201, 'percent-encoded, the id holds a /');
  t.same((await app.inject({ method: 'GET', url: '/collections/c/docs/a%2Fb' })).json(), { slash: true });
});
