import t from 'tap';
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { request } from 'undici';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../server/app.js';
import { LineSplitter, type Line } from '../../src/bulk.js';
import { openApp } from '../helpers/app.js';

const NDJSON = { 'content-type': 'application/x-ndjson' };


async function createCollection(app: FastifyInstance, name: string, definition?: object): Promise<void> {
  const response = await app.inject({ method: 'PUT', url: `/collections/${name}`, ...(definition ? { payload: definition } : {}) });
  if (response.statusCode !== 201) throw new Error(`create ${name}: ${response.body}`);
}

/** Resolves after `count` turns of the event loop (each lets pending I/O, ticks and microtasks run). */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await nextTurn();
}

function bulk(app: FastifyInstance, collection: string, payload: string | Buffer | Readable, query = '', headers: Record<string, string> = NDJSON) {
  return app.inject({ method: 'POST', url: `/collections/${collection}/bulk${query}`, headers, payload });
}

/** The body cut into pieces of `size` bytes, so lines straddle chunk boundaries. */
function chunked(body: Buffer, size: number): Readable {
  const pieces: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) pieces.push(body.subarray(i, i + size));
  return Readable.from(pieces, { objectMode: false });
}

async function listAll(app: FastifyInstance, collection: string): Promise<{ id: string; rev: number; doc: Record<string, unknown> }[]> {
  const documents = [];
  let after: string | null = null;
  do {
    const response = await app.inject({ method: 'GET', url: `/collections/${collection}/docs?limit=1000${after === null ? '' : `&after=${encodeURIComponent(after)}`}` });
    const page = response.json() as { documents: { id: string; rev: number; doc: Record<string, unknown> }[]; next: string | null };
    documents.push(...page.documents);
    after = page.next;
  } while (after !== null);
  return documents;
}

t.test('the line splitter holds one partial line and skips the rest of a line that is too long', async (t) => {
  const text = Buffer.from('ab\r\n\ncdefghij\nxy\r\nlast');
  for (const size of [1, 2, 3, 100]) {
    const splitter = new LineSplitter(4);
    const lines: Line[] = [];
    for (let i = 0; i < text.length; i += size) lines.push(...splitter.push(text.subarray(i, i + size)));
    lines.push(...splitter.end());
    const shown = lines.map((line) => ('bytes' in line ? `${line.number}:${line.bytes.toString()}` : `${line.number}:too long`));
    t.same(shown, ['1:ab', '2:', '3:too long', '4:xy', '5:last'], `chunks of ${size}`);
  }
  const exact = new LineSplitter(4);
  t.same(exact.push(Buffer.from('abcd\r\nabcde\r\n')).map((line) => 'bytes' in line), [true, false], 'the limit excludes the CR');
  t.same(new LineSplitter(4).end(), [], 'an empty stream has no lines');
});

