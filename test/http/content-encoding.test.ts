// Request bodies in a Content-Encoding: gzip, deflate (zlib and raw), br and zstd decoded for
// JSON bodies and streamed bulk bodies; a stack of codings; unknown codings 415 with
// Accept-Encoding; bytes that do not decode 400; zip bombs 413 (gzip, br, deflate and zstd RLE
// blocks), and a zstd frame declaring a window past 8 MiB; the exact body-limit boundary after
// decoding; mutated compressed bodies never a 5xx; a bulk bomb over a real socket answered and
// the connection closed.

import * as fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import t from 'tap';
import { ZstdFrameGuard } from '../../server/http/content-encoding.js';
import { openApp } from '../helpers/app.js';


function put(app: FastifyInstance, id: string, body: Buffer, encoding?: string) {
  return app.inject({ method: 'PUT', url: `/collections/c/docs/${id}`, headers: { 'content-type': 'application/json', ...(encoding === undefined ? {} : { 'content-encoding': encoding }) }, payload: body });
}

function bulk(app: FastifyInstance, body: Buffer | Readable, encoding?: string) {
  return app.inject({ method: 'POST', url: '/collections/c/bulk', headers: { 'content-type': 'application/x-ndjson', ...(encoding === undefined ? {} : { 'content-encoding': encoding }) }, payload: body });
}

/** A zstd frame of raw and RLE blocks (RFC 8878), written by hand: no encoder is needed. */
function zstdFrame(blocks: ReadonlyArray<{ raw: Buffer } | { rle: number; size: number }>, windowLog = 17): Buffer {
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (windowLog - 10) << 3])];
  blocks.forEach((block, i) => {
    const last = i === blocks.length - 1 ? 1 : 0;
    const [type, size, content]: [number, number, Buffer] = 'raw' in block ? [0, block.raw.length, block.raw] : [1, block.size, Buffer.from([block.rle])];
    const header = last | (type << 1) | (size << 3);
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), content);
  });
  return Buffer.concat(parts);
}

/** A zstd encoder of sorts: runs of 16 or more equal bytes as RLE blocks, the rest as raw blocks, each at most 128 KiB. */
function zstdRaw(bytes: Buffer): Buffer {
  const BLOCK = 128 * 1024;
  const blocks: ({ raw: Buffer } | { rle: number; size: number })[] = [];
  let start = 0;
  for (let i = 0; i < bytes.length; ) {
    let end = i + 1;
    while (end < bytes.length && bytes[end] === bytes[i] && end - i < BLOCK) end++;
    if (end - i >= 16 || i - start >= BLOCK) {
      for (let from = start; from < i; from += BLOCK) blocks.push({ raw: bytes.subarray(from, Math.min(i, from + BLOCK)) });
      if (end - i >= 16) {
        blocks.push({ rle: bytes[i]!, size: end - i });
        start = end;
      } else start = i;
    }
    i = end;
  }
  for (let from = start; from < bytes.length; from += BLOCK) blocks.push({ raw: bytes.subarray(from, Math.min(bytes.length, from + BLOCK)) });
  return zstdFrame(blocks.length > 0 ? blocks : [{ raw: Buffer.alloc(0) }]);
}

/** `zstd -19` of ZSTD_DOCUMENT: compressed blocks, Huffman literals and all, from the real encoder. */
const ZSTD_DOCUMENT = '{"zs":"zstandard compressed document, compressed document, compressed document","n":[1,2,3,1,2,3,1,2,3]}';
const ZSTD_COMPRESSED = Buffer.from(
  '28b52ffd0468d5010042c30b11b0ebf8ad6dbbaa9609dd8064a2b408034ed1e44891a190f3f3d97893434a816ef7b2951402ca8ef269fd4edeef30020029c62f84e6139dace703',
  'hex',
);

const encoders: Record<string, (bytes: Buffer) => Buffer> = {
  gzip: (bytes) => zlib.gzipSync(bytes),
  'x-gzip': (bytes) => zlib.gzipSync(bytes),
  deflate: (bytes) => zlib.deflateSync(bytes),
  'deflate (raw)': (bytes) => zlib.deflateRawSync(bytes),
  br: (bytes) => zlib.brotliCompressSync(bytes),
  zstd: zstdRaw,
};
const headerOf = (name: string): string => name.split(' ')[0]!;

