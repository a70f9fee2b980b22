// The change feed, GET /changes: content and order, pages that never split a transaction, the
// collection filter, purged resume points, names of collections dropped before a restart, long
// polls, server-sent events over a real socket, shutdown with open feeds, and that only
// acknowledged transactions appear.

import Fastify, { type FastifyInstance } from 'fastify';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { RealFileSystem, type File, type OpenMode } from '../../storage/index.js';
import { buildApp, type AppOptions } from '../../server/app.js';
import { DEFAULTS } from '../../server/config.js';
import { Docket } from '../../server/http/context.js';
import { installErrorHandlers } from '../../server/http/errors.js';
import { DocumentStore } from '../../src/store.js';
import { changesRoutes } from '../../routes/changes.js';

/** Small binlog segments: a store opens without preallocating 64 MiB. */
const SEGMENT_SIZE_BYTES = 256 * 1024;

async function openApp(t: Test, options: AppOptions = {}, directory = t.testdir()): Promise<FastifyInstance> {
  const app = await buildApp({ ...options, config: { dataDirectory: directory, ...options.config }, store: { binlogSegmentSizeBytes: SEGMENT_SIZE_BYTES, ...options.store } });
  t.teardown(() => app.close());
  await app.docket.opened;
  return app;
}

async function call(app: FastifyInstance, method: 'GET' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown): Promise<{ statusCode: number; body: any }> {
  const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { statusCode: response.statusCode, body: response.body === '' ? undefined : response.json() };
}

async function changes(app: FastifyInstance, query: string): Promise<{ changes: any[]; last: number }> {
  const response = await call(app, 'GET', `/changes?${query}`);
  if (response.statusCode !== 200) throw new Error(`GET /changes?${query}: ${response.statusCode} ${JSON.stringify(response.body)}`);
  return response.body;
}

/** How long a wait for an event may take before the test fails (a bound, never a pause). */
const EVENT_WAIT_MS = 10_000;

/**
 * Resolves once `condition` holds, checking it now and again each time `subscribe`'s callback
 * fires (the waited-for event); rejects after EVENT_WAIT_MS.
 */
function whenever(subscribe: (check: () => void) => () => void, condition: () => boolean, what: string): Promise<void> {
  if (condition()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (unsubscribe(), reject(new Error(`timed out waiting for ${what}`))), EVENT_WAIT_MS);
    const unsubscribe = subscribe(() => {
      if (!condition()) return;
      clearTimeout(timer);
      unsubscribe();
      resolve();
    });
  });
}

/**
 * Watches a store's waitForChanges, the call a long poll or event stream makes when it has
 * nothing to send: `waiting(since)` resolves once a wait after `since` has begun.
 */
function watchWaits(store: DocumentStore): { readonly calls: number[]; waiting(since: number, count?: number): Promise<void> } {
  const calls: number[] = [];
  const listeners = new Set<() => void>();
  const original = store.waitForChanges.bind(store);
  store.waitForChanges = (since, timeoutMs, signal) => {
    calls.push(since);
    const wait = original(since, timeoutMs, signal);
    for (const listener of listeners) listener();
    return wait;
  };
  const subscribe = (check: () => void): (() => void) => (listeners.add(check), () => listeners.delete(check));
  const begun = (since: number): number => calls.filter((call) => call === since).length;
  return { calls, waiting: (since, count = 1) => whenever(subscribe, () => begun(since) >= count, `${count} wait(s) for changes after TSN ${since}`) };
}

/** Writes the fixture every content test reads: TSNs 1..8. */
async function writeFixture(app: FastifyInstance): Promise<void> {
  const store = app.docket.store;
  await store.createCollection('a'); // 1
  await store.createCollection('b'); // 2
  await store.put('a', 'x', { n: 1 }); // 3
  await store.put('a', 'y', { n: 2 }); // 4
  await store.patch('a', 'x', { m: 3 }); // 5
  await store.delete('a', 'y'); // 6
  await store.batch([
    { op: 'put', collection: 'b', id: '1', document: { k: true } },
    { op: 'put', collection: 'a', id: 'z', document: {} },
    { op: 'delete', collection: 'a', id: 'x' },
  ]); // 7
  await store.dropCollection('b'); // 8
}