t.test('good lines are stored as sent and each bad line is reported with its number and code', async (t) => {
  const app = await openApp(t, { config: { bulkLineBytesMax: 1024 } });
  await createCollection(app, 'x', { schema: { type: 'object', properties: { n: { type: 'number' } } } });
  const lines: (string | Buffer)[] = [
    '{"id":"a","n":1}', // 1
    '', // 2 blank
    '{"id":"b","n":2,"__proto__":{"polluted":true}}', // 3
    '{bad json', // 4
    Buffer.concat([Buffer.from('{"id":"c","s":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]), // 5
    '[1,2]', // 6
    `{"id":"d","x":${'['.repeat(70)}${']'.repeat(70)}}`, // 7
    '{"id":5}', // 8
    '{"id":"bad\\u0001id"}', // 9
    '{"id":"e","n":"not a number"}', // 10
    `{"id":"f","pad":"${'z'.repeat(5000)}"}`, // 11
    '{"id":"g","n":7}\r', // 12 CRLF
    '  \t', // 13 blank
    '{"n":8}', // 14 generated id
    '{"id":"h","n":9}', // 15, no newline after it
  ];
  const body = Buffer.concat(lines.map((line, i) => Buffer.concat([Buffer.from(line), Buffer.from(i === lines.length - 1 ? '' : '\n')])));
  const response = await bulk(app, 'x', chunked(body, 7));
  t.equal(response.statusCode, 200, response.body);
  const report = response.json();
  t.match(report, { lines: 13, stored: 5, failed: 8, errorsTruncated: false });
  t.type(report.tsn, 'number');
  t.same(
    report.errors.map((e: { line: number; code: string }) => [e.line, e.code]),
    [
      [4, 'DOCKET_ERR_BODY_INVALID'],
      [5, 'DOCKET_ERR_BODY_INVALID'],
      [6, 'DOCKET_ERR_DOCUMENT_INVALID'],
      [7, 'DOCKET_ERR_LIMIT_EXCEEDED'],
      [8, 'DOCKET_ERR_ID_INVALID'],
      [9, 'DOCKET_ERR_ID_INVALID'],
      [10, 'DOCKET_ERR_DOCUMENT_SCHEMA'],
      [11, 'DOCKET_ERR_LIMIT_EXCEEDED'],
    ],
  );
  t.match(report.errors[0].message, /line 4 is not valid JSON/);
  t.match(report.errors[1].message, /line 5 is not valid UTF-8/);
  t.match(report.errors[7].message, /line 11 is longer than 1024 bytes/);

  for (const [id, index] of [['a', 0], ['b', 2], ['g', 11], ['h', 14]] as const) {
    const read = await app.inject({ method: 'GET', url: `/collections/x/docs/${id}` });
    t.equal(read.statusCode, 200);
    t.equal(read.body, `${JSON.stringify(JSON.parse(String(lines[index])))}\n`, `document ${id} reads back as its line`);
  }
  const b = JSON.parse((await app.inject({ method: 'GET', url: '/collections/x/docs/b' })).body) as Record<string, unknown>;
  t.ok(Object.hasOwn(b, '__proto__'), '__proto__ is stored as a field');
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was touched');

  const all = await listAll(app, 'x');
  t.same(all.map((d) => d.id).filter((id) => id.length === 1), ['a', 'b', 'g', 'h']);
  const generated = all.filter((d) => d.id.length !== 1);
  t.equal(generated.length, 1);
  t.match(generated[0]!.id, /^[0-9A-HJKMNP-TV-Z]{26}$/, 'a missing id is generated');
  t.same(generated[0]!.doc, { n: 8 }, 'the document is stored exactly as sent');
});

t.test('the error list stops at 100 while the counts stay exact', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  const lines = [];
  for (let i = 0; i < 150; i++) lines.push('nope');
  for (let i = 0; i < 10; i++) lines.push(`{"id":"ok${i}"}`);
  const report = (await bulk(app, 'x', lines.join('\n') + '\n')).json();
  t.match(report, { lines: 160, stored: 10, failed: 150, errorsTruncated: true });
  t.equal(report.errors.length, 100);
  t.same(report.errors.map((e: { line: number }) => e.line), Array.from({ length: 100 }, (_, i) => i + 1));
  t.equal((await listAll(app, 'x')).length, 10);
});

t.test('a repeated id is stored once and the later line wins, within a batch and across batches', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  const lines = [];
  for (let i = 0; i < 2500; i++) {
    const key = i === 3 || i === 7 || i === 1500 || i === 2499 ? 'dup' : `k${i}`;
    lines.push(JSON.stringify({ key, line: i + 1 }));
  }
  lines.push(JSON.stringify({ key: 'same', v: 1 }), JSON.stringify({ key: 'same', v: 2 }));
  const report = (await bulk(app, 'x', lines.join('\n'), '?id_field=key')).json();
  t.match(report, { lines: 2502, stored: 2502, failed: 0, errors: [] });
  t.same(JSON.parse((await app.inject({ method: 'GET', url: '/collections/x/docs/dup' })).body), { key: 'dup', line: 2500 });
  t.same(JSON.parse((await app.inject({ method: 'GET', url: '/collections/x/docs/same' })).body), { key: 'same', v: 2 });
  t.equal((await listAll(app, 'x')).length, 2500 - 3 + 1);
});

t.test('requests pipelined on one connection apply in order: the later line for an id wins across requests', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  // A's last batches and B's first write the same ids; C (atomic) rewrites ten of them again.
  const body = (from: number, to: number, v: string): string => Array.from({ length: to - from }, (_, i) => JSON.stringify({ key: `k${from + i}`, v })).join('\n') + '\n';
  const requests = [
    ['', body(0, 2500, 'A')],
    ['', body(1000, 3500, 'B')],
    ['&atomic=true', body(2000, 2010, 'C')],
  ].map(([query, text]) => `POST /collections/x/bulk?id_field=key${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-ndjson\r\nContent-Length: ${Buffer.byteLength(text!)}\r\n\r\n${text}`);
  const responses = await pipelined(port, requests.join(''), requests.length);
  t.same(responses.map((r) => r.status), [200, 200, 200]);
  const docs = new Map((await listAll(app, 'x')).map((d) => [d.id, d.doc.v]));
  t.equal(docs.size, 3500);
  const wrong = [...docs].filter(([id, v]) => v !== (Number(id.slice(1)) < 1000 ? 'A' : Number(id.slice(1)) >= 2000 && Number(id.slice(1)) < 2010 ? 'C' : 'B'));
  t.same(wrong.slice(0, 5), [], `${wrong.length} documents hold an earlier request's line`);
});