t.test('a JSON body in each coding is decoded and stored as sent', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  for (const [name, encode] of Object.entries(encoders)) {
    const text = `{"coding":${JSON.stringify(name)},"big":9007199254740993,"x":1.0}`;
    const response = await put(app, 'd', encode(Buffer.from(text)), headerOf(name));
    t.equal(response.statusCode, response.json().rev === 2 ? 201 : 200, `${name}: ${response.body}`);
    t.equal((await app.inject({ method: 'GET', url: '/collections/c/docs/d' })).body.trimEnd(), text, `${name}: read back byte for byte`);
  }
  const real = await put(app, 'z', ZSTD_COMPRESSED, 'zstd');
  t.equal(real.statusCode, 201, real.body);
  t.equal((await app.inject({ method: 'GET', url: '/collections/c/docs/z' })).body.trimEnd(), ZSTD_DOCUMENT, 'zstd from the real encoder (compressed blocks)');
  const stacked = await put(app, 's', zlib.brotliCompressSync(zlib.gzipSync(Buffer.from('{"stacked":true}'))), 'gzip, br');
  t.equal(stacked.statusCode, 201, `gzip then br, decoded br first: ${stacked.body}`);
  const identity = await put(app, 'i', Buffer.from('{"plain":1}'), 'identity');
  t.equal(identity.statusCode, 201, 'identity is no coding');
  // Other JSON bodies go through the same parser: a collection definition, gzip'd.
  const collection = await app.inject({ method: 'PUT', url: '/collections/g', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, payload: zlib.gzipSync('{"schema":{"type":"object","required":["a"]}}') });
  t.equal(collection.statusCode, 201, collection.body);
  t.equal((await app.inject({ method: 'PUT', url: '/collections/g/docs/x', payload: { b: 1 } })).statusCode, 422, 'the gzip\'d schema was read');
});

t.test('an unknown coding is 415 with Accept-Encoding; bytes that do not decode are 400', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  for (const coding of ['compress', 'lzma', 'gzip, bogus']) {
    const response = await put(app, 'd', Buffer.from('{"a":1}'), coding);
    t.equal(response.statusCode, 415, coding);
    t.equal(response.json().code, 'DOCKET_ERR_ENCODING_UNSUPPORTED', coding);
    t.equal(response.headers['accept-encoding'], 'gzip, deflate, br, zstd', `${coding}: says what would do`);
  }
  const plain = Buffer.from('{"a":1}');
  for (const coding of ['gzip', 'deflate', 'br', 'zstd']) {
    const response = await put(app, 'd', plain, coding);
    t.equal(response.statusCode, 400, `a plain body labelled ${coding}: ${response.body}`);
    t.equal(response.json().code, 'DOCKET_ERR_ENCODING_INVALID', coding);
  }
  const gzip = zlib.gzipSync(Buffer.from('{"a":"truncated gzip body"}'));
  const truncated = await put(app, 'd', gzip.subarray(0, gzip.length - 6), 'gzip');
  t.equal(truncated.statusCode, 400, 'a truncated gzip body');
  t.equal(truncated.json().code, 'DOCKET_ERR_ENCODING_INVALID');
  const frame = zstdRaw(Buffer.from('{"a":"truncated zstd"}'));
  const cut = await put(app, 'd', frame.subarray(0, frame.length - 3), 'zstd');
  t.equal(cut.json().code, 'DOCKET_ERR_ENCODING_INVALID', 'a truncated zstd frame');
  t.equal((await app.inject({ method: 'GET', url: '/collections/c/docs/d' })).statusCode, 404, 'nothing was stored');
});

