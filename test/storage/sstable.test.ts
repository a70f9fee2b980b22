// SSTable format tests: blocks, a table round trip against a plain model, iterator seek
// semantics, the footer's version rule, and single-bit corruption anywhere in a table.

import t from 'tap';
import * as path from 'node:path';
import { BLOCK_CACHE_SLOT_OVERHEAD_BYTES, BlockCache } from '../../storage/cache.js';
import { EntryKind, compareEntries, type Entry } from '../../storage/entry.js';
import { StorageError, StorageErrorCode } from '../../storage/errors.js';
import { RealFileSystem, type File } from '../../storage/file-system.js';
import type { InternalIterator } from '../../storage/iterator.js';
import { crc32c, maskCrc } from '../../storage/util/crc32c.js';
import { BlockBuilder } from '../../storage/sstable/block-builder.js';
import { decodeBlock } from '../../storage/sstable/block.js';
import { FOOTER_CHECKED_BYTES, FOOTER_SIZE_BYTES, FORMAT_VERSION } from '../../storage/sstable/format.js';
import { TableBuilder, type TableBuilderOptions } from '../../storage/sstable/table-builder.js';
import { TableReader } from '../../storage/sstable/table-reader.js';

const fs = new RealFileSystem();

/** A File over a Buffer, so thousands of corrupted copies need no disk. */
class MemoryFile implements File {
  readonly path = 'memory';
  constructor(private data: Buffer) {}
  size(): number {
    return this.data.length;
  }
  async append(data: Uint8Array): Promise<void> {
    this.data = Buffer.concat([this.data, data]);
  }
  async write(position: number, data: Uint8Array): Promise<void> {
    if (position + data.length > this.data.length) this.data = Buffer.concat([this.data, Buffer.alloc(position + data.length - this.data.length)]);
    this.data.set(data, position);
  }
  async read(position: number, length: number): Promise<Buffer> {
    return Buffer.from(this.data.subarray(position, position + length));
  }
  async sync(): Promise<void> {}
  async truncate(sizeBytes: number): Promise<void> {
    this.data = Buffer.concat([this.data.subarray(0, sizeBytes), Buffer.alloc(Math.max(0, sizeBytes - this.data.length))]);
  }
  async close(): Promise<void> {}
}

const put = (key: string, lsn: number, value = `v${lsn}`): Entry => ({
  key: Buffer.from(key),
  lsn,
  kind: EntryKind.PUT,
  value: Buffer.from(value),
});
const del = (key: string, lsn: number): Entry => ({ key: Buffer.from(key), lsn, kind: EntryKind.DELETE, value: Buffer.alloc(0) });

/** Keys k000..k(n-1), each with 1..4 versions, some of them deletes; lsns unique. */
function makeModel(keyCount: number): Entry[] {
  const entries: Entry[] = [];
  let lsn = 1;
  for (let i = 0; i < keyCount; i++) {
    const key = `k${String(i * 2).padStart(4, '0')}`;
    for (let version = 0; version <= i % 4; version++) {
      entries.push((i + version) % 5 === 0 ? del(key, lsn) : put(key, lsn, `value-${key}-${lsn}-${'x'.repeat(i % 7)}`));
      lsn += 1 + (i % 3);
    }
  }
  return entries.sort(compareEntries);
}

async function writeTable(file: File, entries: Entry[], options?: TableBuilderOptions) {
  const builder = new TableBuilder(file, options);
  for (const entry of entries) builder.add(entry);
  return builder.finish();
}

async function writeRealTable(dir: string, entries: Entry[], options?: TableBuilderOptions): Promise<string> {
  const filePath = path.join(dir, '000001.sst');
  const file = await fs.open(filePath, 'create');
  await writeTable(file, entries, options);
  await file.sync();
  await file.close();
  return filePath;
}

async function openReal(filePath: string, cache = new BlockCache(1 << 20), fileNumber = 1): Promise<TableReader> {
  return TableReader.open(await fs.open(filePath, 'read'), fileNumber, cache);
}

async function collect(iterator: InternalIterator, seekKey?: Buffer): Promise<Entry[]> {
  const out: Entry[] = [];
  await iterator.seek(seekKey);
  for (; iterator.valid(); await iterator.next()) out.push(iterator.entry());
  iterator.close();
  return out;
}

const summary = (entries: Entry[]): string[] => entries.map((e) => `${e.key}@${e.lsn}:${e.kind}:${e.value}`);

function modelGet(model: Entry[], key: Buffer, snapshotLsn: number): Entry | undefined {
  return model.find((e) => e.key.equals(key) && e.lsn <= snapshotLsn);
}

