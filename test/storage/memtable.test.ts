import t from 'tap';
import fc from 'fast-check';
import { compareKeys, EntryKind, type Entry } from '../../storage/entry.js';
import { Memtable } from '../../storage/memtable/memtable.js';

// Keys from a small alphabet with zero bytes, short and long, many sharing long prefixes: the
// cases where a cached prefix or a skipped range could go wrong.
const keyArbitrary = fc
  .tuple(fc.constantFrom('', 'ab', 'abcdef', 'abcdefgh'), fc.uint8Array({ maxLength: 8 }).map((bytes) => bytes.map((b) => b % 3)), fc.boolean())
  .map(([prefix, tail, long]) => Buffer.concat([Buffer.from(prefix), Buffer.from(tail), long ? Buffer.alloc(70, 1) : Buffer.alloc(0)]));

const sign = (n: number): number => (n > 0 ? 1 : n < 0 ? -1 : 0);

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
          if (memtable.get(key, snapshot) !== expected) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
});
