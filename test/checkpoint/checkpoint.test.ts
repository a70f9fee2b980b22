// Checkpoints piece by piece, through the simulated file layer: captured tables outlive a
// compaction until released, captured binlog segments outlive a purge until released, a
// checkpoint under `periodic` sync is durable through the last acknowledged write, and every
// kind of bad stream (a flipped byte anywhere, a cut anywhere, bytes after the end, a target
// that is not empty) is a coded error that leaves nothing that looks complete or opens.

import t from 'tap';
import { DocumentStore } from '../../src/store.js';
import { Engine, WriteBatch, checkpointEngine } from '../../storage/index.js';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { COMPLETE_MARKER, INCOMPLETE_MARKER, type CheckpointSource } from '../../src/checkpoint/checkpoint.js';
import { installCheckpoint, streamCheckpoint } from '../../src/checkpoint/stream.js';
import { writeCheckpoint } from '../../src/checkpoint/target.js';
import { STORE_OPTIONS } from '../helpers/document-workload.js';

async function collect(source: CheckpointSource): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of streamCheckpoint(source).chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

async function* chunked(bytes: Buffer, size = 97): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function storeWith(fs: SimFileSystem, documents: number, options: Partial<Parameters<typeof DocumentStore.open>[0]> = {}): Promise<DocumentStore> {
  const store = await DocumentStore.open({ ...STORE_OPTIONS, directory: '/db', fileSystem: fs, ...options });
  await store.createCollection('c');
  for (let i = 0; i < documents; i++) await store.put('c', `d${i}`, { i, text: 'x'.repeat(200) });
  return store;
}

t.test('captured tables outlive a compaction that obsoletes them, and are deleted once released', async (t) => {
  const fs = new SimFileSystem();
  const engine = await Engine.open({ directory: '/e', fileSystem: fs, autoCompaction: false });
  await engine.createFamily('f');
  for (let round = 0; round < 4; round++) {
    const batch = new WriteBatch();
    for (let i = 0; i < 50; i++) batch.put('f', Buffer.from(`k${i}`), Buffer.from(`v${round}-${i}`));
    await engine.write(batch, { tag: round + 1 });
    await engine.flush();
  }
  const captured = checkpointEngine(engine, 'engine');
  const tables = captured.files.filter((file) => file.name.endsWith('.sst')).map((file) => file.source!);
  t.equal(tables.length, 4, 'four L0 tables captured');
  await engine.compactAll();
  t.ok(engine.stats().compactions > 0, 'the compaction ran');
  t.same(tables.filter((table) => fs.readFileSync(table) === undefined), [], 'every captured table is still there');
  captured.release();
  await engine.close(); // Waits for the deletions the release started.
  t.same(tables.filter((table) => fs.readFileSync(table) !== undefined), [], 'released, the obsolete tables are deleted');
});

t.test('captured binlog segments outlive purges until released', async (t) => {
  const fs = new SimFileSystem();
  const store = await storeWith(fs, 30);
  const source = await store.checkpoint();
  const segments = source.files.filter((file) => file.name.startsWith('binlog/')).map((file) => file.source!);
  for (let i = 30; i < 200; i++) await store.put('c', `d${i}`, { i, text: 'y'.repeat(200) });
  for (let i = 0; i < 3; i++) await store.maintainEpochs();
  t.ok(store.stats().epochs!.replayFromTsn > source.descriptor.replayFromTsn, 'the global epoch moved past the checkpoint');
  t.same(segments.filter((segment) => fs.readFileSync(segment) === undefined), [], 'every captured segment is still there');
  t.ok(store.stats().binlog.firstTsn <= source.descriptor.replayFromTsn, 'the binlog was not purged past the checkpoint');
  source.release();
  await store.maintainEpochs();
  t.ok(store.stats().binlog.firstTsn > source.descriptor.replayFromTsn, 'released, the purge goes on');
  await store.close();
});

