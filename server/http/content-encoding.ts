// Request bodies in a Content-Encoding: gzip, deflate and br through node:zlib, zstd through
// fzstd (Node 20's zlib has no zstd). Decoding is bounded in decoded bytes, never trusting what
// a body says of itself: a JSON body decodes to at most the body limit (413 past it, so a small
// zip bomb cannot expand in memory), and a streamed bulk body to at most the body limit plus
// BULK_DECODED_RATIO_MAX times the compressed bytes read so far. Any other coding is 415
// (DOCKET_ERR_ENCODING_UNSUPPORTED); bytes that do not decode are 400 (DOCKET_ERR_ENCODING_INVALID).
//
// zstd frames are walked here before fzstd sees them (magic, header, block headers), because
// fzstd allocates whatever window a frame header declares (up to 2 GB): a frame declaring more
// than ZSTD_WINDOW_BYTES_MAX (8 MiB, RFC 9659) is refused. fzstd hands each block (at most
// 128 KiB) to a callback, which counts and throws once past the bound, so one push of many
// tiny RLE blocks cannot run away either.

import { Readable, Transform, type TransformCallback } from 'node:stream';
import * as zlib from 'node:zlib';
import { Decompress } from 'fzstd';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import * as limits from '../../src/limits.js';

export type Coding = 'gzip' | 'deflate' | 'br' | 'zstd';

/** What the 415 names, and the Accept-Encoding it answers with (RFC 9110 §15.5.16). */
export const REQUEST_CODINGS: readonly Coding[] = ['gzip', 'deflate', 'br', 'zstd'];

/**
 * The codings of a Content-Encoding header, in the order they were applied (decode from the
 * last); `identity` is dropped, `x-gzip` is gzip. Throws 415 for any other coding.
 */
export function requestCodings(header: string | string[] | undefined): Coding[] {
  if (header === undefined) return [];
  const codings: Coding[] = [];
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '' || name === 'identity') continue;
    const coding = name === 'x-gzip' ? 'gzip' : name;
    if (!(REQUEST_CODINGS as readonly string[]).includes(coding)) {
      throw new DocketError(DocketErrorCode.ENCODING_UNSUPPORTED, `Content-Encoding ${JSON.stringify(part.trim().slice(0, 40))} is not supported; send ${REQUEST_CODINGS.join(', ')} or identity`);
    }
    codings.push(coding as Coding);
  }
  return codings;
}

/** A body that decodes past its bound. */
function tooLarge(limitBytes: number): DocketError {
  return new DocketError(DocketErrorCode.LIMIT_EXCEEDED, `the request body decodes to more than the server's limit of ${limitBytes} bytes`);
}

function invalid(coding: Coding, error: unknown): DocketError {
  if (error instanceof DocketError) return error;
  const reason = (error as Error | undefined)?.message ?? String(error);
  return new DocketError(DocketErrorCode.ENCODING_INVALID, `the request body is not valid ${coding} data (${reason})`, { cause: error });
}

/**
 * A whole body (at most the body limit as received) decoded, at most `limitBytes` long.
 * Throws 413 past the bound, 400 for bytes that do not decode.
 */
export async function decodeBody(bytes: Buffer, codings: readonly Coding[], limitBytes: number): Promise<Buffer> {
  let decoded = bytes;
  for (let i = codings.length - 1; i >= 0; i--) decoded = await decodeOne(decoded, codings[i]!, limitBytes);
  return decoded;
}