t.test('zip bombs: a small body decoding past the body limit is 413, and the limit is exact', async (t) => {
  const limit = 64 * 1024;
  const app = await openApp(t, { config: { bodyLimitBytes: limit }, collection: 'c' });
  const bomb = Buffer.concat([Buffer.from('{"a":"'), Buffer.alloc(64 * 1024 * 1024, 0x61), Buffer.from('"}')]);
  const brotliFast = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } };
  const bombs: Record<string, Buffer> = {
    gzip: zlib.gzipSync(bomb, { level: 9 }),
    deflate: zlib.deflateSync(bomb, { level: 9 }),
    br: zlib.brotliCompressSync(bomb, brotliFast),
    // 512 RLE blocks of 128 KiB: 64 MiB from about 2 KB.
    zstd: zstdFrame([{ raw: Buffer.from('{"a":"') }, ...Array.from({ length: 512 }, () => ({ rle: 0x61, size: 128 * 1024 })), { raw: Buffer.from('"}') }]),
  };
  for (const [coding, body] of Object.entries(bombs)) {
    t.ok(body.length < limit, `${coding}: the bomb is ${body.length} bytes, under the limit`);
    const response = await put(app, 'd', body, coding);
    t.equal(response.statusCode, 413, `${coding}: ${response.body.slice(0, 200)}`);
    t.equal(response.json().code, 'DOCKET_ERR_LIMIT_EXCEEDED', coding);
  }
  // A document of exactly the limit passes; one byte more is refused, in every coding.
  const exact = (size: number): Buffer => Buffer.concat([Buffer.from('{"a":"'), Buffer.alloc(size - 8, 0x62), Buffer.from('"}')]);
  for (const [name, encode] of Object.entries(encoders)) {
    t.equal((await put(app, 'e', encode(exact(limit)), headerOf(name))).statusCode < 300, true, `${name}: ${limit} bytes decoded are taken`);
    const over = await put(app, 'e', encode(exact(limit + 1)), headerOf(name));
    t.equal(over.statusCode, 413, `${name}: ${limit + 1} bytes decoded are refused`);
  }
  // A zstd frame declaring a 16 MiB window is refused before anything is allocated.
  const wide = zstdFrame([{ raw: Buffer.from('{"a":1}') }], 24);
  const response = await put(app, 'w', wide, 'zstd');
  t.equal(response.statusCode, 413, response.body);
  t.match(response.json().message, /window/);
  const window8 = await put(app, 'w', zstdFrame([{ raw: Buffer.from('{"a":1}') }], 23), 'zstd');
  t.equal(window8.statusCode, 201, `an 8 MiB window is taken: ${window8.body}`);
});

t.test('the zstd frame guard walks frames split at every byte', async (t) => {
  const frames = Buffer.concat([
    zstdFrame([{ raw: Buffer.from('abc') }, { rle: 0x20, size: 10 }]),
    Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]), // A skippable frame.
    ZSTD_COMPRESSED,
  ]);
  for (const size of [1, 2, 5, frames.length]) {
    const guard = new ZstdFrameGuard();
    for (let i = 0; i < frames.length; i += size) guard.push(frames.subarray(i, i + size));
    t.doesNotThrow(() => guard.end(), `chunks of ${size}`);
  }
  const cut = new ZstdFrameGuard();
  cut.push(frames.subarray(0, 10));
  t.throws(() => cut.end(), /inside a frame/, 'a body ending inside a frame');
  t.throws(() => new ZstdFrameGuard().push(Buffer.from('{"a":1}')), /magic/, 'not zstd at all');
});

t.test('mutated compressed bodies are decoded, 400, 413 or 415; never a 5xx', async (t) => {
  const app = await openApp(t, { config: { bodyLimitBytes: 16 * 1024 }, collection: 'c' });
  const text = Buffer.from('{"a":"some text to compress, some text to compress","b":[1,2,3],"c":{"d":null}}');
  const bodies: Record<string, Buffer> = {
    gzip: zlib.gzipSync(text),
    deflate: zlib.deflateSync(text),
    br: zlib.brotliCompressSync(text),
    zstd: ZSTD_COMPRESSED,
  };
  const codings = Object.keys(bodies);
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...codings), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), async (coding, flips, cutAt) => {
      const body = Buffer.from(bodies[coding]!);
      for (const [at, byte] of flips) body[at % body.length] = byte;
      const sent = body.subarray(0, body.length - (cutAt % 3));
      const response = await put(app, 'm', sent, coding);
      if (response.statusCode >= 500) throw new Error(`${coding}: ${response.statusCode} ${response.body}`);
      const code = response.json().code as string | undefined;
      if (response.statusCode >= 400 && !['DOCKET_ERR_ENCODING_INVALID', 'DOCKET_ERR_LIMIT_EXCEEDED', 'DOCKET_ERR_BODY_INVALID', 'DOCKET_ERR_DOCUMENT_INVALID', 'DOCKET_ERR_FIELD_NAME_INVALID', 'DOCKET_ERR_DOCUMENT_FIELD_DUPLICATE'].includes(code!)) {
        throw new Error(`${coding}: unexpected ${response.statusCode} ${response.body}`);
      }
    }),
    { numRuns: 300, seed: 14 },
  );
  t.pass('300 mutated bodies, every answer coded and below 500');
});

