// The block cache's charge against the memory it really retains. A cache that charged raw block
// bytes but held decoded entries kept ~16x its charge (56.6 MB charged held 894 MB), so a read
// load grew the server to gigabytes; this holds the charge to what the cached blocks keep alive.

import t from 'tap';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { BlockCache } from '../../storage/cache.js';
import { EntryKind } from '../../storage/entry.js';
import { RealFileSystem } from '../../storage/file-system.js';
import { TableBuilder } from '../../storage/sstable/table-builder.js';
import { TableReader } from '../../storage/sstable/table-reader.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const fs = new RealFileSystem();

/** Heap and off-heap bytes in use after a full collection. */
function retainedBytes(): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

const KEYS = 150_000;
const keyOf = (i: number): Buffer => Buffer.from(`t1_comment${String(i).padStart(8, '0')}\u0000\u0005`);

t.test("the block cache's charge is within 1.5x of the memory its blocks retain", async (t) => {
  const dir = t.testdir();
  const filePath = path.join(dir, '000001.sst');
  const file = await fs.open(filePath, 'create');
  const builder = new TableBuilder(file);
  // Reddit-comment-sized field values: short keys, ~40-byte values, as a field family holds.
  for (let i = 0; i < KEYS; i++) builder.add({ key: keyOf(i), lsn: i + 1, kind: EntryKind.PUT, value: Buffer.from(`"value of field five in comment ${i}"`) });
  await builder.finish();
  await file.sync();
  await file.close();

  const cache = new BlockCache(1 << 30);
  const reader = await TableReader.open(await fs.open(filePath, 'read'), 1, cache);
  const before = retainedBytes();
  for (let i = 0; i < KEYS; i += 7) {
    const entry = await reader.get(keyOf(i), Number.MAX_SAFE_INTEGER);
    if (entry?.value.toString() !== `"value of field five in comment ${i}"`) t.fail(`key ${i} read back wrong`);
  }
  const retained = retainedBytes() - before;
  const charged = cache.stats.usageBytes;
  t.ok(charged > 5_000_000, `the cache holds the table's blocks (${charged} bytes charged)`);
  t.ok(retained <= 1.5 * charged, `retained ${retained} bytes for ${charged} charged (ratio ${(retained / charged).toFixed(2)})`);
  t.ok(retained >= charged / 1.5, `the charge is not far above what is held: retained ${retained}, charged ${charged}`);
  await reader.close();
});