const FIXTURE = [
  { tsn: 1, collection: 'a', op: 'create_collection' },
  { tsn: 2, collection: 'b', op: 'create_collection' },
  { tsn: 3, collection: 'a', id: 'x', op: 'put', rev: 3 },
  { tsn: 4, collection: 'a', id: 'y', op: 'put', rev: 4 },
  { tsn: 5, collection: 'a', id: 'x', op: 'patch', rev: 5 },
  { tsn: 6, collection: 'a', id: 'y', op: 'delete', rev: 6 },
  { tsn: 7, collection: 'b', id: '1', op: 'put', rev: 7 },
  { tsn: 7, collection: 'a', id: 'z', op: 'put', rev: 7 },
  { tsn: 7, collection: 'a', id: 'x', op: 'delete', rev: 7 },
  { tsn: 8, collection: 'b', op: 'drop_collection' },
];

t.test('the feed lists creates, puts, patches, deletes, batches and drops in TSN order', async (t) => {
  const app = await openApp(t);
  t.same(await changes(app, ''), { changes: [], last: 0 }, 'an empty store has an empty feed');
  await writeFixture(app);
  t.same(await changes(app, ''), { changes: FIXTURE, last: 8 });
  t.same(await changes(app, 'since=5'), { changes: FIXTURE.slice(5), last: 8 }, 'since is exclusive');
  t.same(await changes(app, 'since=8'), { changes: [], last: 8 }, 'nothing new');
  t.same(await changes(app, 'since=100'), { changes: [], last: 100 }, 'past the end: empty, last = since');
  t.same(await changes(app, 'collection=a'), { changes: FIXTURE.filter((c) => c.collection === 'a'), last: 8 });
  t.same(await changes(app, 'collection=b&since=2'), { changes: FIXTURE.slice(6).filter((c) => c.collection === 'b'), last: 8 }, 'a dropped collection is still named');
  t.same(await changes(app, 'collection=nope'), { changes: [], last: 8 }, 'an unknown collection filters everything out, and the cursor still advances');
  t.same(await changes(app, 'feed=normal&since=7&limit=5'), { changes: FIXTURE.slice(9), last: 8 });
});

t.test('a page never splits a transaction, and following last reads the whole feed', async (t) => {
  const app = await openApp(t);
  await writeFixture(app);
  t.same(await changes(app, 'limit=1'), { changes: FIXTURE.slice(0, 1), last: 1 });
  t.same(await changes(app, 'since=5&limit=2'), { changes: FIXTURE.slice(5, 9), last: 7 }, 'the batch at TSN 7 comes whole');
  t.same(await changes(app, 'since=6&limit=1'), { changes: FIXTURE.slice(6, 9), last: 7 });
  t.same(await changes(app, 'since=6&limit=1&collection=b'), { changes: FIXTURE.slice(6, 7), last: 7 });
  const seen: unknown[] = [];
  let since = 0;
  for (let pages = 0; pages < 20; pages++) {
    const page = await changes(app, `since=${since}&limit=2`);
    if (page.changes.length === 0) break;
    t.ok(page.changes.every((c) => c.tsn > since && c.tsn <= page.last));
    seen.push(...page.changes);
    since = page.last;
  }
  t.same(seen, FIXTURE);
});

t.test('bad since, limit, timeout, feed or Last-Event-ID is a 400', async (t) => {
  const app = await openApp(t);
  for (const query of ['since=-1', 'since=abc', 'since=1.5', 'limit=0', 'limit=10001', 'feed=bogus', 'feed=longpoll&timeout=60001', 'timeout=-5']) {
    const response = await call(app, 'GET', `/changes?${query}`);
    t.equal(response.statusCode, 400, query);
    t.equal(response.body.code, 'DOCKET_ERR_INVALID_ARGUMENT', query);
  }
  const response = await app.inject({ method: 'GET', url: '/changes?feed=sse', headers: { 'last-event-id': 'seven' } });
  t.equal(response.statusCode, 400);
  t.equal(response.json().code, 'DOCKET_ERR_INVALID_ARGUMENT');
  await t.rejects(app.docket.store.changes(-1), { code: 'DOCKET_ERR_INVALID_ARGUMENT' });
  await t.rejects(app.docket.store.changes(0, { limit: 0 }), { code: 'DOCKET_ERR_INVALID_ARGUMENT' });
});

