import t from 'tap';
import { Engine, WriteBatch, StorageErrorCode } from '../../storage/index.js';
import { SimFileSystem } from '../../storage/sim-file-system.js';

const key = (text: string): Buffer => Buffer.from(text);

async function collect(iterator: AsyncIterable<{ key: Buffer; value: Buffer }>): Promise<string[]> {
  const out: string[] = [];
  for await (const { key, value } of iterator) out.push(`${key}=${value}`);
  return out;
}

t.test('puts, deletes and gets across families survive flush, compaction and reopen', async (t) => {
  const directory = t.testdir();
  let engine = await Engine.open({ directory, memtableSizeBytes: 4096, autoCompaction: false });
  await engine.createFamily('a');
  await engine.createFamily('b');
  for (let i = 0; i < 300; i++) {
    const batch = new WriteBatch().put('a', key(`k${String(i).padStart(4, '0')}`), key(`v${i}`)).put('b', key(`x${i}`), key(`y${i}`));
    if (i % 3 === 0) batch.delete('a', key(`k${String(i - 1).padStart(4, '0')}`));
    await engine.write(batch, { tag: i + 1 });
  }
  t.equal(String(await engine.get('a', key('k0010'))), 'v10');
  t.equal(await engine.get('a', key('k0011')), undefined, 'deleted by the batch of i = 12');
  await engine.flush();
  await engine.compactAll();
  t.equal(String(await engine.get('b', key('x299'))), 'y299');
  t.equal(engine.flags().get('a')?.tag, 300);
  await engine.close();
  engine = await Engine.open({ directory });
  t.same(engine.listFamilies(), ['a', 'b']);
  t.equal(String(await engine.get('a', key('k0298'))), 'v298');
  t.equal(await engine.get('a', key('k0298x')), undefined);
  const all = await collect(engine.iterator('a'));
  t.equal(all.length, 300 - 99, 'i = 3, 6, ..., 297 deleted k(i - 1)');
  const reverse = await collect(engine.iterator('a', { reverse: true, limit: 3 }));
  t.same(reverse, ['k0299=v299', 'k0298=v298', 'k0297=v297']);
  t.same(await collect(engine.iterator('a', { gt: key('k0001'), lt: key('k0005') })), ['k0003=v3', 'k0004=v4']);
  t.same(await collect(engine.iterator('a', { prefix: key('k002'), reverse: true, limit: 2 })), ['k0028=v28', 'k0027=v27']);
  await engine.close();
});

t.test('a snapshot keeps seeing the versions it was taken at', async (t) => {
  const engine = await Engine.open({ directory: t.testdir(), memtableSizeBytes: 2048, autoCompaction: false });
  await engine.createFamily('f');
  await engine.write(new WriteBatch().put('f', key('a'), key('1')));
  const snapshot = engine.snapshot();
  await engine.write(new WriteBatch().put('f', key('a'), key('2')).delete('f', key('a')).put('f', key('b'), key('3')));
  await engine.flush();
  await engine.compactAll();
  t.equal(String(await engine.get('f', key('a'), { snapshot })), '1');
  t.equal(await engine.get('f', key('a')), undefined);
  t.same(await collect(engine.iterator('f', { snapshot })), ['a=1']);
  snapshot.release();
  await engine.close();
});

t.test('with the WAL on, written batches survive a crash of unsynced state', async (t) => {
  const fs = new SimFileSystem();
  const engine = await Engine.open({ directory: '/db', fileSystem: fs, wal: true });
  await engine.createFamily('f');
  for (let i = 0; i < 50; i++) await engine.write(new WriteBatch().put('f', key(`k${i}`), key(`v${i}`)));
  const reopened = await Engine.open({ directory: '/db', fileSystem: fs.image(1, 'drop-unsynced') });
  t.equal(String(await reopened.get('f', key('k49'))), 'v49');
  t.same((await collect(reopened.iterator('f'))).length, 50);
  await reopened.close();
});

t.test('without the WAL, a family recovers exactly to its last flush', async (t) => {
  const fs = new SimFileSystem();
  const engine = await Engine.open({ directory: '/db', fileSystem: fs });
  await engine.createFamily('f');
  await engine.write(new WriteBatch().put('f', key('a'), key('1')), { tag: 1 });
  await engine.flush();
  await engine.write(new WriteBatch().put('f', key('b'), key('2')), { tag: 2 });
  const reopened = await Engine.open({ directory: '/db', fileSystem: fs.image(1, 'drop-unsynced') });
  t.equal(String(await reopened.get('f', key('a'))), '1');
  t.equal(await reopened.get('f', key('b')), undefined);
  t.same(reopened.flags().get('f'), { tag: 1, lsnFirst: 1, lsnLast: 1 });
  await reopened.close();
});