t.test('a bulk body in each coding is decoded as it streams', async (t) => {
  const app = await openApp(t, { collection: 'c' });
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: `k${String(i).padStart(5, '0')}`, n: i, text: 'x'.repeat(i % 50) })).join('\n') + '\n';
  for (const [name, encode] of Object.entries(encoders)) {
    const encoded = encode(Buffer.from(lines));
    // Sent in small pieces, so frames, blocks and headers straddle chunks.
    const pieces: Buffer[] = [];
    for (let i = 0; i < encoded.length; i += 777) pieces.push(encoded.subarray(i, i + 777));
    const response = await bulk(app, Readable.from(pieces, { objectMode: false }), headerOf(name));
    t.equal(response.statusCode, 200, `${name}: ${response.body.slice(0, 300)}`);
    t.match(response.json(), { lines: 3000, stored: 3000, failed: 0 }, name);
  }
  const real = await bulk(app, ZSTD_COMPRESSED, 'zstd');
  t.match(real.json(), { lines: 1, stored: 1 }, 'zstd from the real encoder');
  const document = await app.inject({ method: 'GET', url: '/collections/c/docs/k02999' });
  t.same(document.json(), { id: 'k02999', n: 2999, text: 'x'.repeat(2999 % 50) });
});

t.test('a bulk body: unknown coding 415, bad bytes 400, a bomb 413', async (t) => {
  const app = await openApp(t, { config: { bodyLimitBytes: 64 * 1024 }, collection: 'c' });
  const unknown = await bulk(app, Buffer.from('{"id":"a"}\n'), 'compress');
  t.equal(unknown.statusCode, 415);
  t.equal(unknown.json().code, 'DOCKET_ERR_ENCODING_UNSUPPORTED');
  t.equal(unknown.headers.connection, 'close', 'the body is never read');
  for (const coding of ['gzip', 'deflate', 'br', 'zstd']) {
    // The case: a plain body labelled with a coding is stored as nothing, refused as a whole.
    const plain = await bulk(app, Buffer.from('{"id":"p1"}\n{"id":"p2"}\n'), coding);
    t.equal(plain.statusCode, 400, `${coding}: ${plain.body}`);
    t.equal(plain.json().code, 'DOCKET_ERR_ENCODING_INVALID', coding);
  }
  t.equal((await app.inject({ method: 'GET', url: '/collections/c/docs/p1' })).statusCode, 404, 'nothing was stored');
  // One 64 MiB line (a line too long is skipped as it streams, so no store work hides the bound).
  const long = Buffer.alloc(64 * 1024 * 1024, 0x61);
  const bombs: Record<string, Buffer> = {
    gzip: zlib.gzipSync(long, { level: 9 }),
    br: zlib.brotliCompressSync(long, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } }),
    zstd: zstdFrame(Array.from({ length: 512 }, () => ({ rle: 0x61, size: 128 * 1024 }))),
  };
  for (const [coding, body] of Object.entries(bombs)) {
    const response = await bulk(app, body, coding);
    t.equal(response.statusCode, 413, `${coding}: ${response.body}`);
    t.equal(response.json().code, 'DOCKET_ERR_LIMIT_EXCEEDED', coding);
  }
  // Within the ratio: NDJSON that compresses some 20x, well past the 64 KiB allowance.
  const wordy = Array.from({ length: 2000 }, (_, i) => `{"id":"w${i}","r":"${Math.random().toString(36).slice(2, 10)}","pad":"${' '.repeat(400)}"}`).join('\n');
  const packed = zlib.gzipSync(wordy);
  const ratio = Buffer.byteLength(wordy) / packed.length;
  t.ok(ratio > 10 && ratio < 100 && Buffer.byteLength(wordy) > 10 * 64 * 1024, `${ratio.toFixed(0)}x over ${Buffer.byteLength(wordy)} bytes`);
  const ok = await bulk(app, packed, 'gzip');
  t.match(ok.json(), { lines: 2000, stored: 2000 }, 'is within the ratio');
});

t.test('a bulk bomb over a real socket is answered 413, and the server serves on', async (t) => {
  const app = await openApp(t, { config: { bodyLimitBytes: 64 * 1024 }, collection: 'c' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const send = (method: string, path: string, headers: http.OutgoingHttpHeaders, body?: Buffer) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: text }));
      });
      request.on('error', reject);
      request.end(body);
    });
  // About 64 KB: sent whole before the server refuses it, so its close is clean.
  const body = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x61), { level: 9 });
  const answer = await send('POST', '/collections/c/bulk', { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip', 'content-length': body.length }, body);
  t.equal(answer.status, 413, answer.body);
  t.equal(JSON.parse(answer.body).code, 'DOCKET_ERR_LIMIT_EXCEEDED');
  const after = await send('GET', '/healthz', {});
  t.equal(after.status, 200, 'the server serves on');
});