/** Options that let a test purge the binlog: small segments, flushes on demand. */
const PURGEABLE: AppOptions = { store: { binlogSegmentSizeBytes: 4096, epochCheckIntervalMs: 0, epochLagBytesMax: 1 } };

/** Puts documents into `collection` until the binlog has started `segments` more segments. */
async function fillSegments(app: FastifyInstance, collection: string, segments: number): Promise<void> {
  const store = app.docket.store;
  const target = store.stats().binlog.segments + segments;
  for (let i = 0; store.stats().binlog.segments < target; i++) {
    if (i > 2000) throw new Error('the binlog does not rotate');
    await store.put(collection, `filler-${i}`, { text: 'x'.repeat(100) });
  }
}

/** Runs the epoch keeper until the binlog starts after TSN `tsn`. */
async function purgeThrough(app: FastifyInstance, tsn: number): Promise<void> {
  const store = app.docket.store;
  for (let i = 0; store.stats().binlog.firstTsn <= tsn; i++) {
    if (i > 20) throw new Error(`the binlog was not purged past TSN ${tsn}`);
    await store.maintainEpochs();
  }
}

t.test('a resume point the binlog has purged is a 410 naming the oldest TSN available', async (t) => {
  const app = await openApp(t, PURGEABLE);
  const store = app.docket.store;
  await store.createCollection('c');
  await fillSegments(app, 'c', 2);
  await purgeThrough(app, 1);
  const firstTsn = store.stats().binlog.firstTsn;
  const response = await call(app, 'GET', '/changes?since=0');
  t.equal(response.statusCode, 410);
  t.equal(response.body.code, 'DOCKET_ERR_CHANGES_PURGED');
  t.match(response.body.message, `oldest TSN available is ${firstTsn}`);
  t.equal((await call(app, 'GET', `/changes?since=${firstTsn - 2}&feed=longpoll`)).statusCode, 410, 'a long poll too');
  t.equal((await call(app, 'GET', `/changes?since=${firstTsn - 2}&feed=sse`)).statusCode, 410, 'an event stream too, before it starts');
  const page = await changes(app, `since=${firstTsn - 1}&limit=1`);
  t.same(page.changes, [{ tsn: firstTsn, collection: 'c', id: page.changes[0].id, op: 'put', rev: firstTsn }], 'the oldest TSN available is readable');
});

t.test('writes to collections created and dropped before a restart, creates purged, are named by looking ahead for their drops', async (t) => {
  const directory = t.testdir();
  const first = await buildApp({ ...PURGEABLE, config: { dataDirectory: directory } });
  const store = await first.docket.opened;
  await store.createCollection('keep');
  const { tsn: created1 } = await store.createCollection('temp1');
  await store.createCollection('temp2');
  await fillSegments(first, 'keep', 1);
  const { tsn: written } = await store.put('temp1', 'a', { v: 1 });
  await store.put('temp2', 'b', { v: 2 });
  await store.patch('temp1', 'a', { v: 3 });
  const { tsn: dropped2 } = await store.dropCollection('temp2');
  await store.put('keep', 'z', {});
  const { tsn: dropped1 } = await store.dropCollection('temp1');
  await purgeThrough(first, created1 + 1);
  const firstTsn = store.stats().binlog.firstTsn;
  t.ok(firstTsn <= written, 'the writes to temp1 and temp2 are still in the binlog, their creates are not');
  await first.close();

  const app = await openApp(t, PURGEABLE, directory);
  t.same(app.docket.store.listCollections().map((c) => c.name), ['keep']);
  const expected = [
    { tsn: written, collection: 'temp1', id: 'a', op: 'put', rev: written },
    { tsn: written + 1, collection: 'temp2', id: 'b', op: 'put', rev: written + 1 },
    { tsn: written + 2, collection: 'temp1', id: 'a', op: 'patch', rev: written + 2 },
    { tsn: dropped2, collection: 'temp2', op: 'drop_collection' },
    { tsn: dropped2 + 1, collection: 'keep', id: 'z', op: 'put', rev: dropped2 + 1 },
    { tsn: dropped1, collection: 'temp1', op: 'drop_collection' },
  ];
  t.same((await changes(app, `since=${written - 1}&collection=temp2`)).changes, expected.filter((c) => c.collection === 'temp2'), 'found by a search from temp2\'s first write');
  t.same((await changes(app, `since=${written - 1}`)).changes, expected);
  const all = await changes(app, `since=${firstTsn - 1}`);
  t.same(all.changes.slice(-expected.length), expected, 'and from the oldest TSN held, past filler writes to keep');
  await app.close();

  // Reopened again, a search that starts later and one that starts earlier find both names.
  const again = await openApp(t, PURGEABLE, directory);
  t.same((await changes(again, `since=${written}`)).changes, expected.slice(1));
  t.same((await changes(again, `since=${written - 1}&limit=1`)).changes, expected.slice(0, 1));
  t.same((await changes(again, `since=${firstTsn - 1}`)).changes.slice(-expected.length), expected);
});

