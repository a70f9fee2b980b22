// The loader's inputs: plain, gzip and Zstandard files (through the zstd program and through
// fzstd), and standard input, each read from the start or from an uncompressed offset; broken
// compressed files and resume points past the end are errors, not short reads.

import t from 'tap';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { identify, openInput, STDIN, zstdAvailable } from '../../loader/input.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/comments-300.ndjson.zst', import.meta.url));
// The fixture is 300 lines of bench/reddit.ts at seed 7, compressed with `zstd -19 --long=27`.
const FIXTURE_SHA256 = '2dc152febd4d24dc48913c45d558fdfda24c3865a4e5182eb17f257b54ac3f46';
const FIXTURE_BYTES = 370_697;

async function readAll(file: string, offset: number, stdin?: Readable): Promise<Buffer> {
  const input = await identify(file);
  const opened = await openInput(input, offset, stdin);
  const chunks: Buffer[] = [];
  for await (const chunk of opened.stream as AsyncIterable<Buffer>) chunks.push(chunk);
  await opened.done;
  return Buffer.concat(chunks);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function withZstd<T>(mode: 'program' | 'js', body: () => Promise<T>): Promise<T> {
  const saved = process.env.DOCKET_LOAD_ZSTD;
  if (mode === 'js') process.env.DOCKET_LOAD_ZSTD = 'js';
  else delete process.env.DOCKET_LOAD_ZSTD;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.DOCKET_LOAD_ZSTD;
    else process.env.DOCKET_LOAD_ZSTD = saved;
  }
}

t.test('plain and gzip files read whole and from an offset', async (t) => {
  const dir = t.testdir();
  const text = Buffer.from(Array.from({ length: 2000 }, (_, i) => `{"id":"${i}"}`).join('\n') + '\n');
  const plain = path.join(dir, 'a.ndjson');
  const gz = path.join(dir, 'a.ndjson.gz');
  await fs.writeFile(plain, text);
  await fs.writeFile(gz, gzipSync(text));
  for (const file of [plain, gz]) {
    t.ok((await readAll(file, 0)).equals(text), `${path.basename(file)} whole`);
    t.ok((await readAll(file, 12_345)).equals(text.subarray(12_345)), `${path.basename(file)} from 12,345`);
    t.equal((await readAll(file, text.length)).length, 0, `${path.basename(file)} from its end`);
  }
});

for (const mode of ['program', 'js'] as const) {
  t.test(`zstd through ${mode === 'js' ? 'fzstd' : 'the zstd program'}: whole, from an offset, and broken`, async (t) => {
    if (mode === 'program' && !(await zstdAvailable())) {
      t.comment('no zstd program on this machine: only fzstd is tested');
      return;
    }
    await withZstd(mode, async () => {
      const whole = await readAll(FIXTURE, 0);
      t.equal(whole.length, FIXTURE_BYTES);
      t.equal(sha256(whole), FIXTURE_SHA256);
      t.ok((await readAll(FIXTURE, 100_000)).equals(whole.subarray(100_000)), 'from 100,000');
      const dir = t.testdir();
      const bytes = await fs.readFile(FIXTURE);
      const truncated = path.join(dir, 'truncated.ndjson.zst');
      await fs.writeFile(truncated, bytes.subarray(0, bytes.length - 1000));
      await t.rejects(readAll(truncated, 0), 'a truncated file is an error');
      const garbage = path.join(dir, 'garbage.zst');
      await fs.writeFile(garbage, Buffer.from('this is not zstandard at all'));
      await t.rejects(readAll(garbage, 0), /Zstandard/, 'not Zstandard at all');
    });
  });
}

t.test('a resume point past the end of a compressed input is an error', async (t) => {
  const dir = t.testdir();
  const gz = path.join(dir, 'short.gz');
  await fs.writeFile(gz, gzipSync(Buffer.from('{"id":"a"}\n')));
  await t.rejects(readAll(gz, 1000), /before the resume point/);
});

t.test('standard input is read from the given stream, skipping to the offset', async (t) => {
  const text = Buffer.from('{"id":"a"}\n{"id":"b"}\n');
  t.ok((await readAll(STDIN, 11, Readable.from([text.subarray(0, 5), text.subarray(5)]))).equals(text.subarray(11)));
});

t.test('identify names a missing file and a directory before anything is read', async (t) => {
  await t.rejects(identify('/nonexistent/file.ndjson'), /ENOENT/);
  await t.rejects(identify(t.testdir()), /not a file/);
  t.same(await identify(STDIN), { path: STDIN, sizeBytes: null, modifiedMs: null });
});
