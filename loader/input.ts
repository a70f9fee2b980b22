// The loader's inputs: NDJSON files, plain, gzip (`.gz`) or Zstandard (`.zst`), or standard
// input (`-`), read as a stream of uncompressed bytes from a given uncompressed offset (where a
// resumed load picks up). Zstandard goes through the `zstd` program when it is on the PATH
// (native, and on the other core), else through fzstd in this process (about 5× slower on the
// dumps' `--long=31` frames, measured 18 against 500 MB/s).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';

export type Compression = 'none' | 'gzip' | 'zstd';

/** What identifies an input between a load and its resumption. */
export interface InputIdentity {
  /** As given on the command line, resolved to an absolute path; `-` for standard input. */
  readonly path: string;
  /** On disk; null for standard input. */
  readonly sizeBytes: number | null;
  readonly modifiedMs: number | null;
}

export interface OpenedInput {
  /** Uncompressed bytes from the requested offset on. */
  readonly stream: Readable;
  /** Bytes read from the file (compressed, as on disk) so far: what progress and ETA count. */
  readonly fileBytesRead: () => number;
  /** Settles when every process and stream behind `stream` is done; rejects on their failure. */
  readonly done: Promise<void>;
  /** Stops reading early: closes the file and ends a zstd process. */
  readonly close: () => void;
}

export const STDIN = '-';
const READ_CHUNK_BYTES = 256 * 1024;

export function compressionOf(file: string): Compression {
  if (file.endsWith('.gz')) return 'gzip';
  if (file.endsWith('.zst') || file.endsWith('.zstd')) return 'zstd';
  return 'none';
}

export async function identify(file: string): Promise<InputIdentity> {
  if (file === STDIN) return { path: STDIN, sizeBytes: null, modifiedMs: null };
  const absolute = path.resolve(file);
  const stat = await fs.stat(absolute); // ENOENT and EACCES surface here, before anything is sent.
  if (!stat.isFile()) throw new Error(`${file} is not a file`);
  return { path: absolute, sizeBytes: stat.size, modifiedMs: Math.trunc(stat.mtimeMs) };
}

/** Opens `input` at uncompressed byte `offset` (0 for the start). */
export async function openInput(input: InputIdentity, offset: number, stdin: Readable = process.stdin): Promise<OpenedInput> {
  const compression = input.path === STDIN ? 'none' : compressionOf(input.path);
  // A plain file seeks; anything else is read (and decompressed) from its start and the first
  // `offset` bytes dropped.
  const seek = compression === 'none' && input.path !== STDIN ? offset : 0;
  const source = input.path === STDIN ? stdin : createReadStream(input.path, { start: seek, highWaterMark: READ_CHUNK_BYTES });
  let fileBytesRead = seek;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      fileBytesRead += chunk.length;
      callback(null, chunk);
    },
  });
  const output = new PassThrough({ highWaterMark: READ_CHUNK_BYTES });
  const tail: Transform[] = offset > seek ? [skipBytes(offset - seek)] : [];
  let done: Promise<unknown>;
  let child: ReturnType<typeof spawn> | undefined;
  if (compression === 'zstd' && (await zstdAvailable())) {
    child = spawn('zstd', ['-dc', '--long=31', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-500)));
    const exited = once(child, 'exit').then(([code]) => {
      if (code !== 0) throw new Error(`the Zstandard input is invalid (zstd exit ${String(code)}): ${stderr.trim() || 'no message'}`);
    });
    done = Promise.all([pipeline(source, counter, child.stdin!), pipeline([child.stdout!, ...tail, output]), exited]);
    done.catch((error: unknown) => output.destroy(error as Error)); // The reader sees the failure.
  } else {
    const stages: Transform[] = [counter];
    if (compression === 'gzip') stages.push(createGunzip());
    if (compression === 'zstd') stages.push(zstdInProcess());
    done = pipeline([source, ...stages, ...tail, output]);
  }
  const settled = done.then(() => undefined);
  settled.catch(() => undefined); // The caller awaits it unless the stream's own error came first.
  const close = (): void => {
    if (source !== stdin) source.destroy();
    child?.kill();
    output.destroy();
  };
  return { stream: output, fileBytesRead: () => fileBytesRead, done: settled, close };
}

/** Drops the first `count` bytes that pass. */
function skipBytes(count: number): Transform {
  let left = count;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (left === 0) return callback(null, chunk);
      if (chunk.length <= left) {
        left -= chunk.length;
        return callback();
      }
      const rest = chunk.subarray(left);
      left = 0;
      callback(null, rest);
    },
    flush(callback: TransformCallback) {
      callback(left > 0 ? new Error(`the input ended ${left} bytes before the resume point: it is not the file that was loaded`) : null);
    },
  });
}

let zstdProgram: Promise<boolean> | undefined;

/** Whether to run the `zstd` program (checked once): not when DOCKET_LOAD_ZSTD=js asks for fzstd. */
export function zstdAvailable(): Promise<boolean> {
  if (process.env.DOCKET_LOAD_ZSTD === 'js') return Promise.resolve(false);
  zstdProgram ??= new Promise((resolve) => {
    const child = spawn('zstd', ['--version'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
  return zstdProgram;
}

/** Decompresses with fzstd in this process. */
function zstdInProcess(): Transform {
  let stage: Transform | undefined = undefined;
  const decompressor = new Decompress((chunk) => stage!.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  stage = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        decompressor.push(chunk);
        callback();
      } catch (error) {
        callback(zstdError(error));
      }
    },
    flush(callback: TransformCallback) {
      try {
        decompressor.push(new Uint8Array(0), true);
        callback();
      } catch (error) {
        callback(zstdError(error));
      }
    },
  });
  return stage;
}

function zstdError(error: unknown): Error {
  return new Error(`the Zstandard input is invalid: ${error instanceof Error ? error.message : String(error)}`);
}