t.test('a long poll answers at once when there is a change, waits for one, and times out empty', async (t) => {
  const app = await openApp(t);
  const store = app.docket.store;
  await store.createCollection('a');
  await store.createCollection('b');
  t.same(await changes(app, 'feed=longpoll&since=1&timeout=5000'), { changes: [{ tsn: 2, collection: 'b', op: 'create_collection' }], last: 2 });

  let answered = false;
  const waits = watchWaits(store);
  const started = Date.now();
  const poll = changes(app, 'feed=longpoll&since=2&timeout=10000&collection=a').finally(() => (answered = true));
  await waits.waiting(2);
  t.notOk(answered, 'it waits while nothing happens');
  await store.put('b', 'other', {});
  await waits.waiting(3); // It saw TSN 3, the filter dropped it, and it waits again.
  t.notOk(answered, 'a change the filter drops does not end it');
  t.same(waits.calls, [2, 3], 'it waited after TSN 2, then after TSN 3');
  await store.put('a', 'mine', {});
  t.same(await poll, { changes: [{ tsn: 4, collection: 'a', id: 'mine', op: 'put', rev: 4 }], last: 4 });
  t.ok(Date.now() - started < 5000, 'it answered when the write came, not at the timeout');

  const before = Date.now();
  t.same(await changes(app, 'feed=longpoll&since=4&timeout=200'), { changes: [], last: 4 });
  t.ok(Date.now() - before >= 190, 'it waited out its timeout');
  t.same(await changes(app, 'feed=longpoll&since=0&timeout=200&collection=none'), { changes: [], last: 4 }, 'filtered out, it times out having looked through TSN 4');
});

// ---- server-sent events over a real socket ----

interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
  readonly comment?: string;
}

/** A client of an event stream on 127.0.0.1 that parses events as they arrive. */
class SseClient {
  readonly events: SseEvent[] = [];
  ended = false;
  private buffer = '';
  /** Called after each event parsed and at the end of the stream. */
  private readonly listeners = new Set<() => void>();
  private constructor(
    private readonly request: http.ClientRequest,
    readonly response: http.IncomingMessage,
  ) {
    response.setEncoding('utf8');
    response.on('data', (text: string) => this.take(text));
    response.on('end', () => this.end());
    response.on('error', () => this.end());
  }

  static open(port: number, query: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const request = http.get({ host: '127.0.0.1', port, path: `/changes?feed=sse&${query}`, headers }, (response) => resolve(new SseClient(request, response)));
      request.on('error', reject);
    });
  }

  get changes(): SseEvent[] {
    return this.events.filter((event) => event.event === 'change');
  }

  async waitForChanges(count: number): Promise<void> {
    await this.until(() => this.changes.length >= count, `${count} change events (have ${this.changes.length})`);
  }

  /** Resolves once `condition` holds, checked as each event arrives and at the end of the stream. */
  until(condition: () => boolean, what: string): Promise<void> {
    return whenever((check) => (this.listeners.add(check), () => this.listeners.delete(check)), condition, what);
  }

  private end(): void {
    this.ended = true;
    for (const listener of [...this.listeners]) listener();
  }

  close(): void {
    this.request.destroy();
  }

  private take(text: string): void {
    this.buffer += text;
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const event: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) event.comment = line.slice(1).trim();
        else event[line.slice(0, line.indexOf(':'))] = line.slice(line.indexOf(':') + 1).trimStart();
      }
      this.events.push(event);
      for (const listener of [...this.listeners]) listener();
    }
  }
}

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return (app.server.address() as AddressInfo).port;
}