t.test('under periodic sync a checkpoint holds every acknowledged write, through a power loss', async (t) => {
  const fs = new SimFileSystem();
  const store = await storeWith(fs, 20, { sync: { mode: 'periodic', intervalMs: 60_000 } });
  t.ok(store.stats().binlog.durableTsn < store.lastTsn, 'acknowledged writes not yet synced');
  const source = await store.checkpoint();
  const descriptor = await writeCheckpoint(source, { fileSystem: fs, directory: '/copy' });
  source.release();
  t.equal(descriptor.tsn, store.lastTsn);
  const copy = await DocumentStore.open({ ...STORE_OPTIONS, directory: '/copy', fileSystem: fs.image(1, 'drop-unsynced') });
  t.equal(copy.lastTsn, 21);
  t.same((await copy.list('c', { limit: 100 })).documents.length, 20);
  await copy.close();
  await store.close();
});

t.test('a naive store cannot be checkpointed', async (t) => {
  const store = await storeWith(new SimFileSystem(), 1, { durability: 'naive' });
  await t.rejects(store.checkpoint(), { code: 'DOCKET_ERR_INVALID_ARGUMENT' });
  await store.close();
});

t.test('bad streams are coded errors, never complete, never open', async (t) => {
  const fs = new SimFileSystem();
  const store = await storeWith(fs, 60);
  const source = await store.checkpoint();
  const bytes = await collect(source);
  t.equal(bytes.length, streamCheckpoint(source).sizeBytes, 'the announced length is exact');
  source.release();
  await store.close();
  let n = 0;
  const attempt = async (stream: AsyncIterable<Buffer>): Promise<string | undefined> => {
    const directory = `/bad${n++}`;
    const target = new SimFileSystem();
    try {
      await installCheckpoint(stream, { fileSystem: target, directory });
      return 'complete';
    } catch (error) {
      if (target.readFileSync(`${directory}/${COMPLETE_MARKER}`) !== undefined) return 'marked complete';
      if (target.readFileSync(`${directory}/${INCOMPLETE_MARKER}`) === undefined) return 'not marked incomplete';
      const opened = await DocumentStore.open({ ...STORE_OPTIONS, directory, fileSystem: target }).then((s) => s.close().then(() => 'opened'), (e: { code?: string }) => e.code);
      if (opened !== 'DOCKET_ERR_CHECKPOINT_INCOMPLETE') return `open: ${opened}`;
      return (error as { code?: string }).code;
    }
  };
  t.equal(await attempt(chunked(bytes)), 'complete', 'the stream as sent installs');
  // A flipped bit anywhere: every byte of the first and last 64, every 29th between.
  const corrupt = new Map<string, number>();
  for (let offset = 0; offset < bytes.length; offset += offset < 64 || offset > bytes.length - 64 ? 1 : 29) {
    const damaged = Buffer.from(bytes);
    damaged[offset]! ^= 0x10;
    const outcome = (await attempt(chunked(damaged))) ?? 'no code';
    corrupt.set(outcome, (corrupt.get(outcome) ?? 0) + 1);
  }
  t.same([...corrupt.keys()].filter((code) => code !== 'DOCKET_ERR_CHECKPOINT_CORRUPT' && code !== 'DOCKET_ERR_CHECKPOINT_TRUNCATED'), [], `flipped bytes: ${JSON.stringify(Object.fromEntries(corrupt))}`);
  t.ok((corrupt.get('DOCKET_ERR_CHECKPOINT_CORRUPT') ?? 0) > 500, 'most flips are caught by a checksum');
  // Cut anywhere.
  const truncated = new Map<string, number>();
  for (let length = 0; length < bytes.length; length += length < 64 || length > bytes.length - 64 ? 1 : 41) {
    const outcome = (await attempt(chunked(bytes.subarray(0, length)))) ?? 'no code';
    truncated.set(outcome, (truncated.get(outcome) ?? 0) + 1);
  }
  t.same([...truncated.keys()], ['DOCKET_ERR_CHECKPOINT_TRUNCATED'], `cut streams: ${JSON.stringify(Object.fromEntries(truncated))}`);
  t.equal(await attempt(chunked(Buffer.concat([bytes, Buffer.from('x')]))), 'DOCKET_ERR_CHECKPOINT_CORRUPT', 'bytes after the end record');
  t.equal(await attempt(chunked(Buffer.from('GET / HTTP/1.1\r\n\r\n' + 'x'.repeat(40)))), 'DOCKET_ERR_CHECKPOINT_CORRUPT', 'not a checkpoint at all');
  // A target that is not empty is refused before anything is written.
  await t.rejects(installCheckpoint(chunked(bytes), { fileSystem: fs, directory: '/db' }), { code: 'DOCKET_ERR_CHECKPOINT_TARGET_NOT_EMPTY' });
  t.equal(fs.readFileSync(`/db/${INCOMPLETE_MARKER}`), undefined, 'nothing written into it');
});