t.test('an unknown family is a coded error', async (t) => {
  const engine = await Engine.open({ directory: t.testdir() });
  await t.rejects(engine.get('nope', key('a')), { code: StorageErrorCode.FAMILY_NOT_FOUND });
  await engine.createFamily('x');
  await t.rejects(engine.createFamily('x'), { code: StorageErrorCode.FAMILY_EXISTS });
  await engine.close();
});

t.test('a dropped family disappears with its tables, and its name can be reused empty', async (t) => {
  const fs = new SimFileSystem();
  const engine = await Engine.open({ directory: '/db', fileSystem: fs, memtableSizeBytes: 1024 });
  await engine.createFamily('gone');
  await engine.createFamily('kept');
  for (let i = 0; i < 40; i++) await engine.write(new WriteBatch().put('gone', key(`k${i}`), Buffer.alloc(100, i)).put('kept', key(`k${i}`), key('v')));
  await engine.flush();
  const tablesBefore = fs.listAll().filter((path) => path.endsWith('.sst')).length;
  await engine.dropFamily('gone');
  t.same(engine.listFamilies(), ['kept']);
  t.ok(fs.listAll().filter((path) => path.endsWith('.sst')).length < tablesBefore, 'its tables were deleted');
  await t.rejects(engine.get('gone', key('k1')), { code: StorageErrorCode.FAMILY_NOT_FOUND });
  await engine.createFamily('gone');
  t.same(await collect(engine.iterator('gone')), [], 'a new family of that name starts empty');
  await engine.close();
  const reopened = await Engine.open({ directory: '/db', fileSystem: fs.image(1, 'drop-unsynced') });
  t.same(reopened.listFamilies(), ['gone', 'kept']);
  t.same(await collect(reopened.iterator('gone')), []);
  t.equal((await collect(reopened.iterator('kept'))).length, 40);
  await reopened.close();
});

t.test('getMany reads several families at one snapshot', async (t) => {
  const engine = await Engine.open({ directory: t.testdir() });
  await engine.createFamily('a');
  await engine.createFamily('b');
  await engine.write(new WriteBatch().put('a', key('x'), key('1')).put('b', key('y'), key('2')));
  const snapshot = engine.snapshot();
  await engine.write(new WriteBatch().put('a', key('x'), key('3')).delete('b', key('y')));
  const at = await engine.getMany([{ family: 'a', key: key('x') }, { family: 'b', key: key('y') }, { family: 'b', key: key('z') }], { snapshot });
  t.same(at.map((value) => value?.toString()), ['1', '2', undefined]);
  const now = await engine.getMany([{ family: 'a', key: key('x') }, { family: 'b', key: key('y') }]);
  t.same(now.map((value) => value?.toString()), ['3', undefined]);
  snapshot.release();
  await engine.close();
});

t.test('applyAt keeps each item at its original LSN and applies only what include accepts', async (t) => {
  const engine = await Engine.open({ directory: t.testdir() });
  await engine.createFamily('a');
  await engine.createFamily('b');
  const batch = new WriteBatch().put('a', key('k'), key('from-a')).put('b', key('k'), key('from-b'));
  const seen: string[] = [];
  await engine.applyAt(batch, 41, { tag: 7, include: (family, lsn) => (seen.push(`${family}@${lsn}`), family === 'b') });
  t.same(seen, ['a@41', 'b@42']);
  t.equal(await engine.get('a', key('k')), undefined, 'the item include refused is absent');
  t.equal(String(await engine.get('b', key('k'))), 'from-b');
  t.equal(engine.lastLsnAssigned, 42);
  t.equal(await engine.write(new WriteBatch().put('a', key('n'), key('v'))), 43, 'new writes continue after it');
  await engine.flush(['b']);
  t.same(engine.flags().get('b'), { tag: 7, lsnFirst: 41, lsnLast: 42 });
  await engine.close();
});

t.test('writes slow down and stop while L0 piles up, and all complete once compaction catches up', async (t) => {
  const engine = await Engine.open({
    directory: t.testdir(), memtableSizeBytes: 2048, l0CompactionTriggerFiles: 2, l0SlowdownTriggerFiles: 3, l0StopTriggerFiles: 4, level1SizeBytes: 16 * 1024,
  });
  await engine.createFamily('f');
  for (let i = 0; i < 400; i++) await engine.write(new WriteBatch().put('f', key(`k${i % 150}`), Buffer.alloc(200, i)));
  const stats = engine.stats();
  t.ok(stats.slowdowns + stats.stallMs > 0, `${stats.slowdowns} slowdowns, ${stats.stallMs} ms stalled`);
  t.ok(stats.families[0]!.levels[0]!.files < 4 + 2, 'L0 stayed near its stop trigger');
  t.equal((await collect(engine.iterator('f'))).length, 150);
  await engine.close();
});