t.test('an event stream sends each change, ids only where transactions end, live changes too, and resumes from Last-Event-ID', async (t) => {
  const app = await openApp(t);
  const port = await listen(app);
  await writeFixture(app);
  const client = await SseClient.open(port, 'since=0');
  t.teardown(() => client.close());
  t.equal(client.response.statusCode, 200);
  t.match(client.response.headers['content-type'], /^text\/event-stream/);
  await client.waitForChanges(FIXTURE.length);
  t.same(client.changes.map((event) => JSON.parse(event.data!)), FIXTURE);
  const ids = client.changes.map((event) => event.id);
  t.same(ids, ['1', '2', '3', '4', '5', '6', undefined, undefined, '7', '8'], 'the batch at TSN 7 carries its id on its last change only');

  await app.docket.store.createCollection('c');
  await app.docket.store.batch([
    { op: 'put', collection: 'c', id: 'p', document: {} },
    { op: 'put', collection: 'c', id: 'q', document: {} },
  ]);
  await client.waitForChanges(FIXTURE.length + 3);
  t.same(client.changes.slice(FIXTURE.length).map((event) => [event.id, JSON.parse(event.data!).id]), [['9', undefined], [undefined, 'p'], ['10', 'q']], 'changes after the stream opened arrive live');
  client.close();

  const resumed = await SseClient.open(port, 'since=0', { 'last-event-id': '7' });
  t.teardown(() => resumed.close());
  await resumed.waitForChanges(4);
  t.same(resumed.changes.map((event) => JSON.parse(event.data!).tsn), [8, 9, 10, 10], 'Last-Event-ID wins over since');

  const filtered = await SseClient.open(port, 'since=0&collection=b');
  t.teardown(() => filtered.close());
  await filtered.waitForChanges(3);
  t.same(filtered.changes.map((event) => [event.id, JSON.parse(event.data!).op]), [['2', 'create_collection'], ['7', 'put'], ['8', 'drop_collection']], 'filtered, the last change shown of a transaction carries its id');
});

t.test('an idle event stream sends heartbeat comments', async (t) => {
  const app = Fastify();
  installErrorHandlers(app);
  const docket = new Docket({ ...DEFAULTS, dataDirectory: t.testdir() }, () => DocumentStore.open({ directory: path.join(t.testdirName, 'store'), binlogSegmentSizeBytes: SEGMENT_SIZE_BYTES }));
  await app.register(changesRoutes, { docket, sseHeartbeatMs: 30 });
  app.addHook('preClose', async () => docket.beginClose());
  app.addHook('onClose', async () => docket.close());
  t.teardown(() => app.close());
  await docket.opened;
  const client = await SseClient.open(await listen(app), '');
  t.teardown(() => client.close());
  await client.until(() => client.events.filter((event) => event.comment === 'heartbeat').length >= 3, 'three heartbeats');
  t.same(client.changes, []);
});

t.test('closing the app ends open event streams and long polls promptly', async (t) => {
  const app = await buildApp({ config: { dataDirectory: t.testdir() }, store: { binlogSegmentSizeBytes: SEGMENT_SIZE_BYTES } });
  await app.docket.opened;
  await app.docket.store.createCollection('a');
  const waits = watchWaits(app.docket.store);
  const port = await listen(app);
  const stream = await SseClient.open(port, 'since=0');
  await stream.waitForChanges(1);
  const poll = new Promise<{ statusCode: number; body: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/changes?feed=longpoll&since=1&timeout=60000' }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (text: string) => (body += text));
      response.on('end', () => resolve({ statusCode: response.statusCode!, body }));
    }).on('error', reject);
  });
  // Both wait after TSN 1: the stream once it has sent it, the long poll from the start.
  await waits.waiting(1, 2);
  const started = Date.now();
  await app.close();
  t.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
  const answer = await poll;
  t.equal(answer.statusCode, 200);
  t.same(JSON.parse(answer.body), { changes: [], last: 1 }, 'the long poll answers with what it has');
  await stream.until(() => stream.ended, 'the event stream to end');
  t.ok(stream.ended);
});

