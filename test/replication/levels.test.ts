// Commit levels, the quorum and terms, one behaviour at a time: a write never answered as
// acknowledged at a weaker level (503 REPLICATION_TIMEOUT, committed on the primary; or 503
// QUORUM_LOST before anything is written under --on-quorum-loss fail); a silent standby leaves
// the quorum visibly; a standby refuses a primary of an older term and the primary refuses a
// standby of a newer one; a bad level header is a 400; a frame damaged in transit is refused.

import t from 'tap';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { DocketErrorCode } from '../../src/errors.js';
import { encodeFrame, FRAME_RECORD, FrameReader } from '../../src/replication/frame.js';
import { TermFile } from '../../src/replication/term.js';
import { ReplicationSource } from '../../src/replication/source.js';
import { DocumentStore } from '../../src/store.js';
import { openApp } from '../helpers/app.js';
import { Net, Node, sourceOptions, standbyOptions } from '../helpers/replication-sim.js';

const QUIET = { drop: 0, duplicate: 0, reorder: 0, corrupt: 0, split: 0, delay: 0, feedbackDrop: 0 };

t.test('HTTP: a remote level with no standby is 503 REPLICATION_TIMEOUT, the write committed on the primary', async (t) => {
  const app = await openApp(t, { config: { commitLevel: 'remote_flush', commitWaitMs: 100 } });
  t.equal((await app.inject({ method: 'PUT', url: '/collections/c', headers: { 'x-docket-commit-level': 'local' } })).statusCode, 201);
  const reply = await app.inject({ method: 'PUT', url: '/collections/c/docs/a', headers: { 'content-type': 'application/json' }, payload: '{"x":1}' });
  t.equal(reply.statusCode, 503);
  t.equal(reply.json().code, 'DOCKET_ERR_REPLICATION_TIMEOUT');
  t.match(reply.json().message, /committed on the primary at TSN \d+ but not confirmed at remote_flush/);
  t.equal((await app.inject({ method: 'GET', url: '/collections/c/docs/a' })).body, '{"x":1}\n', 'the write is committed here');
  const local = await app.inject({ method: 'PUT', url: '/collections/c/docs/b', headers: { 'content-type': 'application/json', 'x-docket-commit-level': 'local' }, payload: '{}' });
  t.equal(local.statusCode, 201, 'X-Docket-Commit-Level: local overrides the server level');
  const bad = await app.inject({ method: 'PUT', url: '/collections/c/docs/b', headers: { 'content-type': 'application/json', 'x-docket-commit-level': 'eventually' }, payload: '{}' });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().code, 'DOCKET_ERR_INVALID_ARGUMENT');
  const stats = (await app.inject({ method: 'GET', url: '/stats' })).json().replication;
  t.equal(stats.timeouts, 1);
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  t.match(metrics, /docket_replication_commit_timeouts 1/);
});

t.test('HTTP: --on-quorum-loss fail refuses a remote-level write before making it', async (t) => {
  const app = await openApp(t, { config: { commitLevel: 'remote_apply', onQuorumLoss: 'fail' } });
  t.equal((await app.inject({ method: 'PUT', url: '/collections/c', headers: { 'x-docket-commit-level': 'local' } })).statusCode, 201);
  const before = (await app.inject({ method: 'GET', url: '/' })).json().tsn;
  const reply = await app.inject({ method: 'PUT', url: '/collections/c/docs/a', headers: { 'content-type': 'application/json' }, payload: '{"x":1}' });
  t.equal(reply.statusCode, 503);
  t.equal(reply.json().code, 'DOCKET_ERR_REPLICATION_QUORUM_LOST');
  t.equal((await app.inject({ method: 'GET', url: '/' })).json().tsn, before, 'nothing was written');
  t.equal((await app.inject({ method: 'GET', url: '/collections/c/docs/a' })).statusCode, 404);
});

t.test('a standby that stops answering leaves the quorum; writes wait, then fail, never acknowledged weaker', async (t) => {
  const net = new Net(Math.random, QUIET);
  const primary = new Node('p', new SimFileSystem());
  await primary.open();
  await primary.start(sourceOptions('remote_flush', 1));
  net.primary = primary;
  const standby = new Node('s', new SimFileSystem());
  await standby.open();
  await standby.start(sourceOptions('remote_flush', 1), { link: net.link('s'), options: standbyOptions('s') });
  t.teardown(async () => {
    await standby.node.close();
    await standby.store.close();
    await primary.node.close();
    await primary.store.close();
  });
  const source = primary.node.source!;
  const { tsn: created } = await primary.store.createCollection('c');
  await source.waitFor(created, 'remote_flush');
  t.equal(source.inQuorum(), 1, 'the streaming standby is in the quorum');
  const { tsn } = await primary.store.put('c', 'a', { x: 1 });
  await source.waitFor(tsn, 'remote_apply');
  t.same(JSON.parse((await standby.store.get('c', 'a'))!.json), { x: 1 }, 'remote_apply: readable on the standby once confirmed');

  // The standby goes silent (its feedback is lost; the stream stays up): it leaves the quorum.
  net.faults = { ...QUIET, feedbackDrop: 1 };
  const left = await new Promise<number>((resolve) => {
    const check = setInterval(() => {
      if (source.inQuorum() === 0) {
        clearInterval(check);
        resolve(source.counters.quorumLeaves);
      }
    }, 5);
  });
  t.equal(left, 1, 'it left the quorum once, counted');
  const stats = source.stats() as { standbys: { inQuorum: boolean }[] };
  t.equal(stats.standbys[0]!.inQuorum, false, '/stats shows it out of the quorum');
  const late = await primary.store.put('c', 'b', { x: 2 });
  await t.rejects(source.waitFor(late.tsn, 'remote_flush'), { code: DocketErrorCode.REPLICATION_TIMEOUT }, 'the write is not confirmed at a weaker level: it fails');
  net.faults = QUIET;
  const again = await primary.store.put('c', 'c', { x: 3 });
  await source.waitFor(again.tsn, 'remote_flush');
  t.equal(source.inQuorum(), 1, 'feedback back: in the quorum again');
});

