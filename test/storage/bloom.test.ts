// Bloom filter tests: the frozen hash against published MurmurHash3 vectors, no false
// negatives, a false-positive rate near 1% at 10 bits a key, and the probe-count rules.

import t from 'tap';
import {
  BloomBuilder,
  bloomProbeCount,
  buildBloomFilter,
  isWellFormedFilter,
  mayContain,
  murmur3,
} from '../../storage/sstable/bloom.js';

const key = (prefix: string, i: number): Buffer => Buffer.from(`${prefix}:${String(i).padStart(8, '0')}`);

t.test('murmur3 matches the published x86 32-bit test vectors', async (t) => {
  t.equal(murmur3(Buffer.alloc(0), 0), 0);
  t.equal(murmur3(Buffer.alloc(0), 1), 0x514e28b7);
  t.equal(murmur3(Buffer.from('hello'), 0), 0x248bfa47);
  t.equal(murmur3(Buffer.from('The quick brown fox jumps over the lazy dog'), 0x9747b28c), 0x2fa826cd);
  t.equal(murmur3(Buffer.from([0x21, 0x43, 0x65, 0x87]), 0), 0xf55b516b);
  t.equal(murmur3(Buffer.from([0x21, 0x43, 0x65]), 0), 0x7e4a8634);
  t.equal(murmur3(Buffer.from([0x21, 0x43]), 0), 0xa0f7b07a);
  t.equal(murmur3(Buffer.from([0x21]), 0), 0x72661cf4);
});

t.test('a filter over 10,000 keys has no false negatives and about 1% false positives', async (t) => {
  const builder = new BloomBuilder(10);
  for (let i = 0; i < 10_000; i++) builder.addKey(key('present', i));
  const filter = builder.finish();
  t.equal(filter.length, 12_500 + 1, '10 bits a key plus the probe-count byte');
  t.equal(filter[filter.length - 1], 7, 'k = round(10 ln 2)');
  let falseNegatives = 0;
  for (let i = 0; i < 10_000; i++) if (!mayContain(filter, key('present', i))) falseNegatives++;
  t.equal(falseNegatives, 0);
  let falsePositives = 0;
  for (let i = 0; i < 10_000; i++) if (mayContain(filter, key('absent', i))) falsePositives++;
  const rate = falsePositives / 10_000;
  t.ok(rate < 0.03, `false-positive rate ${(rate * 100).toFixed(2)}% is under 3%`);
  t.ok(rate > 0.001, `false-positive rate ${(rate * 100).toFixed(2)}% is near 1%, not suspiciously zero`);
});

t.test('a filter over one key or no keys still has 64 bits and filters', async (t) => {
  const one = new BloomBuilder(10);
  one.addKey(Buffer.from('only'));
  const filter = one.finish();
  t.equal(filter.length, 9);
  t.ok(mayContain(filter, Buffer.from('only')));
  const empty = new BloomBuilder(10).finish();
  t.equal(empty.length, 9);
  let matches = 0;
  for (let i = 0; i < 100; i++) if (mayContain(empty, key('any', i))) matches++;
  t.equal(matches, 0, 'an empty filter matches nothing');
});

t.test('the probe count is round(bits ln 2) clamped to 1..30', async (t) => {
  t.equal(bloomProbeCount(10), 7);
  t.equal(bloomProbeCount(0.5), 1);
  t.equal(bloomProbeCount(1), 1);
  t.equal(bloomProbeCount(100), 30);
});

t.test('a filter with a probe count outside 1..30 matches every key', async (t) => {
  const filter = buildBloomFilter(new Uint32Array(0), 10);
  filter[filter.length - 1] = 31;
  t.ok(mayContain(filter, Buffer.from('x')));
  t.notOk(isWellFormedFilter(filter));
  t.ok(mayContain(Buffer.alloc(0), Buffer.from('x')), 'a filter with no bits matches');
});