t.test('contradictory options are refused before any file is written', async (t) => {
  const directory = `${t.testdir()}/never`;
  await t.rejects(Engine.open({ directory, l0CompactionTriggerFiles: 8, l0StopTriggerFiles: 4 }), { code: StorageErrorCode.INVALID_ARGUMENT });
  await t.rejects(Engine.open({ directory, memtableSizeBytes: 0 }), { code: StorageErrorCode.INVALID_ARGUMENT, message: /memtableSizeBytes/ });
  const { existsSync } = await import('node:fs');
  t.notOk(existsSync(directory));
});

t.test('an iterator given two lower or two upper bounds is refused', async (t) => {
  const engine = await Engine.open({ directory: t.testdir() });
  await engine.createFamily('f');
  t.throws(() => engine.iterator('f', { gt: key('a'), gte: key('b') }), { code: StorageErrorCode.INVALID_ARGUMENT });
  t.throws(() => engine.iterator('f', { lt: key('a'), lte: key('b') }), { code: StorageErrorCode.INVALID_ARGUMENT });
  await engine.close();
});

t.test('a directory holds one engine at a time; a lock left by a dead process is taken over', async (t) => {
  const directory = t.testdir();
  const engine = await Engine.open({ directory });
  await t.rejects(Engine.open({ directory }), { code: StorageErrorCode.LOCKED });
  await engine.close();
  const again = await Engine.open({ directory });
  await again.close();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${directory}/LOCK`, '999999999\n'); // No such process.
  const afterStale = await Engine.open({ directory });
  await afterStale.close();
  writeFileSync(`${directory}/LOCK`, '1\n'); // init: alive, and not this process.
  await t.rejects(Engine.open({ directory }), { code: StorageErrorCode.LOCKED, message: /process 1/ });
});

t.test('the write buffer bounds all memtables together: past it the largest goes to flush', async (t) => {
  const capacity = 64 * 1024;
  const engine = await Engine.open({ directory: t.testdir(), memtableSizeBytes: 16 * 1024 * 1024, writeBufferBytes: capacity, autoCompaction: false });
  const families = Array.from({ length: 20 }, (_, i) => `f${i}`);
  for (const name of families) await engine.createFamily(name);
  const value = Buffer.alloc(200, 0x61);
  let highest = 0;
  for (let i = 0; i < 3000; i++) {
    await engine.write(new WriteBatch().put(families[i % families.length]!, key(`k${String(i).padStart(5, '0')}`), value));
    highest = Math.max(highest, engine.stats().writeBuffer.usageBytes);
  }
  const { writeBuffer, flushes } = engine.stats();
  // One item's charge may cross the bound before the switch it causes.
  t.ok(highest <= capacity + 1024, `active memtables peaked at ${highest} bytes against ${capacity}`);
  t.equal(writeBuffer.capacityBytes, capacity);
  t.ok(writeBuffer.switches >= Math.floor((3000 * 200) / capacity), `${writeBuffer.switches} switches for ${3000 * 200} value bytes`);
  t.ok(writeBuffer.usageBytes > 0 && writeBuffer.usageBytes <= capacity + 1024, `${writeBuffer.usageBytes} bytes active now`);
  await engine.flush();
  t.equal(engine.stats().writeBuffer.usageBytes, 0, 'the charge goes with the memtables it was for');
  t.ok(engine.stats().flushes > flushes);
  for (let i = 0; i < 3000; i += 7) t.equal((await engine.get(families[i % families.length]!, key(`k${String(i).padStart(5, '0')}`)))?.length, 200, `k${i} readable`);
  await engine.close();
});

t.test('walReplayTagMax: WAL batches beyond what the caller\'s log holds are dropped at open, with all after them', async (t) => {
  const fileSystem = new SimFileSystem();
  const options = { directory: '/e', fileSystem, wal: true, autoCompaction: false };
  let engine = await Engine.open(options);
  await engine.createFamily('f');
  for (let tag = 1; tag <= 5; tag++) await engine.write(new WriteBatch().put('f', key(`k${tag}`), key(`v${tag}`)), { tag });
  await engine.close(); // Memtables are not flushed: the WAL holds all five.
  engine = await Engine.open({ ...options, walReplayTagMax: 3 });
  t.same(engine.recoveryReport.walBatchesReplayed, 3);
  t.same(engine.recoveryReport.walBatchesDropped, 2);
  t.same(await collect(engine.iterator('f')), ['k1=v1', 'k2=v2', 'k3=v3']);
  t.equal(engine.lastLsnAssigned, 3, 'the dropped batches took their LSNs with them');
  await engine.close();
});
