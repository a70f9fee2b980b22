// The loader's Batcher: bodies hold whole input lines in order, say which lines they hold, and
// end at the offset a resumed load starts from; a line over the loader's bound becomes a blank
// line and a line error, and memory stays bounded.

import t from 'tap';
import fc from 'fast-check';
import { Batcher, type Batch, type BatcherOptions } from '../../loader/batcher.js';

function options(overrides: Partial<BatcherOptions> = {}): BatcherOptions {
  return { input: 0, lineBefore: 0, offsetBefore: 0, batchLines: 3, batchBytes: 1 << 20, lineBytesMax: 1000, ...overrides };
}

/** Feeds `text` in chunks cut at `cuts` and returns every batch, the last one included. */
function batches(text: string, cuts: number[], batcherOptions: BatcherOptions): Batch[] {
  const bytes = Buffer.from(text, 'utf8');
  const batcher = new Batcher(batcherOptions);
  const out: Batch[] = [];
  let start = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
    out.push(...batcher.push(bytes.subarray(start, cut)));
    start = cut;
  }
  out.push(batcher.end());
  return out;
}

t.test('bodies hold the lines in order, counted and numbered, and end where the next line starts', async (t) => {
  const text = 'a1\nb22\nc333\n\nd4444\ne5';
  const out = batches(text, [1, 5, 9, 14], options());
  t.same(out.map((b) => b.body.toString()), ['a1\nb22\nc333\n', '\nd4444\ne5\n']);
  t.same(out.map((b) => [b.firstLine, b.lines, b.endOffset, b.last]), [[1, 3, 12, false], [4, 3, 21, true]]);
});

t.test('a line longer than lineBytesMax is sent as a blank line and reported with its number', async (t) => {
  const long = 'x'.repeat(50);
  const out = batches(`ok\n${long}\nfine\n${long}`, [10, 20, 30], options({ lineBytesMax: 20, batchLines: 10 }));
  t.equal(out.length, 1);
  t.equal(out[0]!.body.toString(), 'ok\n\nfine\n\n');
  t.same(out[0]!.errors.map((e) => e.line), [2, 4]);
  t.equal(out[0]!.endOffset, Buffer.byteLength(`ok\n${long}\nfine\n${long}`));
});

t.test('a resumed batcher numbers lines and offsets after the acknowledged ones', async (t) => {
  const out = batches('x\ny\n', [], options({ lineBefore: 41, offsetBefore: 1000 }));
  t.equal(out.length, 1);
  t.same([out[0]!.firstLine, out[0]!.lines, out[0]!.endOffset], [42, 2, 1004]);
});

t.test('bodies close at batchBytes on a line boundary', async (t) => {
  const out = batches('aaaa\nbbbb\ncccc\n', [], options({ batchLines: 100, batchBytes: 6 }));
  t.same(out.map((b) => b.body.toString()), ['aaaa\nbbbb\n', 'cccc\n']);
});

t.test('property: for any text and chunking, bodies rebuild the input and offsets match line ends', async (t) => {
  const line = fc.oneof(fc.string({ maxLength: 12 }), fc.constant(''), fc.string({ maxLength: 40 }).map((s) => s + '\r'));
  const details = fc.check(
    fc.property(fc.array(line, { maxLength: 30 }), fc.boolean(), fc.array(fc.nat(400), { maxLength: 8 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 8, max: 30 }), (lines, trailingNewline, cuts, batchLines, lineBytesMax) => {
      const clean = lines.map((l) => l.replace(/\n/g, ' '));
      const text = clean.join('\n') + (trailingNewline && clean.length > 0 ? '\n' : '');
      const out = batches(text, cuts, options({ batchLines, lineBytesMax }));
      const terminated = text.endsWith('\n');
      const physical = text.length === 0 ? [] : (terminated ? text.slice(0, -1) : text).split('\n');
      // Expected: each line as it is, or blank when longer than the bound; every line ends in \n.
      const expected = physical.map((l) => (Buffer.byteLength(l) > lineBytesMax ? '' : l) + '\n').join('');
      const bodies = out.map((b) => b.body.toString()).join('');
      if (bodies !== expected) return false;
      let next = 1;
      let offset = 0;
      for (const batch of out) {
        if (batch.firstLine !== next || batch.lines > batchLines) return false;
        for (let i = 0; i < batch.lines; i++) offset += Buffer.byteLength(physical[next - 1 + i]!) + (next - 1 + i < physical.length - 1 || terminated ? 1 : 0);
        if (batch.endOffset !== offset) return false;
        next += batch.lines;
      }
      const errors = out.flatMap((b) => b.errors.map((e) => e.line));
      const tooLong = physical.flatMap((l, i) => (Buffer.byteLength(l) > lineBytesMax ? [i + 1] : []));
      return next === physical.length + 1 && JSON.stringify(errors) === JSON.stringify(tooLong) && out.at(-1)!.last && out.filter((b) => b.last).length === 1;
    }),
    { numRuns: 500 },
  );
  t.same({ failed: details.failed, numRuns: details.numRuns }, { failed: false, numRuns: 500 }, fc.defaultReportMessage(details) ?? 'every one of 500 runs rebuilt its input');
});