t.test('terms: a standby of a newer term is refused by an older primary, and refuses it', async (t) => {
  const net = new Net(Math.random, QUIET);
  const primary = new Node('p', new SimFileSystem());
  await primary.open();
  await primary.start(sourceOptions('local', 1));
  net.primary = primary;
  const fs = new SimFileSystem();
  const standby = new Node('s', fs);
  await standby.open();
  const terms = await TermFile.open(fs, '/db');
  await terms.promote(0); // This standby's directory has been in term 2.
  await standby.start(sourceOptions('local', 1), { link: net.link('s'), options: standbyOptions('s') });
  t.teardown(async () => {
    await standby.node.close();
    await standby.store.close();
    await primary.node.close();
    await primary.store.close();
  });
  t.throws(() => primary.node.source!.open({ name: 'x', from: 1, lastTerm: 0, term: 2 }, new AbortController().signal), { code: DocketErrorCode.REPLICATION_TERM_STALE });
  await primary.store.createCollection('c');
  // The standby cannot follow: its term is newer than the primary's.
  t.notOk(await standby.store.waitReplayed(1, 200), 'nothing is replayed from an older primary');
  t.equal(standby.node.terms.term, 2);
  t.match((standby.node.stats() as { lastError?: string }).lastError, /term 2/);
  t.throws(() => primary.node.source!.feedback({ name: 's', term: 2, written: 1, durable: 1, replayed: 1 }), { code: DocketErrorCode.REPLICATION_TERM_STALE });
});

t.test('frames: a damaged frame is refused, a split one is read whole', async (t) => {
  const frame = encodeFrame(FRAME_RECORD, 3, 42, Buffer.from('payload bytes'));
  const reader = new FrameReader();
  t.same(reader.push(frame.subarray(0, 5)), []);
  t.same(reader.push(frame.subarray(5, 20)), []);
  const [whole] = reader.push(frame.subarray(20));
  t.match(whole, { kind: FRAME_RECORD, term: 3, tsn: 42 });
  t.equal(whole!.body.toString(), 'payload bytes');
  for (let i = 4; i < frame.length; i++) {
    const damaged = Buffer.from(frame);
    damaged[i]! ^= 0x10;
    t.throws(() => new FrameReader().push(damaged), { name: 'FrameError', message: /checksum/ }, `a bit flipped at byte ${i}`);
  }
});

t.test('binlog purge keeps what a streaming standby still needs, up to the retention bound', async (t) => {
  const purgeAfter = async (retentionBytes: number, hold: boolean): Promise<{ firstTsn: number; lastTsn: number }> => {
    const fs = new SimFileSystem();
    const store = await DocumentStore.open({ directory: '/db', fileSystem: fs, binlogSegmentSizeBytes: 16 * 1024, epochCheckIntervalMs: 0, epochLagBytesMax: 32 * 1024 });
    const source = new ReplicationSource(store, await TermFile.open(fs, '/db'), { ...sourceOptions('local', 1), retentionBytes, segmentSizeBytes: 16 * 1024 });
    const stop = new AbortController();
    // A standby that connected from TSN 1 and reads nothing past the hello.
    const stream = source.open({ name: 'slow', from: 1, lastTerm: 0, term: 1 }, stop.signal)[Symbol.asyncIterator]();
    if (hold) await stream.next();
    await store.createCollection('c');
    for (let i = 0; i < 300; i++) await store.put('c', `d${i % 50}`, { i, text: 'x'.repeat(200) });
    await store.maintainEpochs();
    await store.maintainEpochs();
    const { firstTsn, lastTsn } = store.stats().binlog;
    stop.abort();
    await stream.return?.(undefined);
    source.close();
    await store.close();
    return { firstTsn, lastTsn };
  };
  const free = await purgeAfter(2 ** 40, false);
  t.ok(free.firstTsn > 1, `with no standby the binlog is purged (starts at ${free.firstTsn} of ${free.lastTsn})`);
  const held = await purgeAfter(2 ** 40, true);
  t.equal(held.firstTsn, 1, 'a streaming standby at TSN 1 keeps the binlog from TSN 1');
  const bounded = await purgeAfter(32 * 1024, true);
  t.ok(bounded.firstTsn > 1, `past the retention bound the purge goes on (starts at ${bounded.firstTsn})`);
});
