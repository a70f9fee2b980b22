// TableReader.getManyCached (one seek and one walk per block for a sorted set of keys) gives,
// key by key, exactly what getCached gives: random tables with several versions per key (some
// spanning blocks), deletes, random snapshots and random sorted key sets with repeats.

import t from 'tap';
import fc from 'fast-check';
import * as path from 'node:path';
import { BlockCache } from '../../storage/cache.js';
import { EntryKind, type Entry } from '../../storage/entry.js';
import { RealFileSystem } from '../../storage/file-system.js';
import { TableBuilder } from '../../storage/sstable/table-builder.js';
import { NOT_CACHED, TableReader } from '../../storage/sstable/table-reader.js';

const fs = new RealFileSystem();
const show = (entry: Entry | undefined | typeof NOT_CACHED): string =>
  entry === NOT_CACHED ? 'not cached' : entry ? `${entry.lsn}:${entry.kind}:${entry.value.toString('hex')}` : 'none';

t.test('getManyCached answers each key as getCached does', async (t) => {
  const directory = t.testdir();
  let fileNumber = 0;
  // Keys like a document's fields: id, 0x00, field number; a few ids, many versions.
  const keyOf = (id: number, field: number): Buffer => Buffer.from([0x64, 0x30 + id, 0, field]);
  const details = await fc.check(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 40 }), fc.boolean(), fc.integer({ min: 0, max: 300 })), { minLength: 1, maxLength: 400, size: 'max' }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 42 })), { minLength: 1, maxLength: 30, size: 'max' }),
      fc.integer({ min: 1, max: 450 }),
      async (items, asked, snapshot) => {
        // Internal order: key ascending, LSN descending; LSNs distinct.
        const entries = items.map(([id, field, tombstone, size], i) => ({ key: keyOf(id, field), lsn: i + 1, kind: tombstone ? EntryKind.DELETE : EntryKind.PUT, value: tombstone ? Buffer.alloc(0) : Buffer.alloc(size, i % 251) }));
        entries.sort((a, b) => Buffer.compare(a.key, b.key) || b.lsn - a.lsn);
        const filePath = path.join(directory, `${++fileNumber}.sst`);
        const file = await fs.open(filePath, 'create');
        const builder = new TableBuilder(file, { blockSizeBytes: 256 });
        for (const entry of entries) builder.add(entry);
        await builder.finish();
        await file.sync();
        await file.close();
        const reader = await TableReader.open(await fs.open(filePath, 'read'), fileNumber, new BlockCache(1 << 26));
        try {
          for (let b = 0; b < reader.blockCount; b++) await reader.readDataBlock(b);
          const keys = asked.map(([id, field]) => keyOf(id, field));
          const order = keys.map((_, i) => i).sort((a, b) => Buffer.compare(keys[a]!, keys[b]!));
          const found: (Entry | undefined)[] = keys.map(() => undefined);
          const resolved = new Uint8Array(keys.length);
          const whole = reader.getManyCached(keys, order, 0, order.length, snapshot, found, resolved, []);
          const expected = keys.map((key) => show(reader.getCached(key, snapshot)));
          const actual = keys.map((_, i) => (resolved[i] ? show(found[i]) : 'none'));
          return whole && JSON.stringify(actual) === JSON.stringify(expected);
        } finally {
          await reader.close();
        }
      },
    ),
    { numRuns: 200, seed: 20261203 },
  );
  t.equal(details.failed, false, fc.defaultReportMessage(details) ?? '');
  t.equal(details.numRuns, 200, 'random tables and key sets compared');
});
