import t from 'tap';
import fc from 'fast-check';
import { compareKeys, EntryKind, type Entry } from '../../storage/entry.js';
import type { InternalIterator } from '../../storage/iterator.js';
import { Memtable, type MemtableImage } from '../../storage/memtable/memtable.js';

// Keys from a small alphabet with zero bytes, short and long, many sharing long prefixes: the
// cases where a cached prefix or a skipped range could go wrong.
const keyArbitrary = fc
  .tuple(fc.constantFrom('', 'ab', 'abcdef', 'abcdefgh'), fc.uint8Array({ maxLength: 8 }).map((bytes) => bytes.map((b) => b % 3)), fc.boolean())
  .map(([prefix, tail, long]) => Buffer.concat([Buffer.from(prefix), Buffer.from(tail), long ? Buffer.alloc(70, 1) : Buffer.alloc(0)]));

const sign = (n: number): number => (n > 0 ? 1 : n < 0 ? -1 : 0);
// Entries are built on demand from the memtable's arena, so they compare by content.
const show = (entry: Entry | undefined): string => (entry ? `${entry.key.toString('hex')}@${entry.lsn}:${entry.kind}:${entry.value.toString('hex')}` : 'none');

t.test('compareKeys orders keys exactly as Buffer.compare does', async () => {
  fc.assert(fc.property(keyArbitrary, keyArbitrary, (a, b) => sign(compareKeys(a, b)) === Buffer.compare(a, b)), { numRuns: 2000 });
});

t.test('a memtable yields its entries in internal order whatever the insertion order', async () => {
  fc.assert(
    fc.property(fc.array(keyArbitrary, { maxLength: 200 }), (keys) => {
      const memtable = new Memtable();
      const added: Entry[] = keys.map((key, i) => ({ key, lsn: i + 1, kind: EntryKind.PUT, value: Buffer.alloc(0) }));
      for (const entry of added) memtable.add(entry);
      const expected = [...added].sort((a, b) => Buffer.compare(a.key, b.key) || b.lsn - a.lsn).map((e) => `${e.key.toString('hex')}@${e.lsn}`);
      const actual = [...memtable.entries()].map((e) => `${e.key.toString('hex')}@${e.lsn}`);
      return JSON.stringify(actual) === JSON.stringify(expected);
    }),
    { numRuns: 300 },
  );
});

t.test('a memtable get returns the newest version at or below the snapshot', async (t) => {
  const memtable = new Memtable();
  const key = Buffer.from('abcdefgh');
  for (const lsn of [3, 7, 5]) memtable.add({ key, lsn, kind: EntryKind.PUT, value: Buffer.from(String(lsn)) });
  memtable.add({ key: Buffer.from('abcdefg'), lsn: 9, kind: EntryKind.PUT, value: Buffer.from('x') });
  t.equal(memtable.get(key, 10)?.value.toString(), '7');
  t.equal(memtable.get(key, 6)?.value.toString(), '5');
  t.equal(memtable.get(key, 2), undefined);
  t.equal(memtable.get(Buffer.from('abcdefgh\x00'), 10), undefined);
});

