// Real processes on 127.0.0.1: a primary and two standbys; one standby is promoted and the other
// is re-pointed to it with POST /admin/replica-of, without a restart: it then follows the new
// primary (later writes reach it, a write refused there names the new primary, /stats says so).
// Bad re-point bodies get 400 DOCKET_ERR_BODY_INVALID; a primary refuses with 409. About 6 s.

import t from 'tap';
import * as path from 'node:path';
import { serverGroup } from '../helpers/server.js';

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
}

const send = (url: string, method: string, body: unknown): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> =>
  json(url, { method, headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

t.test('a standby is re-pointed to a promoted primary without a restart', async (t) => {
  const { root, start } = serverGroup(t, 'docket-repoint-');
  const primary = await start({ dataDir: path.join(root, 'p') });
  const [s1, s2] = [await start({ dataDir: path.join(root, 's1'), args: ['--replica-of', primary.url, '--replica-name', 's1'] }), await start({ dataDir: path.join(root, 's2'), args: ['--replica-of', primary.url, '--replica-name', 's2'] })];
  t.equal((await send(`${primary.url}/collections/c`, 'PUT', {})).status, 201);
  const first = await send(`${primary.url}/collections/c/docs/first`, 'PUT', { n: 1 });
  for (const standby of [s1!, s2!]) t.same((await json(`${standby.url}/collections/c/docs/first`, { headers: { 'x-docket-min-tsn': String(first.body['tsn']) } })).body, { n: 1 }, 'both standbys hold the first write');

  // Bad bodies, before anything changes.
  for (const bad of [{}, { primary: 'ftp://127.0.0.1:1' }, { primary: 'not a url' }, { primary: s1!.url, token: 7 }, { primary: s1!.url, other: 1 }, '[1]', { primary: `http://127.0.0.1:1/${'x'.repeat(2100)}` }]) {
    const reply = await send(`${s2!.url}/admin/replica-of`, 'POST', bad);
    t.equal(reply.status, 400, `refused: ${JSON.stringify(bad).slice(0, 60)}`);
    t.equal(reply.body['code'], 'DOCKET_ERR_BODY_INVALID');
  }
  const onPrimary = await send(`${primary.url}/admin/replica-of`, 'POST', { primary: s1!.url });
  t.equal(onPrimary.status, 409, 'a primary is not re-pointed');
  t.equal(onPrimary.body['code'], 'DOCKET_ERR_REPLICATION_ROLE');

  // Failover: s1 is promoted, s2 re-pointed to it.
  await primary.stop();
  t.equal((await send(`${s1!.url}/admin/promote`, 'POST', '')).status, 200);
  const repointed = await send(`${s2!.url}/admin/replica-of`, 'POST', { primary: `${s1!.url}/` });
  t.equal(repointed.status, 200, JSON.stringify(repointed.body));
  t.same(repointed.body, { role: 'standby', primary: s1!.url, previous: primary.url });

  const after = await send(`${s1!.url}/collections/c/docs/after`, 'PUT', { term: 2 });
  t.equal(after.status, 201);
  t.same((await json(`${s2!.url}/collections/c/docs/after`, { headers: { 'x-docket-min-tsn': String(after.body['tsn']) } })).body, { term: 2 }, 'the re-pointed standby follows the new primary');
  const refused = await send(`${s2!.url}/collections/c/docs/x`, 'PUT', { x: 1 });
  t.equal(refused.status, 421);
  t.equal(refused.headers.get('x-docket-primary'), s1!.url, 'a refused write names the new primary');
  const stats = (await json(`${s2!.url}/stats`)).body['replication'] as { primary: string; phase: string; term: number };
  t.equal(stats.primary, s1!.url);
  t.equal(stats.phase, 'streaming');
  t.equal(stats.term, 2, 'it took the new term from the new primary');
});
