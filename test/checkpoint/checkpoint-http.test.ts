// The checkpoint routes in process: a streamed checkpoint installs into a store that opens with
// the server's documents; a client that goes away mid-stream releases what the stream held
// (the binlog is purged again); POST writes a local checkpoint and refuses bad bodies.

import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { openApp } from '../helpers/app.js';
import { STORE_OPTIONS } from '../helpers/document-workload.js';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { DocumentStore } from '../../src/store.js';
import { installCheckpoint } from '../../src/checkpoint/stream.js';

const json = { 'content-type': 'application/json' };

t.test('GET /admin/checkpoint streams a checkpoint that installs and opens; a client that leaves releases it', async (t) => {
  const fs = new SimFileSystem();
  const app = await openApp(t, { store: { ...STORE_OPTIONS, fileSystem: fs, directory: '/db' }, collection: 'c' });
  for (let i = 0; i < 40; i++) await app.inject({ method: 'PUT', url: `/collections/c/docs/d${i}`, payload: JSON.stringify({ i, text: 'x'.repeat(300) }), headers: json });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

  const whole = await request(`${url}/admin/checkpoint`);
  t.equal(whole.statusCode, 200);
  t.equal(whole.headers['content-type'], 'application/vnd.docket.checkpoint');
  const descriptor = await installCheckpoint(whole.body, { fileSystem: fs, directory: '/copy' });
  t.equal(descriptor.tsn, Number(whole.headers['x-docket-checkpoint-tsn']));
  const copy = await DocumentStore.open({ ...STORE_OPTIONS, directory: '/copy', fileSystem: fs.clone() });
  t.equal((await copy.list('c', { limit: 100 })).documents.length, 40, 'the copy holds every document');
  await copy.close();

  // A client that reads the headers and goes away: the stream must let go of the binlog.
  const store = app.docket.store;
  const abandoned = new AbortController();
  const response = await request(`${url}/admin/checkpoint`, { signal: abandoned.signal });
  t.equal(response.statusCode, 200);
  const heldFrom = store.stats().binlog.firstTsn;
  abandoned.abort();
  await response.body.dump().catch(() => undefined);
  for (let i = 40; i < 200; i++) await store.put('c', `d${i}`, { i, text: 'y'.repeat(300) });
  // Purges go on once the stream is gone (it may take the server a moment to see the close).
  for (let round = 0; round < 200 && store.stats().binlog.firstTsn <= heldFrom; round++) {
    await store.maintainEpochs();
    await new Promise((resolve) => setImmediate(resolve));
  }
  t.ok(store.stats().binlog.firstTsn > heldFrom, `the binlog was purged past TSN ${heldFrom} after the client left (starts at ${store.stats().binlog.firstTsn})`);
});

t.test('POST /admin/checkpoint writes a checkpoint on the server\'s disk; bad bodies are coded errors', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  await app.inject({ method: 'PUT', url: '/collections/c/docs/a', payload: '{"a":1}', headers: json });
  const outside = mkdtempSync(path.join(os.tmpdir(), 'docket-checkpoint-'));
  t.teardown(() => rmSync(outside, { recursive: true, force: true }));
  const directory = path.join(outside, 'local');
  const written = await app.inject({ method: 'POST', url: '/admin/checkpoint', payload: JSON.stringify({ directory }), headers: json });
  t.equal(written.statusCode, 201, written.body);
  t.match(written.json(), { directory, tsn: 2 });
  const copy = await DocumentStore.open({ directory });
  t.equal((await copy.get('c', 'a'))?.json, '{"a":1}');
  await copy.close();
  for (const [body, code] of [
    [{ directory: 'relative/path' }, 'DOCKET_ERR_INVALID_ARGUMENT'],
    [{ directory }, 'DOCKET_ERR_CHECKPOINT_TARGET_NOT_EMPTY'],
    [{ directory: `${directory}-2`, flush: 'yes' }, 'DOCKET_ERR_INVALID_ARGUMENT'],
    [{ directory: `${directory}-3`, extra: 1 }, 'DOCKET_ERR_INVALID_ARGUMENT'],
    [[directory], 'DOCKET_ERR_INVALID_ARGUMENT'],
  ] as const) {
    const response = await app.inject({ method: 'POST', url: '/admin/checkpoint', payload: JSON.stringify(body), headers: json });
    t.equal(response.json().code, code, JSON.stringify(body));
  }
  const flushed = await app.inject({ method: 'POST', url: '/admin/checkpoint', payload: JSON.stringify({ directory: `${directory}-4`, flush: true }), headers: json });
  t.equal(flushed.statusCode, 201);
  t.equal(flushed.json().replayFromTsn, 2, 'with flush, the copy replays from the last transaction');
});