t.test('a memtable get agrees with a scan of its entries, at any snapshot, with many versions a key', async () => {
  // Point reads go through an index of each key's newest version and walk a few older ones
  // before searching the list: keys with more versions than that walk, inserted in any LSN order.
  fc.assert(
    fc.property(fc.array(fc.tuple(keyArbitrary, fc.integer({ min: 0, max: 24 })), { maxLength: 60 }), fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 20 }), (writes, snapshots) => {
      const memtable = new Memtable();
      const added: Entry[] = [];
      const lsns = [...Array(writes.reduce((n, [, versions]) => n + versions + 1, 0)).keys()].map((i) => i + 1).sort((a, b) => ((a * 7919) % 101) - ((b * 7919) % 101) || a - b);
      let next = 0;
      for (const [key, versions] of writes) {
        for (let v = 0; v <= versions; v++) {
          const entry: Entry = { key, lsn: lsns[next++]!, kind: v % 5 === 4 ? EntryKind.DELETE : EntryKind.PUT, value: Buffer.from(String(v)) };
          if (added.some((e) => e.key.equals(key) && e.lsn === entry.lsn)) continue;
          memtable.add(entry);
          added.push(entry);
        }
      }
      const probes = [...writes.map(([key]) => key), Buffer.from('abcdefgh\x00'), Buffer.alloc(0)];
      for (const key of probes) {
        for (const snapshot of snapshots) {
          const expected = added.filter((e) => e.key.equals(key) && e.lsn <= snapshot).sort((a, b) => b.lsn - a.lsn)[0];
          if (show(memtable.get(key, snapshot)) !== show(expected)) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
});

const internalOrder = (a: Entry, b: Entry): number => Buffer.compare(a.key, b.key) || b.lsn - a.lsn;

async function walk(iterator: InternalIterator, key?: Buffer): Promise<string[]> {
  const seen: string[] = [];
  await iterator.seek(key);
  for (; iterator.valid(); await iterator.next()) seen.push(show(iterator.entry()));
  iterator.close();
  return seen;
}

// A run of ascending ids (as a bulk load writes them: the append path), keys from anywhere (the
// search path), earlier keys again under a higher or a lower LSN (both paths, one key), fields of
// the latest id in any order (the search from the tails), and point reads between inserts (the
// index is built by the first and kept from then on).
const insertArbitrary = fc.tuple(
  fc.oneof(
    { weight: 6, arbitrary: fc.constant({ op: 'next' as const }) },
    { weight: 2, arbitrary: keyArbitrary.map((key) => ({ op: 'key' as const, key })) },
    { weight: 2, arbitrary: fc.nat(40).map((back) => ({ op: 'again' as const, back })) },
    { weight: 3, arbitrary: fc.nat(40).map((field) => ({ op: 'field' as const, field })) },
    { weight: 1, arbitrary: fc.nat(40).map((back) => ({ op: 'read' as const, back })) },
  ),
  fc.boolean(),
);

t.test('appends mixed with out-of-order inserts read back as a sorted model, forward, reverse and after any seek', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(insertArbitrary, { maxLength: 300, size: 'max' }), fc.array(keyArbitrary, { maxLength: 6 }), async (inserts, extraProbes) => {
      const memtable = new Memtable();
      const model: Entry[] = [];
      let id = 0;
      const idKey = (n: number): string => `t1_comments/${n.toString(36).padStart(7, '0')}`;
      for (const [i, [insert, lsnDown]] of inserts.entries()) {
        if (insert.op === 'read') {
          if (model.length === 0) continue;
          const probe = model[model.length - 1 - (insert.back % model.length)]!.key;
          const newest = [...model].sort(internalOrder).find((e) => e.key.equals(probe));
          if (show(memtable.get(probe, Number.MAX_SAFE_INTEGER)) !== show(newest)) return false;
          continue;
        }
        const key =
          insert.op === 'key' ? insert.key
          : insert.op === 'again' && model.length > 0 ? model[model.length - 1 - (insert.back % model.length)]!.key
          : insert.op === 'field' ? Buffer.from(`${idKey(Math.max(id - 1, 0))}\x00${String.fromCharCode(insert.field)}`)
          : Buffer.from(`${idKey(id++)}\x02`);
        // Unique LSNs, rising or falling, so a key's later insert may be newer or older.
        const entry: Entry = { key, lsn: lsnDown ? 1_000_000 - i : i + 1, kind: i % 7 === 3 ? EntryKind.DELETE : EntryKind.PUT, value: Buffer.from(`v${i}`) };
        memtable.add(entry);
        model.push(entry);
      }
      const sorted = [...model].sort(internalOrder);
      const expected = sorted.map(show);
      if (JSON.stringify([...memtable.entries()].map(show)) !== JSON.stringify(expected)) return false;
      if (JSON.stringify(await walk(memtable.iterator())) !== JSON.stringify(expected)) return false;
      if (JSON.stringify(await walk(memtable.iterator({ reverse: true }))) !== JSON.stringify([...expected].reverse())) return false;
      const probes = [...extraProbes, ...model.slice(0, 8).flatMap((e) => [e.key, Buffer.concat([e.key, Buffer.from([0])]), e.key.subarray(0, e.key.length - 1)])];
      for (const probe of probes) {
        const forward = sorted.filter((e) => Buffer.compare(e.key, probe) >= 0).map(show);
        const reverse = sorted.filter((e) => Buffer.compare(e.key, probe) <= 0).map(show).reverse();
        if (JSON.stringify(await walk(memtable.iterator(), probe)) !== JSON.stringify(forward)) return false;
        if (JSON.stringify(await walk(memtable.iterator({ reverse: true }), probe)) !== JSON.stringify(reverse)) return false;
        const newest = sorted.find((e) => e.key.equals(probe));
        if (show(memtable.get(probe, Number.MAX_SAFE_INTEGER)) !== show(newest)) return false;
      }
      return true;
    }),
    { numRuns: 200 },
  );
});

