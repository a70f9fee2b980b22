// Real processes on 127.0.0.1: a new standby (empty data directory) starts from a checkpoint of
// its primary (GET /replication/checkpoint), not from the primary's first record, then follows
// the log from the checkpoint's TSN + 1, including an index the primary builds, which the
// standby then queries through; a seeding cut short is taken again at the next start;
// a role without the replicate permission gets no checkpoint.

import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { serverGroup } from '../helpers/server.js';

const DOCUMENTS = 300;

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
}

const put = (url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> =>
  json(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

t.test('a new standby is seeded from a checkpoint of its primary, then follows the log from its TSN + 1', async (t) => {
  const { root, start } = serverGroup(t, 'docket-seed-');
  const primary = await start({ dataDir: path.join(root, 'p') });
  t.equal((await put(`${primary.url}/collections/c`, {})).status, 201);
  let lastTsn = 0;
  for (let i = 0; i < DOCUMENTS; i++) {
    // The body as text: a number past a double's precision is stored as sent.
    const reply = await json(`${primary.url}/collections/c/docs/d${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: `{"i":${i},"text":"document ${i}","big":12345678901234567890}` });
    t.equal(reply.status, 201);
    lastTsn = reply.body['tsn'] as number;
  }

  // A seeding cut short: the directory holds only the INCOMPLETE marker a checkpoint target writes first.
  const dir = path.join(root, 's');
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'CHECKPOINT-INCOMPLETE'), 'cut short\n');
  const standby = await start({ dataDir: dir, args: ['--replica-of', primary.url, '--replica-name', 's'] });
  const streaming = await standby.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('streaming from'), 'the standby streams');
  t.ok(standby.logs.some((line) => line.includes('cut short: seeding again')), 'the seeding cut short is taken again');
  const seeded = ((await json(`${standby.url}/stats`)).body['replication'] as { seeded?: { tsn: number; bytes: number } }).seeded;
  t.ok(seeded, '/stats says the standby was seeded');
  t.ok(seeded!.tsn >= lastTsn, `the checkpoint holds every write acknowledged before it began (${seeded!.tsn} >= ${lastTsn})`);
  t.ok(seeded!.bytes > 0);
  t.equal(Number(/at TSN (\d+)/.exec(streaming.msg as string)![1]), seeded!.tsn + 1, 'the log is pulled from the checkpoint TSN + 1, not from TSN 1');

  // Everything the primary held is on the standby, byte for byte, and later writes follow.
  for (let i = 0; i < DOCUMENTS; i += 37) {
    const reply = await fetch(`${standby.url}/collections/c/docs/d${i}`);
    t.equal((await reply.text()).trimEnd(), `{"i":${i},"text":"document ${i}","big":12345678901234567890}`);
  }
  const after = await put(`${primary.url}/collections/c/docs/after`, { after: true });
  t.equal(after.status, 201);
  const seen = await json(`${standby.url}/collections/c/docs/after`, { headers: { 'x-docket-min-tsn': String(after.body['tsn']) } });
  t.same(seen.body, { after: true }, 'a write after the checkpoint reaches the seeded standby');
  t.equal((await json(`${standby.url}/collections/c`)).body['documents'], DOCUMENTS + 1, 'the live count came with the checkpoint and follows the log');


  // An index the primary builds over the documents already there reaches the standby with its
  // entries; the standby answers a find (a POST that reads) through it.
  const index = await json(`${primary.url}/collections/c/indexes/by_i`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fields: ['i'] }) });
  t.equal(index.status, 201, JSON.stringify(index.body));
  let state = index.body['state'];
  while (state !== 'ready') {
    const seen = await json(`${primary.url}/collections/c/indexes/by_i`);
    state = seen.body['state'];
    if (state === 'failed') break;
    if (state !== 'ready') await new Promise((resolve) => setImmediate(resolve));
  }
  t.equal(state, 'ready', 'the primary built the index');
  const marker = await put(`${primary.url}/collections/c/docs/marker`, { i: 100000 });
  const find = await json(`${standby.url}/collections/c/find`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-docket-min-tsn': String(marker.body['tsn']) }, body: JSON.stringify({ selector: { i: { $gte: 297 } } }) });
  t.equal(find.status, 200, JSON.stringify(find.body));
  t.same((find.body['documents'] as { id: string }[]).map((d) => d.id), ['d297', 'd298', 'd299', 'marker'], 'the standby finds through the replicated index');
  t.equal(find.body['index'], 'by_i');
  t.equal((await json(`${standby.url}/collections/c/indexes/by_i`)).body['state'], 'ready');

  // A standby does not serve checkpoints; a standby restarted on its own directory is not seeded again.
  const refused = await json(`${standby.url}/replication/checkpoint`);
  t.equal(refused.body['code'], 'DOCKET_ERR_REPLICATION_ROLE');
  await standby.stop();
  const again = await start({ dataDir: dir, args: ['--replica-of', primary.url, '--replica-name', 's'] });
  await again.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('streaming from'), 'the restarted standby streams');
  t.notOk(((await json(`${again.url}/stats`)).body['replication'] as { seeded?: unknown }).seeded, 'a standby with a store is not seeded again');
});