t.test('a block round trips entries with shared prefixes across several restart points', async (t) => {
  const builder = new BlockBuilder(16);
  const entries: Entry[] = [];
  for (let i = 0; i < 50; i++) entries.push(put(`user:000${Math.floor(i / 10)}:field-${i % 10}`, 1000 - i, `value ${i}`));
  entries.push(del('user:0009', 7));
  for (const entry of entries) builder.add(entry.key, entry.lsn, entry.kind, entry.value);
  const bytes = Buffer.from(builder.finish());
  t.equal(bytes.readUInt32LE(bytes.length - 4), 4, '51 entries at interval 16 make 4 restart points');
  t.same(summary(decodeBlock(bytes, 'test block')), summary(entries));
  t.ok(bytes.length < entries.reduce((n, e) => n + e.key.length + e.value.length, 0) + 51 * 4, 'keys are prefix-compressed');
});

t.test('an empty block and a block with one restart per entry round trip', async (t) => {
  const empty = new BlockBuilder(16);
  t.same(decodeBlock(Buffer.from(empty.finish()), 'empty'), []);
  const single = new BlockBuilder(1);
  const entries = [put('a', 3), put('ab', 2), put('abc', 1)];
  for (const entry of entries) single.add(entry.key, entry.lsn, entry.kind, entry.value);
  t.same(summary(decodeBlock(Buffer.from(single.finish()), 'single')), summary(entries));
});

t.test('a block whose restart array disagrees with its entries is corruption', async (t) => {
  const builder = new BlockBuilder(2);
  for (const entry of [put('a', 3), put('ab', 2), put('abc', 1)]) builder.add(entry.key, entry.lsn, entry.kind, entry.value);
  const bytes = Buffer.from(builder.finish());
  const shifted = Buffer.from(bytes);
  shifted.writeUInt32LE(bytes.readUInt32LE(bytes.length - 8) + 1, bytes.length - 8);
  t.throws(() => decodeBlock(shifted, 'shifted'), { code: StorageErrorCode.CORRUPTION });
  const overrun = Buffer.from(bytes);
  overrun.writeUInt32LE(1000, bytes.length - 4);
  t.throws(() => decodeBlock(overrun, 'overrun'), { code: StorageErrorCode.CORRUPTION });
});

t.test('a table returns the newest version at or below every snapshot, deletes included', async (t) => {
  const model = makeModel(120);
  const filePath = await writeRealTable(t.testdir(), model, { blockSizeBytes: 200 });
  const table = await openReal(filePath);
  t.ok(table.blockCount > 10, 'small blocks make many data blocks');
  const largestLsn = Math.max(...model.map((e) => e.lsn));
  for (const key of new Set(model.map((e) => e.key.toString()))) {
    for (let snapshot = 0; snapshot <= largestLsn + 1; snapshot += 7) {
      const expected = modelGet(model, Buffer.from(key), snapshot);
      const actual = await table.get(Buffer.from(key), snapshot);
      if (summary(actual ? [actual] : []).join() !== summary(expected ? [expected] : []).join()) {
        t.fail(`get(${key}, ${snapshot})`);
      }
    }
  }
  t.equal(await table.get(Buffer.from('k0001'), largestLsn), undefined, 'a key between keys is absent');
  t.equal(await table.get(Buffer.from('a'), largestLsn), undefined, 'a key before the first is absent');
  t.equal(await table.get(Buffer.from('z'), largestLsn), undefined, 'a key after the last is absent');
  await table.close();
});

t.test('the table properties describe the entries written', async (t) => {
  const model = makeModel(40);
  const file = new MemoryFile(Buffer.alloc(0));
  const written = await writeTable(file, model, { blockSizeBytes: 256 });
  const table = await TableReader.open(file, 9, new BlockCache(1 << 20));
  t.same(table.properties, written);
  t.equal(written.entries, model.length);
  t.equal(written.distinctKeys, 40);
  t.equal(written.deletions, model.filter((e) => e.kind === EntryKind.DELETE).length);
  t.same(written.smallestKey, Buffer.from('k0000'));
  t.same(written.largestKey, Buffer.from('k0078'));
  t.equal(written.smallestLsn, Math.min(...model.map((e) => e.lsn)));
  t.equal(written.largestLsn, Math.max(...model.map((e) => e.lsn)));
  t.equal(written.fileSizeBytes, file.size());
  t.equal(written.formatVersion, FORMAT_VERSION);
  t.equal(table.fileNumber, 9);
});