/** Writes `raw` (several requests) on one socket and resolves with the first `count` responses. */
function pipelined(port: number, raw: string, count: number): Promise<{ status: number; body: string }[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(raw));
    let data = Buffer.alloc(0);
    const responses: { status: number; body: string }[] = [];
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      for (;;) {
        const end = data.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = data.subarray(0, end).toString('latin1');
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (data.length < end + 4 + length) break;
        responses.push({ status: Number(head.split(' ')[1]), body: data.subarray(end + 4, end + 4 + length).toString('utf8') });
        data = data.subarray(end + 4 + length);
      }
      if (responses.length >= count) {
        socket.destroy();
        resolve(responses);
      }
    });
  });
}

t.test('an id field that holds a number or null is a line error, not a generated id', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  const report = (await bulk(app, 'x', '{"id":1}\n{"id":null}\n{"id":"1"}\n')).json();
  t.match(report, { lines: 3, stored: 1, failed: 2 });
  t.same(report.errors.map((e: { code: string }) => e.code), ['DOCKET_ERR_ID_INVALID', 'DOCKET_ERR_ID_INVALID']);
  t.same((await listAll(app, 'x')).map((d) => d.id), ['1']);
});

t.test('atomic: all lines in one transaction, or none stored if any line fails', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x', { schema: { type: 'object', required: ['n'] } });
  const good = Array.from({ length: 5 }, (_, i) => JSON.stringify({ id: `a${i}`, n: i })).join('\n');
  const ok = await bulk(app, 'x', good, '?atomic=true');
  t.equal(ok.statusCode, 200);
  const report = ok.json();
  t.match(report, { lines: 5, stored: 5, failed: 0, errors: [], errorsTruncated: false });
  const stored = await listAll(app, 'x');
  t.equal(stored.length, 5);
  t.ok(stored.every((d) => d.rev === report.tsn), 'one transaction, one TSN');

  const bad = ['{"id":"b0","n":0}', '{"id":"b1"}', '{"id":"b2","n":2}', 'not json'].join('\n');
  const refused = await bulk(app, 'x', bad, '?atomic=true');
  t.equal(refused.statusCode, 422);
  const body = refused.json();
  t.match(body, { statusCode: 422, code: 'DOCKET_ERR_DOCUMENT_SCHEMA', error: 'Unprocessable Entity', errorsTruncated: false });
  t.match(body.message, /2 of 4 lines failed, so nothing was stored; line 2:/);
  t.same(body.errors.map((e: { line: number; code: string }) => [e.line, e.code]), [[2, 'DOCKET_ERR_DOCUMENT_SCHEMA'], [4, 'DOCKET_ERR_BODY_INVALID']]);

  const badJson = await bulk(app, 'x', '{"id":"c0","n":0}\n{oops\n', '?atomic=true');
  t.equal(badJson.statusCode, 400);
  t.equal(badJson.json().code, 'DOCKET_ERR_BODY_INVALID');
  t.same((await listAll(app, 'x')).map((d) => d.id), ['a0', 'a1', 'a2', 'a3', 'a4'], 'the refused loads stored nothing');
});

t.test('atomic: more lines or bytes than one transaction takes is 413, refused early, nothing stored', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  let produced = 0;
  const manyLines = Readable.from(
    (function* () {
      for (let i = 0; i < 30_000; i++, produced++) yield Buffer.from(`{"id":"m${i}"}\n`);
    })(),
  );
  const tooMany = await bulk(app, 'x', manyLines, '?atomic=true');
  t.equal(tooMany.statusCode, 413);
  t.match(tooMany.json(), { code: 'DOCKET_ERR_LIMIT_EXCEEDED', message: /at most 10000 lines/ });
  t.equal(tooMany.headers.connection, 'close', 'the unread rest of the body is not drained');
  t.ok(produced < 30_000, `stopped reading early (${produced} of 30000 lines read)`);

  produced = 0;
  const big = `{"pad":"${'y'.repeat(1000 * 1000)}"}\n`;
  const manyBytes = Readable.from(
    (function* () {
      for (let i = 0; i < 100; i++, produced++) yield Buffer.from(big);
    })(),
  );
  const tooLarge = await bulk(app, 'x', manyBytes, '?atomic=true');
  t.equal(tooLarge.statusCode, 413);
  t.match(tooLarge.json(), { code: 'DOCKET_ERR_LIMIT_EXCEEDED', message: /bytes of documents/ });
  t.ok(produced < 60, `stopped reading early (${produced} of 100 lines of 1 MB read)`);
  t.same(await listAll(app, 'x'), []);
});

