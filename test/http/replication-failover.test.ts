// Real processes on 127.0.0.1: a primary at --commit-level remote_flush (ANY 1) and two hot
// standbys under write load; SIGKILL the primary, promote the standby with the highest durable
// TSN (what a coordinator would do), and check every write the primary acknowledged is on the
// new primary, whole. Then the old primary restarts as a standby of the new one and either
// catches up or, if it had durable records no standby got, is refused for a diverged history
// (DOCKET_ERR_CHECKPOINT_NEEDED in its log) and rebuilds itself in place from the new primary's
// checkpoint (server/rebuild.ts), then follows it. Also: standbys refuse writes naming the primary,
// and a read naming a TSN waits until it is visible.

import t from 'tap';
import * as path from 'node:path';
import { serverGroup, type RunningServer } from '../helpers/server.js';

const WRITERS = 4;
const WRITES_PER_WRITER = 60;

async function json(url: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(url, init);
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
}

const put = (url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> =>
  json(url, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

async function replicationStats(server: RunningServer): Promise<Record<string, unknown>> {
  return (await json(`${server.url}/stats`)).body['replication'] as Record<string, unknown>;
}

t.test('primary + two standbys: SIGKILL the primary, promote, every acknowledged write is there; the old primary rejoins', async (t) => {
  const { root, start } = serverGroup(t, 'docket-failover-');
  const primary = await start({ dataDir: path.join(root, 'p'), args: ['--commit-level', 'remote_flush', '--commit-quorum', '1', '--replication-timeout-ms', '2000'] });
  const standbys: RunningServer[] = [];
  for (const name of ['s1', 's2']) {
    const standby = await start({ dataDir: path.join(root, name), args: ['--replica-of', primary.url, '--replica-name', name, '--read-wait-ms-max', '300'] });
    standbys.push(standby);
    await standby.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('streaming from'), `${name} streams`);
  }
  t.equal((await put(`${primary.url}/collections/c`, {})).status, 201);

  // A standby refuses writes, naming its primary.
  const refused = await put(`${standbys[0]!.url}/collections/c/docs/x`, { a: 1 });
  t.equal(refused.status, 421);
  t.equal(refused.body['code'], 'DOCKET_ERR_STANDBY_READ_ONLY');
  t.equal(refused.headers.get('x-docket-primary'), primary.url);

  // Read-your-writes on a standby: the TSN a write returned.
  const first = await put(`${primary.url}/collections/c/docs/first`, { n: 0 });
  t.equal(first.status, 201);
  const read = await json(`${standbys[1]!.url}/collections/c/docs/first`, { headers: { 'x-docket-min-tsn': String(first.body['tsn']) } });
  t.same(read.body, { n: 0 }, 'a read naming the write TSN sees the write');
  const ahead = await json(`${standbys[1]!.url}/collections/c/docs/first?min_tsn=999999`, { headers: {} });
  t.equal(ahead.status, 503, 'a TSN never written: 503 after the bounded wait');
  t.equal(ahead.headers.get('retry-after'), '1');

  // Write load; SIGKILL the primary while it runs.
  const acknowledged = new Map<string, { tsn: number; body: unknown }>();
  let stop = false;
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; i < WRITES_PER_WRITER && !stop; i++) {
      const id = `w${w}-${i % 20}`;
      const body = { w, i, text: `value ${w}/${i}` };
      try {
        const reply = await put(`${primary.url}/collections/c/docs/${id}`, body);
        if (reply.status === 200 || reply.status === 201) acknowledged.set(id, { tsn: reply.body['tsn'] as number, body });
      } catch {
        return; // The primary is gone.
      }
    }
  };
  const load = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
  // Kill once a good part of the load is acknowledged (an event, not a sleep).
  while (acknowledged.size < 30) await new Promise((resolve) => setImmediate(resolve));
  await primary.kill();
  stop = true;
  await load;
  t.ok(acknowledged.size >= 30, `writes acknowledged at remote_flush before the kill (${acknowledged.size})`);

  // Promote the standby with the highest durable TSN.
  const durable = await Promise.all(standbys.map(async (s) => (await replicationStats(s))['durableTsn'] as number));
  const best = durable[0]! >= durable[1]! ? 0 : 1;
  const promoted = standbys[best]!;
  const other = standbys[1 - best]!;
  const promotion = await json(`${promoted.url}/admin/promote`, { method: 'POST' });
  t.equal(promotion.status, 200, JSON.stringify(promotion.body));
  t.equal(promotion.body['term'], 2);
  t.equal((await json(`${promoted.url}/`)).body['role'], 'primary');

  // Every acknowledged write is on the new primary, whole (its latest acknowledged value, or a later write's).
  let checked = 0;
  for (const [id, { tsn, body }] of acknowledged) {
    const reply = await json(`${promoted.url}/collections/c/docs/${id}`);
    t.equal(reply.status, 200, `${id} is there`);
    const rev = Number((reply.headers.get('etag') ?? '').replace(/"/g, ''));
    if (rev === tsn) t.same(reply.body, body, `${id} at ${tsn} is whole`);
    else t.ok(rev > tsn, `${id} holds a later write (${rev} > ${tsn})`);
    checked++;
  }
  t.equal(checked, acknowledged.size);

  // The new primary takes writes; the other standby is restarted to follow it.
  const after = await put(`${promoted.url}/collections/c/docs/after`, { term: 2 });
  t.equal(after.status, 201);
  await other.stop();
  const follower = await start({ dataDir: path.join(root, best === 0 ? 's2' : 's1'), args: ['--replica-of', promoted.url, '--replica-name', 'follower'] });
  const seen = await json(`${follower.url}/collections/c/docs/after`, { headers: { 'x-docket-min-tsn': String(after.body['tsn']) } });
  t.same(seen.body, { term: 2 }, 'the other standby follows the new primary');

  // The old primary restarts as a standby of the new one: it catches up, or is refused for a diverged history.
  const old = await start({ dataDir: path.join(root, 'p'), args: ['--replica-of', promoted.url, '--replica-name', 'old'] });
  const outcome = await old.waitForLog((r) => typeof r.msg === 'string' && (r.msg.startsWith('streaming from') || r.msg.includes('needs a checkpoint')), 'old primary rejoins or is refused');
  if ((outcome.msg as string).startsWith('streaming from')) {
    const from = Number(/at TSN (\d+)/.exec(outcome.msg as string)![1]);
    t.ok(from - 1 <= (promotion.body['tsn'] as number), `a rejoined old primary (through ${from - 1}) had no record the promotion (${promotion.body['tsn']}) lost`);
    const caught = await json(`${old.url}/collections/c/docs/after`, { headers: { 'x-docket-min-tsn': String(after.body['tsn']) } });
    t.same(caught.body, { term: 2 }, 'the old primary follows the new one');
  } else {
    // Refused for a diverged history, it rebuilds itself in place from the new primary's checkpoint.
    t.match(outcome.msg, /diverged/);
    await old.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('rebuilt this standby in place'), 'the old primary rebuilt in place', 60_000);
    const caught = await json(`${old.url}/collections/c/docs/after`, { headers: { 'x-docket-min-tsn': String(after.body['tsn']) } });
    t.same(caught.body, { term: 2 }, 'the rebuilt old primary follows the new one');
  }
  t.equal((await put(`${old.url}/collections/c/docs/y`, { a: 1 })).status, 421, 'the old primary refuses writes as a standby');
});