t.test('versions of one key that fill several blocks are found at every snapshot', async (t) => {
  const model: Entry[] = [put('a', 500)];
  for (let lsn = 300; lsn >= 100; lsn--) model.push(lsn % 10 === 0 ? del('hot', lsn) : put('hot', lsn));
  model.push(put('z', 1));
  const file = new MemoryFile(Buffer.alloc(0));
  await writeTable(file, model, { blockSizeBytes: 100 });
  const table = await TableReader.open(file, 1, new BlockCache(1 << 20));
  t.ok(table.blockCount > 20);
  for (let snapshot = 0; snapshot <= 320; snapshot++) {
    const expected = modelGet(model, Buffer.from('hot'), snapshot);
    const actual = await table.get(Buffer.from('hot'), snapshot);
    if (actual?.lsn !== expected?.lsn || actual?.kind !== expected?.kind) t.fail(`snapshot ${snapshot}`);
  }
  t.equal((await table.get(Buffer.from('hot'), 99)), undefined, 'below the oldest version nothing is visible');
  t.same(summary(await collect(table.iterator({ reverse: true }), Buffer.from('hot'))).slice(0, 2), ['hot@100:0:', 'hot@101:1:v101']);
});

t.test('iteration visits every entry forward and exactly reversed backward', async (t) => {
  const model = makeModel(100);
  const filePath = await writeRealTable(t.testdir(), model, { blockSizeBytes: 300 });
  const table = await openReal(filePath);
  t.same(summary(await collect(table.iterator())), summary(model));
  t.same(summary(await collect(table.iterator({ reverse: true }))), summary(model).reverse());
  await table.close();
});

t.test('seek positions forward at the first key >= target and backward at the last key <= target', async (t) => {
  const model = makeModel(60);
  const file = new MemoryFile(Buffer.alloc(0));
  await writeTable(file, model, { blockSizeBytes: 150 });
  const table = await TableReader.open(file, 1, new BlockCache(1 << 20));
  const targets = ['k0000', 'k0002', 'k0003', 'k0057', 'k0118', 'k0119', 'a', 'z', ''];
  for (const target of targets) {
    const key = Buffer.from(target);
    const forward = model.filter((e) => Buffer.compare(e.key, key) >= 0);
    const backward = model.filter((e) => Buffer.compare(e.key, key) <= 0).reverse();
    t.same(summary(await collect(table.iterator(), key)), summary(forward), `forward seek to '${target}'`);
    t.same(summary(await collect(table.iterator({ reverse: true }), key)), summary(backward), `reverse seek to '${target}'`);
  }
});

t.test('an iterator can seek again after reaching its end', async (t) => {
  const model = makeModel(10);
  const file = new MemoryFile(Buffer.alloc(0));
  await writeTable(file, model, { blockSizeBytes: 64 });
  const table = await TableReader.open(file, 1, new BlockCache(1 << 20));
  const iterator = table.iterator();
  await iterator.seek(Buffer.from('z'));
  t.notOk(iterator.valid());
  await iterator.seek(Buffer.from('k0004'));
  t.equal(iterator.entry().key.toString(), 'k0004');
  iterator.close();
  t.notOk(iterator.valid(), 'a closed iterator is invalid');
});

t.test('an empty table opens, iterates nothing and finds nothing', async (t) => {
  const file = new MemoryFile(Buffer.alloc(0));
  const properties = await writeTable(file, []);
  t.equal(properties.entries, 0);
  const table = await TableReader.open(file, 1, new BlockCache(1 << 20));
  t.same(await collect(table.iterator()), []);
  t.same(await collect(table.iterator({ reverse: true })), []);
  t.equal(await table.get(Buffer.from('a'), 100), undefined);
});

t.test('a value larger than the block size round trips', async (t) => {
  const big = 'b'.repeat(100_000);
  const model = [put('a', 3), put('big', 2, big), put('c', 1)];
  const file = new MemoryFile(Buffer.alloc(0));
  await writeTable(file, model, { blockSizeBytes: 1024 });
  const table = await TableReader.open(file, 1, new BlockCache(1 << 20));
  t.equal((await table.get(Buffer.from('big'), 10))?.value.toString(), big);
  t.same(summary(await collect(table.iterator())), summary(model));
});

t.test('data blocks come from the block cache after the first read', async (t) => {
  const file = new MemoryFile(Buffer.alloc(0));
  await writeTable(file, makeModel(50), { blockSizeBytes: 200 });
  const cache = new BlockCache(1 << 20);
  const table = await TableReader.open(file, 4, cache);
  await table.get(Buffer.from('k0010'), 1000);
  t.equal(cache.stats.misses, 1);
  await table.get(Buffer.from('k0010'), 1000);
  t.equal(cache.stats.hits, 1);
  t.ok(cache.stats.usageBytes > 0 && cache.stats.usageBytes <= 300 + BLOCK_CACHE_SLOT_OVERHEAD_BYTES, 'one block and its slot are charged');
});