async function decodeOne(bytes: Buffer, coding: Coding, limitBytes: number): Promise<Buffer> {
  if (coding === 'zstd') {
    const parts: Buffer[] = [];
    const decoder = new ZstdDecoder(() => limitBytes, limitBytes, (part) => parts.push(part));
    try {
      decoder.push(bytes);
      decoder.end();
    } catch (error) {
      throw invalid('zstd', error);
    }
    return Buffer.concat(parts);
  }
  const options = { maxOutputLength: Math.max(1, limitBytes) };
  return new Promise<Buffer>((resolve, reject) => {
    const done = (error: Error | null, result: Buffer): void => {
      if (!error) resolve(result);
      else reject((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? tooLarge(limitBytes) : invalid(coding, error));
    };
    if (coding === 'gzip') zlib.gunzip(bytes, options, done);
    else if (coding === 'br') zlib.brotliDecompress(bytes, options, done);
    else if (isZlibHeader(bytes)) zlib.inflate(bytes, options, done);
    else zlib.inflateRaw(bytes, options, done); // Some clients send raw DEFLATE as "deflate".
  });
}

/** RFC 1950: CM 8, and the two header bytes a multiple of 31. */
function isZlibHeader(bytes: Buffer): boolean {
  return bytes.length >= 2 && (bytes[0]! & 0x0f) === 8 && ((bytes[0]! << 8) | bytes[1]!) % 31 === 0;
}

/**
 * A streamed body decoded: a readable of the decoded bytes that fails (destroyed with a
 * DocketError) past `allowanceBytes + ratio × compressed bytes read`, or when the bytes do not
 * decode, or when the source breaks off. The source is never destroyed (it is the request, and
 * the response still has to go out on its socket); on failure it is unpiped and left unread.
 */
export function decodeStream(source: Readable, codings: readonly Coding[], allowanceBytes: number, ratio = limits.BULK_DECODED_RATIO_MAX): Readable {
  let compressedBytes = 0;
  let decodedBytes = 0;
  const boundBytes = (): number => allowanceBytes + ratio * compressedBytes;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback): void {
      compressedBytes += chunk.length;
      callback(null, chunk);
    },
  });
  const stages: Transform[] = [counter];
  for (let i = codings.length - 1; i >= 0; i--) stages.push(decoderStream(codings[i]!, boundBytes));
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback): void {
      decodedBytes += chunk.length;
      if (decodedBytes > boundBytes()) callback(new DocketError(DocketErrorCode.LIMIT_EXCEEDED, `the request body decodes to more than ${ratio} times its compressed size (beyond the first ${allowanceBytes} bytes)`));
      else callback(null, chunk);
    },
  });
  stages.push(meter);
  const fail = (error: unknown): void => {
    source.unpipe(counter);
    for (const stage of stages) if (!stage.destroyed) stage.destroy(error as Error);
  };
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i]!;
    const coding = i === 0 || i === stages.length - 1 ? undefined : codings[codings.length - i]!;
    stage.on('error', (error) => fail(coding ? invalid(coding, error) : error));
    if (i > 0) stages[i - 1]!.pipe(stage);
  }
  source.on('error', fail);
  source.on('close', () => {
    if (!source.readableEnded) fail(new DocketError(DocketErrorCode.BODY_INVALID, 'the request body broke off before its end'));
  });
  source.pipe(counter);
  return meter;
}

function decoderStream(coding: Coding, boundBytes: () => number): Transform {
  switch (coding) {
    case 'gzip':
      return zlib.createGunzip();
    case 'br':
      return zlib.createBrotliDecompress();
    case 'deflate':
      return new DeflateStream();
    case 'zstd':
      return new ZstdStream(boundBytes);
  }
}

/** "deflate" as zlib (RFC 1950), or raw DEFLATE when the first bytes are no zlib header. */
class DeflateStream extends Transform {
  private inner: zlib.Inflate | zlib.InflateRaw | undefined;
  private head = Buffer.alloc(0);
  private pending: TransformCallback | undefined;
  private ended: TransformCallback | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.inner) return void this.write_(chunk, callback);
    this.head = Buffer.concat([this.head, chunk]);
    if (this.head.length < 2) return callback();
    this.inner = isZlibHeader(this.head) ? zlib.createInflate() : zlib.createInflateRaw();
    this.inner.on('data', (data: Buffer) => {
      if (!this.push(data)) this.inner!.pause();
    });
    this.inner.on('error', (error) => this.destroy(error));
    this.inner.on('end', () => this.ended?.());
    const head = this.head;
    this.head = Buffer.alloc(0);
    this.write_(head, callback);
  }

  override _read(size: number): void {
    this.inner?.resume();
    super._read(size);
  }

  private write_(chunk: Buffer, callback: TransformCallback): void {
    this.pending = callback;
    if (this.inner!.write(chunk)) this.release();
    else this.inner!.once('drain', () => this.release());
  }

  private release(): void {
    const callback = this.pending;
    this.pending = undefined;
    callback?.();
  }

  override _flush(callback: TransformCallback): void {
    if (!this.inner) return callback(this.head.length === 0 ? undefined : new Error('unexpected end of file'));
    this.ended = () => callback();
    this.inner.end();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.inner?.destroy();
    callback(error);
  }
}