t.test('media type, collection and query arguments are checked before the body is read', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  for (const type of ['application/json', 'text/plain']) {
    const response = await bulk(app, 'x', '{"id":"a"}\n', '', { 'content-type': type });
    t.equal(response.statusCode, 415, type);
    t.match(response.json(), { statusCode: 415, code: 'DOCKET_ERR_UNSUPPORTED_MEDIA_TYPE', error: 'Unsupported Media Type' });
  }
  const untyped = await app.inject({ method: 'POST', url: '/collections/x/bulk', payload: Buffer.from('{"id":"a"}\n') });
  t.equal(untyped.statusCode, 415);
  const withCharset = await bulk(app, 'x', '{"id":"a"}\n', '', { 'content-type': 'application/x-ndjson; charset=utf-8' });
  t.equal(withCharset.statusCode, 200, 'parameters of the media type are fine');

  const missing = await bulk(app, 'nope', '{"id":"a"}\n');
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().code, 'DOCKET_ERR_COLLECTION_NOT_FOUND');

  for (const query of ['?id_field=', `?id_field=${'x'.repeat(257)}`, `?id_field=${encodeURIComponent('é'.repeat(200))}`, '?atomic=maybe', '?atomic=true&atomic=false']) {
    const response = await bulk(app, 'x', '{"id":"a"}\n', query);
    t.match({ statusCode: response.statusCode, code: response.json().code }, { statusCode: 400, code: 'DOCKET_ERR_INVALID_ARGUMENT' }, query.slice(0, 40));
  }
  t.match((await bulk(app, 'x', '', '')).json(), { lines: 0, stored: 0, failed: 0, tsn: null, errors: [] }, 'an empty body stores nothing');
  t.match((await bulk(app, 'x', '', '?atomic=true')).json(), { lines: 0, stored: 0, tsn: null });
});

t.test('20,000 lines stream through a listening server in grouped transactions', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const tsnBefore = app.docket.store.lastTsn;
  const count = 20_000;
  const line = (i: number): string => JSON.stringify({ id: `d${String(i).padStart(5, '0')}`, i, text: `comment number ${i}` });
  const body = Readable.from(
    (function* () {
      for (let start = 0; start < count; start += 250) {
        let piece = '';
        for (let i = start; i < start + 250; i++) piece += line(i) + '\n';
        yield Buffer.from(piece);
      }
    })(),
  );
  const response = await request(`http://127.0.0.1:${port}/collections/x/bulk`, { method: 'POST', headers: NDJSON, body });
  t.equal(response.statusCode, 200);
  const report = (await response.body.json()) as { lines: number; stored: number; failed: number; tsn: number };
  t.match(report, { lines: count, stored: count, failed: 0 });
  t.ok(report.tsn - tsnBefore <= count / 1000 + 1, `grouped into few transactions (${report.tsn - tsnBefore})`);
  t.equal(app.docket.store.lastTsn, report.tsn);
  for (const i of [0, 999, 1000, 12_345, count - 1]) {
    const read = await request(`http://127.0.0.1:${port}/collections/x/docs/d${String(i).padStart(5, '0')}`);
    t.equal(await read.body.text(), `${line(i)}\n`);
  }
  const info = (await request(`http://127.0.0.1:${port}/collections/x`)).body.json() as Promise<{ documentsEstimate: number }>;
  t.equal((await info).documentsEstimate, count, 'exact: nothing was overwritten');
});

t.test('a client that aborts mid-body leaves the server serving and what was acknowledged stored', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const store = app.docket.store;
  const tsnBefore = store.lastTsn;
  const controller = new AbortController();
  let acknowledgedBeforeAbort: boolean | undefined;
  const body = Readable.from(
    (async function* () {
      for (let i = 0; i < 3000; i++) yield Buffer.from(`{"id":"a${String(i).padStart(4, '0')}","i":${i}}\n`);
      // The batches of lines 1-1000 and 1001-2000 are full (the third is cut only at line
      // 3001, which never comes): abort once the store has acknowledged both.
      acknowledgedBeforeAbort = await store.waitForChanges(tsnBefore + 1, 30_000);
      controller.abort();
      yield Buffer.from('{"id":"never"}\n');
    })(),
  );
  const outcome = await request(`http://127.0.0.1:${port}/collections/x/bulk`, { method: 'POST', headers: NDJSON, body, signal: controller.signal }).catch((error: unknown) => error);
  t.equal(acknowledgedBeforeAbort, true, 'the store acknowledged the two full batches before the abort');
  t.ok(outcome instanceof Error, 'the client saw its own abort');
  const health = await request(`http://127.0.0.1:${port}/healthz`);
  t.equal(health.statusCode, 200);
  await health.body.dump();
  const stored = await listAll(app, 'x');
  const transactions = store.lastTsn - tsnBefore;
  t.ok(stored.length >= 2000 && stored.length <= 3000, `the acknowledged batches stayed (${stored.length})`);
  t.equal(stored.length, 1000 * transactions, `whole batches: ${transactions} transactions of 1000 lines`);
  t.same(stored.map((d) => d.doc.i), Array.from({ length: stored.length }, (_, i) => i), 'the stored documents are the first lines, in order');
  t.notOk(stored.some((d) => d.id === 'never'));
  const again = await request(`http://127.0.0.1:${port}/collections/x/bulk`, { method: 'POST', headers: NDJSON, body: '{"id":"after"}\n' });
  t.match(await again.body.json(), { stored: 1 });
});