t.test('a key with many versions, each inserted at the tail, is read at every snapshot', async (t) => {
  const memtable = new Memtable();
  const key = Buffer.from('t1_comments/0000001\x05');
  // Falling LSNs: each version sorts after the one before, so every insert takes the append path.
  for (let lsn = 100; lsn >= 1; lsn--) memtable.add({ key, lsn: lsn * 2, kind: EntryKind.PUT, value: Buffer.from(String(lsn * 2)) });
  memtable.add({ key: Buffer.from('t1_comments/0000002\x00'), lsn: 1, kind: EntryKind.PUT, value: Buffer.from('next') });
  const wrong: number[] = [];
  for (let snapshot = 0; snapshot <= 201; snapshot++) {
    const expected = snapshot < 2 ? 'none' : String(snapshot - (snapshot % 2));
    if ((memtable.get(key, snapshot)?.value.toString() ?? 'none') !== expected) wrong.push(snapshot);
  }
  t.same(wrong, []);
  t.equal([...memtable.entries()].length, 101);
});

t.test('the index of newest versions finds every key across many resizes', async (t) => {
  const memtable = new Memtable();
  const count = 40_000; // From 16 slots, doubled whenever past half full: 13 resizes.
  const keyOf = (i: number): Buffer => Buffer.from(`key/${(i * 7919) % count}`); // A permutation: out of order.
  for (let i = 0; i < count; i++) memtable.add({ key: keyOf(i), lsn: i + 1, kind: EntryKind.PUT, value: Buffer.from(`first ${i}`) });
  for (let i = 0; i < count; i += 3) memtable.add({ key: keyOf(i), lsn: count + i + 1, kind: EntryKind.PUT, value: Buffer.from(`second ${i}`) });
  let wrong = 0;
  for (let i = 0; i < count; i++) {
    if (memtable.get(keyOf(i), Number.MAX_SAFE_INTEGER)?.value.toString() !== (i % 3 === 0 ? `second ${i}` : `first ${i}`)) wrong++;
    if (memtable.get(keyOf(i), count)?.value.toString() !== `first ${i}`) wrong++;
    if (memtable.get(Buffer.from(`key/${count + i}`), Number.MAX_SAFE_INTEGER) !== undefined) wrong++;
  }
  t.equal(wrong, 0);
  t.equal(memtable.count, count + Math.ceil(count / 3));
});

t.test('keys longer than 64 bytes that differ only near their end order and read correctly', async (t) => {
  const memtable = new Memtable();
  const base = Buffer.alloc(300, 'k');
  const keys = [299, 100, 64, 65, 70, 0].flatMap((at) => [0x41, 0x42].map((byte) => Buffer.concat([base.subarray(0, at), Buffer.from([byte]), base.subarray(at + 1)])));
  keys.push(base.subarray(0, 65), base.subarray(0, 200), base);
  for (const [i, key] of keys.entries()) memtable.add({ key, lsn: i + 1, kind: EntryKind.PUT, value: Buffer.from(String(i)) });
  t.same([...memtable.entries()].map((e) => e.key.toString('hex')), [...keys].sort(Buffer.compare).map((k) => k.toString('hex')));
  for (const [i, key] of keys.entries()) t.equal(memtable.get(Buffer.from(key), 100)?.value.toString(), String(i));
  t.equal(memtable.get(Buffer.concat([base, Buffer.from('!')]), 100), undefined);
  const reverseFromBase = await walk(memtable.iterator({ reverse: true }), base);
  t.same(reverseFromBase, [...keys].sort(Buffer.compare).filter((k) => Buffer.compare(k, base) <= 0).reverse().map((k) => show(memtable.get(k, 100))));
});

t.test('empty keys and empty values are stored, ordered first, and read back', async (t) => {
  const memtable = new Memtable();
  const empty = Buffer.alloc(0);
  memtable.add({ key: empty, lsn: 5, kind: EntryKind.PUT, value: Buffer.from('x') });
  memtable.add({ key: Buffer.from([0]), lsn: 4, kind: EntryKind.PUT, value: empty });
  memtable.add({ key: empty, lsn: 3, kind: EntryKind.DELETE, value: empty });
  memtable.add({ key: Buffer.from('a'), lsn: 1, kind: EntryKind.PUT, value: empty });
  t.same([...memtable.entries()].map(show), ['@5:1:78', '@3:0:', '00@4:1:', '61@1:1:']);
  t.equal(memtable.get(empty, 10)?.value.toString(), 'x');
  t.equal(memtable.get(empty, 4)?.kind, EntryKind.DELETE);
  t.equal(memtable.get(Buffer.from([0]), 10)?.value.length, 0);
  t.same(await walk(memtable.iterator({ reverse: true }), empty), ['@3:0:', '@5:1:78']);
  t.same(await walk(memtable.iterator(), empty), ['@5:1:78', '@3:0:', '00@4:1:', '61@1:1:']);
  t.ok(memtable.sizeBytes > 0, 'an entry of no bytes still costs its node');
});