/** fzstd as a stream; each push decodes what is complete, bounded by `boundBytes`. */
class ZstdStream extends Transform {
  private readonly decoder: ZstdDecoder;

  constructor(boundBytes: () => number) {
    super();
    this.decoder = new ZstdDecoder(boundBytes, undefined, (part) => this.push(part));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.decoder.push(chunk);
    } catch (error) {
      return callback(error as Error);
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.decoder.end();
    } catch (error) {
      return callback(error as Error);
    }
    callback();
  }
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_SIZE_MAX = 128 * 1024;

/**
 * fzstd behind a frame walker: every frame header is checked (window at most
 * ZSTD_WINDOW_BYTES_MAX) before fzstd sees the frame, and decoded bytes are counted as fzstd
 * hands them over; past `boundBytes()` it throws (413), which unwinds fzstd mid-push.
 */
export class ZstdDecoder {
  private readonly fzstd: Decompress;
  private decodedBytes = 0;
  private readonly guard = new ZstdFrameGuard();

  constructor(
    private readonly boundBytes: () => number,
    /** The bound reported in the 413 message, when it is a fixed body limit. */
    private readonly limitBytes: number | undefined,
    onData: (part: Buffer) => void,
  ) {
    this.fzstd = new Decompress((data) => {
      if (data.length === 0) return;
      this.decodedBytes += data.length;
      if (this.decodedBytes > this.boundBytes()) {
        throw this.limitBytes !== undefined ? tooLarge(this.limitBytes) : new DocketError(DocketErrorCode.LIMIT_EXCEEDED, `the request body decodes to more than ${limits.BULK_DECODED_RATIO_MAX} times its compressed size`);
      }
      // fzstd reuses nothing it hands over, but copy anyway: the data may view its window.
      onData(Buffer.from(data));
    });
  }

  push(chunk: Buffer): void {
    // fzstd keeps a frame's first bytes until it has 18; the guard walks them first.
    this.guard.push(chunk);
    if (chunk.length > 0) this.fzstd.push(chunk);
  }

  end(): void {
    this.guard.end();
    this.fzstd.push(new Uint8Array(0), true);
  }
}

/** Where the walker is: reading a header of some length, or skipping bytes it need not read. */
type GuardState = 'magic' | 'frame-header' | 'skippable-size' | 'block-header';

/**
 * Walks zstd frames (RFC 8878 §3.1) a chunk at a time: frame headers (window bound, reserved
 * bit), block headers (type, size) and skippable frames, holding at most one header (18 bytes).
 */