t.test('with two transactions awaiting acknowledgement the body is not read further', async (t) => {
  const app = await openApp(t);
  await createCollection(app, 'x');
  const store = app.docket.store;
  const batch = store.batch.bind(store);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let pending = 0;
  let pendingMax = 0;
  let twoPending!: () => void;
  const reachedTwo = new Promise<void>((resolve) => (twoPending = resolve));
  store.batch = async (operations) => {
    pendingMax = Math.max(pendingMax, ++pending);
    if (pending === 2) twoPending();
    try {
      await gate;
      return await batch(operations);
    } finally {
      pending--;
    }
  };
  t.teardown(() => void (store.batch = batch));
  let produced = 0;
  const body = Readable.from(
    (function* () {
      for (let i = 0; i < 10_000; i += 10, produced += 10) {
        let piece = '';
        for (let j = i; j < i + 10; j++) piece += `{"id":"p${j}"}\n`;
        yield Buffer.from(piece);
      }
    })(),
  );
  const loading = bulk(app, 'x', body);
  await reachedTwo;
  // Let everything that can run without the store run: streams move data in ticks and
  // microtasks, so a body still being read advances across these turns of the event loop.
  await turns(50);
  const readThen = produced;
  await turns(200);
  t.equal(pending, 2, 'two transactions wait');
  t.equal(produced, readThen, `reading stopped (${produced} of 10000 lines read, none in the last 200 turns of the event loop)`);
  t.ok(produced < 4000, `reading stopped early (${produced} of 10000 lines read)`);
  open();
  const report = (await loading).json();
  t.match(report, { lines: 10_000, stored: 10_000, failed: 0 });
  t.equal(pendingMax, 2);
});

t.test('a load in progress at shutdown ends 503 and what was acknowledged stays', async (t) => {
  const directory = t.testdir();
  const app = await buildApp({ config: { dataDirectory: directory }, store: { epochCheckIntervalMs: 0 } });
  await app.docket.opened;
  await createCollection(app, 'x');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const tsnBefore = app.docket.store.lastTsn;
  let stop!: () => void;
  const stalled = new Promise<void>((resolve) => (stop = resolve));
  let sentAll!: () => void;
  const allSent = new Promise<void>((resolve) => (sentAll = resolve));
  const body = Readable.from(
    (async function* () {
      for (let i = 0; i < 1500; i++) yield Buffer.from(`{"id":"s${String(i).padStart(4, '0')}"}\n`);
      sentAll();
      await stalled; // A client that stops sending.
    })(),
  );
  const answer = request(`http://127.0.0.1:${port}/collections/x/bulk`, { method: 'POST', headers: NDJSON, body }).then(
    async (response) => ({ statusCode: response.statusCode, body: (await response.body.json()) as { code: string } }),
    (error: unknown) => error,
  );
  // Shut down with the load in progress: its first batch (lines 1-1000) acknowledged, the
  // client stalled after line 1500, so the second batch is being filled and never cut.
  t.equal(await app.docket.store.waitForChanges(tsnBefore, 30_000), true, 'the first batch was acknowledged');
  await allSent;
  const closed = app.close();
  const response = await answer;
  stop();
  await closed;
  t.match(response, { statusCode: 503, body: { code: 'DOCKET_ERR_UNAVAILABLE' } });
  const reopened = await buildApp({ config: { dataDirectory: directory }, store: { epochCheckIntervalMs: 0 } });
  t.teardown(() => reopened.close());
  await reopened.docket.opened;
  t.equal((await listAll(reopened, 'x')).length, 1000, 'the acknowledged batch survived; the unfinished one was not sent');
});