// ---- only acknowledged transactions ----

/** The real file system, with the binlog's writes or syncs held back on demand. */
class GatedFileSystem extends RealFileSystem {
  private gate: Promise<void> | undefined;
  private release: (() => void) | undefined;
  private arrive: (() => void) | undefined;
  held: 'write' | 'sync' | undefined;
  /** Settles when a binlog write or sync of the kind held first waits at the gate. */
  reached: Promise<void> = Promise.resolve();

  hold(what: 'write' | 'sync'): void {
    this.held = what;
    this.gate = new Promise((resolve) => (this.release = resolve));
    this.reached = new Promise((resolve) => (this.arrive = resolve));
  }

  override open(filePath: string, mode: OpenMode): Promise<File> {
    const opened = super.open(filePath, mode);
    if (!filePath.includes(`${path.sep}binlog${path.sep}`)) return opened;
    return opened.then((file) => this.gated(file));
  }

  letGo(): void {
    this.held = undefined;
    this.release?.();
  }

  private gated(file: File): File {
    const pass = async (what: 'write' | 'sync'): Promise<void> => {
      if (this.held !== what) return;
      this.arrive?.();
      await this.gate;
    };
    return {
      path: file.path,
      size: () => file.size(),
      write: async (position, data) => (await pass('write'), file.write(position, data)),
      append: async (data) => (await pass('write'), file.append(data)),
      sync: async () => (await pass('sync'), file.sync()),
      read: (position, length) => file.read(position, length),
      truncate: (sizeBytes) => file.truncate(sizeBytes),
      close: () => file.close(),
    };
  }
}

async function checkOnlyAcknowledged(t: Test, sync: 'immediate' | 'periodic', held: 'write' | 'sync'): Promise<void> {
  const fileSystem = new GatedFileSystem();
  const app = await openApp(t, { config: { sync, syncIntervalMs: 60_000 }, store: { fileSystem } });
  const store = app.docket.store;
  await store.createCollection('c');
  await store.put('c', 'acknowledged', {});
  fileSystem.hold(held);
  const writing = store.put('c', 'pending', {});
  await fileSystem.reached; // The binlog's write or sync of TSN 3 waits at the gate.
  t.same([store.lastTsn, store.stats().binlog.lastTsn], [3, 3], 'the put is sequenced and handed to the binlog');
  const page = await changes(app, 'since=0');
  t.same(page.changes.map((c) => c.id), [undefined, 'acknowledged'], `the ${held} held back, TSN 3 is not shown`);
  t.equal(page.last, 2);
  t.same(await changes(app, 'feed=longpoll&since=2&timeout=100'), { changes: [], last: 2 });
  const poll = changes(app, 'feed=longpoll&since=2&timeout=5000');
  fileSystem.letGo();
  await writing;
  t.same((await poll).changes.map((c) => c.id), ['pending'], 'a long poll wakes when it is acknowledged');
}

t.test('under immediate sync the feed shows only durable transactions', async (t) => {
  await checkOnlyAcknowledged(t, 'immediate', 'sync');
});

t.test('under periodic sync the feed shows written transactions, durable or not, and only those', async (t) => {
  const fileSystem = new GatedFileSystem();
  const app = await openApp(t, { config: { sync: 'periodic', syncIntervalMs: 60_000 }, store: { fileSystem } });
  await app.docket.store.createCollection('c');
  await app.docket.store.put('c', 'x', {});
  t.ok(app.docket.store.stats().binlog.durableTsn < 2, 'not yet synced');
  t.equal((await changes(app, '')).last, 2, 'yet acknowledged, so shown');
  await app.close();
  await checkOnlyAcknowledged(t, 'periodic', 'write');
});
