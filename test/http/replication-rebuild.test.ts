// Real processes on 127.0.0.1: a standby whose history diverged from its primary's (it holds
// more TSNs than the primary wrote: DOCKET_ERR_CHECKPOINT_NEEDED) rebuilds itself in place from
// the primary's checkpoint while it runs (server/rebuild.ts), then follows the log; its own
// diverged writes are gone, the primary's are there, /stats tells the rebuild, and no rebuild or
// old directory is left beside the data directory. Then the same again with the standby
// SIGKILLed as soon as it logs that the rebuild began: restarted, it opens one whole copy (the
// old one, or the new one if the swap was done) and ends following the primary. About 10 s.

import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { serverGroup, startServer } from '../helpers/server.js';

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const put = (url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> =>
  json(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** A data directory whose history diverged from the primary's: a store of its own, with `writes` documents. */
async function divergedStore(dir: string, writes: number): Promise<void> {
  const own = await startServer({ dataDir: dir });
  try {
    await put(`${own.url}/collections/c`, {});
    for (let i = 0; i < writes; i++) await put(`${own.url}/collections/c/docs/own${i}`, { own: i });
  } finally {
    await own.stop();
  }
}

const rebuilt = (r: { msg?: string }): boolean => typeof r.msg === 'string' && r.msg.startsWith('rebuilt this standby in place');

t.test('a diverged standby rebuilds itself in place from its primary and follows it', async (t) => {
  const { root, start } = serverGroup(t, 'docket-rebuild-');
  const primary = await start({ dataDir: path.join(root, 'p') });
  t.equal((await put(`${primary.url}/collections/c`, {})).status, 201);
  for (let i = 0; i < 20; i++) t.equal((await put(`${primary.url}/collections/c/docs/p${i}`, { p: i })).status, 201);

  const dir = path.join(root, 's');
  await divergedStore(dir, 40); // 41 TSNs, past the primary's 21.
  const standby = await start({ dataDir: dir, args: ['--replica-of', primary.url, '--replica-name', 's'] });
  await standby.waitForLog(rebuilt, 'the rebuild in place', 60_000);
  t.ok(standby.logs.some((line) => line.includes('needs a checkpoint')), 'it was refused for its diverged history first');
  const streaming = await standby.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('streaming from') && standby.records.some(rebuilt) && standby.records.indexOf(r) > standby.records.findIndex(rebuilt), 'streaming after the rebuild');
  t.ok(streaming, 'it streams from the primary after the rebuild');

  const stats = (await json(`${standby.url}/stats`)).body['replication'] as { phase: string; rebuild: { completed: number; failed: number; last: { tsn: number } } };
  t.equal(stats.rebuild.completed, 1, '/stats counts the rebuild');
  t.ok(stats.rebuild.last.tsn >= 21, `the checkpoint holds the primary's writes (through ${stats.rebuild.last.tsn})`);
  t.equal(stats.phase, 'streaming');
  t.equal((await json(`${standby.url}/collections/c/docs/own3`)).status, 404, "the standby's diverged writes are gone");
  const after = await put(`${primary.url}/collections/c/docs/after`, { after: true });
  t.same((await json(`${standby.url}/collections/c/docs/after`, { headers: { 'x-docket-min-tsn': String(after.body['tsn']) } })).body, { after: true }, 'later writes reach it');
  t.same((await json(`${standby.url}/collections/c/docs/p7`)).body, { p: 7 }, "the primary's earlier writes are there");
  t.same(readdirSync(root).sort(), ['p', 's'], 'no rebuild, old or trash directory is left');
  t.equal((await put(`${standby.url}/collections/c/docs/z`, { z: 1 })).status, 421, 'it still refuses writes');

  // SIGKILL as soon as the rebuild begins: the restart opens one whole copy and ends following.
  const dir2 = path.join(root, 's2');
  await divergedStore(dir2, 40);
  const victim = await start({ dataDir: dir2, args: ['--replica-of', primary.url, '--replica-name', 's2'] });
  await victim.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('rebuilding this standby in place'), 'the rebuild begins', 60_000);
  await victim.kill();
  const again = await start({ dataDir: dir2, args: ['--replica-of', primary.url, '--replica-name', 's2'] });
  const last = await put(`${primary.url}/collections/c/docs/last`, { last: true });
  const seen = await json(`${again.url}/collections/c/docs/last`, { headers: { 'x-docket-min-tsn': String(last.body['tsn']) } });
  for (let tries = 0; seen.status !== 200 && tries < 200; tries++) {
    await again.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('streaming from'), 'streaming', 60_000);
    Object.assign(seen, await json(`${again.url}/collections/c/docs/last`, { headers: { 'x-docket-min-tsn': String(last.body['tsn']) } }));
  }
  t.same(seen.body, { last: true }, 'after the SIGKILL and a restart it follows the primary');
  t.equal((await json(`${again.url}/collections/c/docs/own3`)).status, 404, 'with the diverged copy gone');
  t.notOk(existsSync(`${dir2}.rebuild`) || existsSync(`${dir2}.old`), 'no rebuild or old directory is left');
});