t.test('the builder asserts strictly increasing internal order', async (t) => {
  const builder = new TableBuilder(new MemoryFile(Buffer.alloc(0)));
  builder.add(put('b', 5));
  t.throws(() => builder.add(put('b', 5)), { name: 'AssertionError' });
  t.throws(() => builder.add(put('b', 6)), { name: 'AssertionError' });
  t.throws(() => builder.add(put('a', 1)), { name: 'AssertionError' });
  builder.add(put('b', 4));
  builder.abandon();
});

/** What `promise` ended with: the code of the StorageError it rejected with, or what else happened. */
async function outcomeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'no error';
  } catch (error) {
    return error instanceof StorageError ? error.code : `not a StorageError: ${String(error)}`;
  }
}

t.test('a footer of a newer format version is UNSUPPORTED_VERSION, not corruption', async (t) => {
  const file = new MemoryFile(Buffer.alloc(0));
  await writeTable(file, makeModel(5));
  const bytes = await file.read(0, file.size());
  const footerAt = bytes.length - FOOTER_SIZE_BYTES;
  bytes.writeUInt32LE(FORMAT_VERSION + 1, footerAt + FOOTER_CHECKED_BYTES - 4);
  bytes.writeUInt32LE(maskCrc(crc32c(bytes, footerAt, footerAt + FOOTER_CHECKED_BYTES)), footerAt + FOOTER_CHECKED_BYTES);
  t.equal(await outcomeOf(TableReader.open(new MemoryFile(bytes), 1, new BlockCache(0))), StorageErrorCode.UNSUPPORTED_VERSION, 'v2');
});

t.test('a truncated table or a file of garbage is corruption', async (t) => {
  const file = new MemoryFile(Buffer.alloc(0));
  await writeTable(file, makeModel(5));
  const bytes = await file.read(0, file.size());
  for (const length of [0, 10, bytes.length - 1]) {
    t.equal(await outcomeOf(TableReader.open(new MemoryFile(bytes.subarray(0, length)), 1, new BlockCache(0))), StorageErrorCode.CORRUPTION, `${length} bytes`);
  }
  t.equal(await outcomeOf(TableReader.open(new MemoryFile(Buffer.alloc(500, 7)), 1, new BlockCache(0))), StorageErrorCode.CORRUPTION, 'garbage');
  t.equal(await outcomeOf(TableReader.open(new MemoryFile(bytes), 1, new BlockCache(0))), 'no error', 'the whole table opens');
});

t.test('a flipped bit anywhere in a table is reported as corruption naming the file', async (t) => {
  const file = new MemoryFile(Buffer.alloc(0));
  const model = makeModel(12);
  await writeTable(file, model, { blockSizeBytes: 64 });
  const original = await file.read(0, file.size());
  const reader = await TableReader.open(new MemoryFile(original), 1, new BlockCache(0));
  t.ok(reader.blockCount >= 4, 'several data blocks');
  let detected = 0;
  const missed: string[] = [];
  for (let bit = 0; bit < original.length * 8; bit++) {
    const bytes = Buffer.from(original);
    bytes[bit >>> 3] ^= 1 << (bit & 7);
    const fileNumber = 1000 + bit;
    try {
      const table = await TableReader.open(new MemoryFile(bytes), fileNumber, new BlockCache(1 << 20));
      await collect(table.iterator());
      missed.push(`flipped bit ${bit} (byte ${bit >>> 3}) went unnoticed`);
    } catch (error) {
      const ok = error instanceof StorageError && error.code === StorageErrorCode.CORRUPTION && error.message.includes(`table ${fileNumber}`);
      if (ok) detected++;
      else missed.push(`flipped bit ${bit}: ${String(error)}`);
    }
  }
  t.same(missed.slice(0, 10), [], `${missed.length} flips not reported as corruption of the table`);
  t.equal(detected, original.length * 8, `all ${original.length * 8} single-bit flips detected`);
});

t.test('a failed append surfaces from finish and later adds, never as an unhandled rejection', async (t) => {
  const file = new MemoryFile(Buffer.alloc(0));
  file.append = async () => {
    throw new StorageError(StorageErrorCode.NO_SPACE, 'disk full');
  };
  const builder = new TableBuilder(file, { blockSizeBytes: 4096 });
  const value = Buffer.alloc(4000);
  for (let i = 0; i < 300; i++) builder.add({ key: Buffer.from(`k${String(i).padStart(5, '0')}`), lsn: 1, kind: EntryKind.PUT, value });
  t.equal(await outcomeOf(builder.drain()), StorageErrorCode.NO_SPACE, 'drain');
  t.throws(() => builder.add(put('z', 1)), { code: StorageErrorCode.NO_SPACE });
  t.equal(await outcomeOf(builder.finish()), StorageErrorCode.NO_SPACE, 'finish');
});
