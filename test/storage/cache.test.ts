// LRU cache tests: eviction order by count and by bytes, the onEvict callback, and the block
// cache's per-file eviction and statistics.

import t from 'tap';
import { BLOCK_CACHE_SLOT_OVERHEAD_BYTES, BlockCache, LruCache } from '../../storage/cache.js';

/** A block whose charge is `chargeBytes`: its own buffer, named by its first bytes. */
const block = (name: string, chargeBytes = BLOCK_CACHE_SLOT_OVERHEAD_BYTES + 16): Buffer => {
  const bytes = Buffer.allocUnsafeSlow(chargeBytes - BLOCK_CACHE_SLOT_OVERHEAD_BYTES).fill(0);
  bytes.write(name);
  return bytes;
};
const C = BLOCK_CACHE_SLOT_OVERHEAD_BYTES + 100; // One block's charge in the tests below.

t.test('a count-bounded cache evicts the least recently used entry', async (t) => {
  const evicted: string[] = [];
  const cache = new LruCache<string, number>(3, { onEvict: (key) => evicted.push(key) });
  cache.set('a', 1);
  cache.set('b', 2);
  cache.set('c', 3);
  t.equal(cache.get('a'), 1, 'a hit makes a the most recently used');
  cache.set('d', 4);
  t.same(evicted, ['b']);
  t.equal(cache.get('b'), undefined);
  t.same([...cache.keys()], ['c', 'a', 'd']);
  t.equal(cache.size, 3);
  t.equal(cache.usage, 3);
});

t.test('a byte-bounded cache evicts until the charges fit the capacity', async (t) => {
  const evicted: string[] = [];
  const cache = new LruCache<string, string>(100, { onEvict: (key) => evicted.push(key) });
  cache.set('a', 'A', 40);
  cache.set('b', 'B', 40);
  cache.set('c', 'C', 50);
  t.same(evicted, ['a']);
  t.equal(cache.usage, 90);
  cache.set('d', 'D', 100);
  t.same(evicted, ['a', 'b', 'c'], 'one large entry pushes out all the others');
  t.equal(cache.usage, 100);
});

t.test('an entry charged more than the capacity is not kept and is reported evicted', async (t) => {
  const evicted: string[] = [];
  const cache = new LruCache<string, string>(10, { onEvict: (key) => evicted.push(key) });
  cache.set('a', 'A', 5);
  cache.set('huge', 'H', 11);
  t.equal(cache.get('huge'), undefined);
  t.equal(cache.get('a'), 'A', 'the oversized entry evicted nothing else');
  t.same(evicted, ['huge']);
});

t.test('replacing, deleting and clearing each report the value that left', async (t) => {
  const evicted: Array<[string, number]> = [];
  const cache = new LruCache<string, number>(10, { onEvict: (key, value) => evicted.push([key, value]) });
  cache.set('a', 1);
  cache.set('a', 2);
  t.same(evicted, [['a', 1]]);
  t.equal(cache.usage, 1, 'a replaced entry is charged once');
  t.ok(cache.delete('a'));
  t.notOk(cache.delete('a'), 'deleting an absent key is a no-op');
  cache.set('b', 3);
  cache.set('c', 4);
  cache.clear();
  t.same(evicted, [['a', 1], ['a', 2], ['b', 3], ['c', 4]]);
  t.equal(cache.size, 0);
  t.equal(cache.usage, 0);
});

t.test('the block cache counts hits and misses and bounds its bytes', async (t) => {
  const cache = new BlockCache(C + C / 2);
  t.equal(cache.get(1, 0), undefined);
  cache.set(1, 0, block('one', C));
  t.same(cache.get(1, 0), block('one', C));
  cache.set(1, 600, block('two', C));
  t.equal(cache.get(1, 0), undefined, 'the older block was evicted for the newer one');
  t.same(cache.stats, { hits: 1, misses: 2, usageBytes: C, capacityBytes: C + C / 2 });
});

t.test('evicting a file drops its blocks and keeps other files\' blocks', async (t) => {
  const cache = new BlockCache(100 * C);
  cache.set(1, 0, block('1a', C));
  cache.set(1, 100, block('1b', C));
  cache.set(2, 0, block('2a', C));
  cache.evictFile(1);
  t.equal(cache.get(1, 0), undefined);
  t.equal(cache.get(1, 100), undefined);
  t.same(cache.get(2, 0), block('2a', C));
  t.equal(cache.stats.usageBytes, C);
  cache.set(1, 0, block('1a again', C));
  t.same(cache.get(1, 0), block('1a again', C), 'a file evicted earlier can be cached again');
  cache.evictFile(3);
  t.equal(cache.stats.usageBytes, 2 * C, 'evicting an unknown file changes nothing');
});

t.test('a block cache of capacity zero caches nothing', async (t) => {
  const cache = new BlockCache(0);
  cache.set(1, 0, block('x'));
  t.equal(cache.get(1, 0), undefined);
  t.equal(cache.stats.usageBytes, 0);
});