t.test('values larger than an arena chunk, and the entries around them, keep their bytes', async (t) => {
  const memtable = new Memtable();
  const patterned = (size: number, seed: number): Buffer => {
    const bytes = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff;
    return bytes;
  };
  const sizes = [5, 300 * 1024, 7, 1024 * 1024 + 3, 200, 70 * 1024, 0, 4096, 2000, 3000, 64 * 1024, 1];
  for (let i = 0; i < 3000; i++) sizes.push(5 + ((i * 7919) % 196));
  const values: Buffer[] = [];
  const readBack: Entry[] = []; // Read right after each add: later adds must not overwrite them.
  for (const [i, size] of sizes.entries()) {
    const key = Buffer.from(`t1_comments/${i.toString(36).padStart(7, '0')}`);
    values.push(patterned(size, i));
    memtable.add({ key, lsn: i + 1, kind: EntryKind.PUT, value: values[i]! });
    readBack.push(memtable.get(key, i + 1)!);
  }
  t.equal(readBack.filter((entry, i) => !entry.value.equals(values[i]!)).length, 0);
  t.equal([...memtable.entries()].filter((entry, i) => !entry.value.equals(values[i]!) || entry.lsn !== i + 1).length, 0);
  // Reads return views of one stored copy, not copies of their own.
  const again = memtable.get(readBack[3]!.key, 10)!;
  t.equal(again.value.buffer, readBack[3]!.value.buffer);
  t.equal(again.value.byteOffset, readBack[3]!.value.byteOffset);
});

t.test('add copies the key and value: the caller may reuse its buffers', async (t) => {
  const memtable = new Memtable();
  const key = Buffer.from('field/0000001');
  const value = Buffer.from('the first value');
  memtable.add({ key, lsn: 1, kind: EntryKind.PUT, value });
  key.fill(0);
  value.fill(0);
  t.equal(memtable.get(Buffer.from('field/0000001'), 1)?.value.toString(), 'the first value');
  t.equal(memtable.get(key, 1), undefined);
});

t.test('sizeBytes grows by at least the key and value bytes of each add, and stays near them', async () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(100), fc.nat(3000)), { minLength: 1, maxLength: 400, size: 'max' }), (sizes) => {
      const memtable = new Memtable();
      if (memtable.sizeBytes !== 0) return false;
      let data = 0;
      for (const [i, [keyBytes, valueBytes]] of sizes.entries()) {
        const before = memtable.sizeBytes;
        const key = Buffer.concat([Buffer.from(i.toString(36).padStart(4, '0')), Buffer.alloc(keyBytes, 7)]);
        memtable.add({ key, lsn: i + 1, kind: EntryKind.PUT, value: Buffer.alloc(valueBytes, 9) });
        data += key.length + valueBytes;
        if (memtable.sizeBytes - before < key.length + valueBytes) return false;
      }
      // Columns, links and index come to ~70 bytes an entry; unused chunk tails to a few percent.
      return memtable.sizeBytes <= data * 1.25 + 200 * sizes.length;
    }),
    { numRuns: 200 },
  );
});

t.test('a flush carries the memtable as an image of shared memory: read where it lies, the entries in internal order', async (t) => {
  const { MessageChannel } = await import('node:worker_threads');
  const channel = new MessageChannel();
  const crossed = (image: MemtableImage): Promise<MemtableImage> =>
    new Promise((resolve) => {
      channel.port2.once('message', resolve);
      channel.port1.postMessage(image); // Structured clone, as a flush job to the worker.
    });
  let runs = 0;
  let shared = true;
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(keyArbitrary, fc.uint8Array({ maxLength: 100 }), fc.boolean()), { maxLength: 300 }), async (items) => {
      runs++;
      const memtable = new Memtable();
      items.forEach(([key, value, tombstone], i) => memtable.add({ key, lsn: i + 1, kind: tombstone ? EntryKind.DELETE : EntryKind.PUT, value: tombstone ? Buffer.alloc(0) : Buffer.from(value) }));
      const image = await crossed(memtable.image());
      shared &&= image.ints.buffer instanceof SharedArrayBuffer && image.chunks.every((chunk) => chunk.byteLength === 0 || chunk.buffer instanceof SharedArrayBuffer);
      const read = Memtable.fromImage(image);
      const expected = [...memtable.entries()].map(show);
      return JSON.stringify([...read.entries()].map(show)) === JSON.stringify(expected) && JSON.stringify(await walk(read.iterator())) === JSON.stringify(expected) && expected.length === items.length;
    }),
    { numRuns: 300, seed: 20261203 },
  );
  channel.port1.close();
  t.equal(runs, 300, 'random memtables crossed a message port and read back');
  t.ok(shared, 'the image crossed as shared memory, not a copy');
});