export class ZstdFrameGuard {
  private state: GuardState = 'magic';
  private held: Buffer = Buffer.alloc(0);
  private skipBytes = 0;
  private checksum = false;
  private blockSizeMax = ZSTD_BLOCK_SIZE_MAX;
  private started = false;

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.skipBytes > 0) {
        const n = Math.min(this.skipBytes, chunk.length - at);
        this.skipBytes -= n;
        at += n;
        continue;
      }
      const need = this.need();
      const take = Math.min(need - this.held.length, chunk.length - at);
      this.held = Buffer.concat([this.held, chunk.subarray(at, at + take)]);
      at += take;
      this.started = true;
      // A frame header's length is known from its first byte: then it is read on.
      if (this.held.length === this.need()) this.parse();
    }
  }

  /** At the end of the body: it must not end inside a frame. */
  end(): void {
    if (!this.started) throw new Error('the body is empty');
    if (this.state !== 'magic' || this.held.length > 0 || this.skipBytes > 0) throw new Error('unexpected end of data inside a frame');
  }

  /** Bytes the current header needs (a frame header's length depends on its first byte). */
  private need(): number {
    switch (this.state) {
      case 'magic':
      case 'skippable-size':
        return 4;
      case 'block-header':
        return 3;
      case 'frame-header': {
        if (this.held.length === 0) return 1;
        const descriptor = this.held[0]!;
        const singleSegment = (descriptor >> 5) & 1;
        const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
        const contentSizeBytes = [singleSegment, 2, 4, 8][descriptor >> 6]!;
        return 1 + (singleSegment ? 0 : 1) + dictionaryBytes + contentSizeBytes;
      }
    }
  }

  private parse(): void {
    const held = this.held;
    this.held = Buffer.alloc(0);
    switch (this.state) {
      case 'magic': {
        const magic = held.readUInt32LE(0);
        if (magic === ZSTD_MAGIC) this.state = 'frame-header';
        else if ((magic & 0xfffffff0) === 0x184d2a50) this.state = 'skippable-size';
        else throw new Error('not a zstd frame (bad magic number)');
        return;
      }
      case 'skippable-size':
        this.skipBytes = held.readUInt32LE(0);
        this.state = 'magic';
        return;
      case 'frame-header': {
        const descriptor = held[0]!;
        if (descriptor & 0x08) throw new Error('a reserved bit is set in the frame header');
        const singleSegment = (descriptor >> 5) & 1;
        let windowBytes: number;
        if (singleSegment) {
          const dictionaryBytes = [0, 1, 2, 4][descriptor & 3]!;
          const contentSizeBytes = [1, 2, 4, 8][descriptor >> 6]!;
          const at = 1 + dictionaryBytes;
          windowBytes = 0;
          for (let i = contentSizeBytes - 1; i >= 0; i--) windowBytes = windowBytes * 256 + held[at + i]!;
          if (contentSizeBytes === 2) windowBytes += 256;
        } else {
          const exponent = held[1]! >> 3;
          const base = 2 ** (10 + exponent);
          windowBytes = base + (base / 8) * (held[1]! & 7);
        }
        if (windowBytes > limits.ZSTD_WINDOW_BYTES_MAX) {
          throw new DocketError(DocketErrorCode.LIMIT_EXCEEDED, `a zstd frame of the request body declares a ${windowBytes}-byte window; the server decodes windows of at most ${limits.ZSTD_WINDOW_BYTES_MAX} bytes (RFC 9659)`);
        }
        this.checksum = ((descriptor >> 2) & 1) === 1;
        this.blockSizeMax = Math.min(ZSTD_BLOCK_SIZE_MAX, Math.max(windowBytes, 1));
        this.state = 'block-header';
        return;
      }
      case 'block-header': {
        const header = held[0]! | (held[1]! << 8) | (held[2]! << 16);
        const last = header & 1;
        const type = (header >> 1) & 3;
        const size = header >> 3;
        if (type === 3) throw new Error('a block of the reserved type');
        if (size > this.blockSizeMax) throw new Error(`a block of ${size} bytes, over the frame's block size of ${this.blockSizeMax}`);
        this.skipBytes = type === 1 ? 1 : size;
        if (last) {
          this.skipBytes += this.checksum ? 4 : 0;
          this.state = 'magic';
        }
        return;
      }
    }
  }
}

/** A JSON body as fastify read it (at most the body limit), decoded per its Content-Encoding. */
export async function decodedRequestBody(header: string | string[] | undefined, bytes: Buffer, limitBytes: number): Promise<Buffer> {
  const codings = requestCodings(header);
  return codings.length === 0 ? bytes : decodeBody(bytes, codings, limitBytes);
}