t.test('the worked example of src/checkpoint/FORMAT.md', async (t) => {
  const bytes = Buffer.from('MANIFEST-000003\n');
  const descriptor = { format: 'docket-checkpoint/1' as const, tsn: 0, startedTsn: 0, replayFromTsn: 1, createdAt: '2026-12-03T00:00:00.000Z', files: [{ name: 'engine/CURRENT', sizeBytes: 16 }] };
  const source: CheckpointSource = { descriptor, files: [{ name: 'engine/CURRENT', sizeBytes: 16, bytes, immutable: false }], fileSystem: new SimFileSystem(), sizeBytes: 16, release: () => undefined };
  const stream = await collect(source);
  const hex = (from: number, to: number): string => stream.subarray(from, to).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  t.equal(stream.length, 246);
  t.equal(hex(0, 25), '44 4b 54 43 48 4b 50 54 01 01 00 00 00 10 00 00 00 00 00 00 00 f2 62 5e 51', 'header');
  t.equal(hex(25, 36), '46 0e 00 10 00 00 00 00 00 00 00', 'file frame');
  t.equal(stream.subarray(36, 50).toString(), 'engine/CURRENT');
  t.equal(hex(50, 54), 'b1 20 8b 51', 'frame crc');
  t.equal(hex(70, 74), 'ee 8b b0 f7', 'data crc');
  t.equal(hex(74, 79), '45 a3 00 00 00', 'end record');
  t.equal(hex(242, 246), 'f5 3b 18 bd', 'end crc');
  const fs = new SimFileSystem();
  t.same(await installCheckpoint(chunked(stream, 5), { fileSystem: fs, directory: '/x' }), descriptor, 'it installs');
  t.equal(fs.readFileSync('/x/engine/CURRENT')?.toString(), 'MANIFEST-000003\n');
});

t.test('a checkpoint with flush holds almost no binlog: its copy replays at most one transaction', async (t) => {
  const fs = new SimFileSystem();
  const store = await storeWith(fs, 40, { engine: { memtableSizeBytes: 1024 * 1024 } });
  const plain = await store.checkpoint();
  plain.release();
  t.ok(plain.descriptor.replayFromTsn < store.lastTsn - 10, `without flush, replay starts at ${plain.descriptor.replayFromTsn} of ${store.lastTsn}`);
  const source = await store.checkpoint({ flush: true });
  await writeCheckpoint(source, { fileSystem: fs, directory: '/copy' });
  source.release();
  t.equal(source.descriptor.replayFromTsn, store.lastTsn, 'with flush, replay starts at the last transaction');
  const copy = await DocumentStore.open({ ...STORE_OPTIONS, directory: '/copy', fileSystem: fs.image(2, 'drop-unsynced') });
  t.ok((copy.stats().recovery.replay?.records ?? 0) <= 1, 'the copy replays at most one transaction');
  t.equal((await copy.list('c', { limit: 100 })).documents.length, 40);
  await copy.close();
  await store.close();
});
