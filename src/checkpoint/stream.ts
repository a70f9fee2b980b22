// A checkpoint as one byte stream (GET /admin/checkpoint, `docket backup`, and a standby seeded
// from its primary): a header, each file framed with its name, length and checksums, and an
// end record holding the descriptor. The grammar and a worked example are in FORMAT.md.
//
//   streamCheckpoint(source)          -> the bytes, for any sink (an HTTP reply, a socket)
//   installCheckpoint(bytes, target)  -> checks every frame and checksum, writes and syncs each
//                                        file, and writes the COMPLETE marker last

import { crc32c, crc32cUpdate } from '../../storage/index.js';
import { DocketError, DocketErrorCode } from '../errors.js';
import { CHECKPOINT_FORMAT, fileChunks, type CheckpointDescriptor, type CheckpointSource } from './checkpoint.js';
import { CheckpointTarget, type CheckpointProgress, type TargetOptions } from './target.js';

export const STREAM_MAGIC = Buffer.from('DKTCHKPT', 'latin1');
export const STREAM_VERSION = 1;
/** magic, version, file count, total file bytes, crc. */
export const STREAM_HEADER_BYTES = 8 + 1 + 4 + 8 + 4;
export const ENTRY_FILE = 0x46; // 'F'
export const ENTRY_END = 0x45; // 'E'
/** kind, name length, size, header crc, data crc (the name and data are extra). */
export const FILE_FRAME_BYTES = 1 + 2 + 8 + 4 + 4;
/** kind, descriptor length, crc (the descriptor is extra). */
export const END_FRAME_BYTES = 1 + 4 + 4;
export const STREAM_NAME_BYTES_MAX = 255;
export const STREAM_FILES_MAX = 1_000_000;
export const STREAM_DESCRIPTOR_BYTES_MAX = 64 * 1024 * 1024;
/** The media type of the stream over HTTP. */
export const CHECKPOINT_MEDIA_TYPE = 'application/vnd.docket.checkpoint';

function corrupt(message: string): DocketError {
  return new DocketError(DocketErrorCode.CHECKPOINT_CORRUPT, `checkpoint stream: ${message}`);
}

/** The stream of a captured checkpoint and its exact length in bytes. Does not release the source. */
export function streamCheckpoint(source: CheckpointSource): { sizeBytes: number; chunks: AsyncGenerator<Buffer> } {
  const descriptor = Buffer.from(JSON.stringify(source.descriptor));
  let sizeBytes = STREAM_HEADER_BYTES + END_FRAME_BYTES + descriptor.length;
  for (const file of source.files) sizeBytes += FILE_FRAME_BYTES + Buffer.byteLength(file.name) + file.sizeBytes;
  return { sizeBytes, chunks: encode(source, descriptor) };
}

async function* encode(source: CheckpointSource, descriptor: Buffer): AsyncGenerator<Buffer> {
  const header = Buffer.alloc(STREAM_HEADER_BYTES);
  STREAM_MAGIC.copy(header, 0);
  header[8] = STREAM_VERSION;
  header.writeUInt32LE(source.files.length, 9);
  header.writeBigUInt64LE(BigInt(source.sizeBytes), 13);
  header.writeUInt32LE(crc32c(header, 0, 21), 21);
  yield header;
  for (const file of source.files) {
    const name = Buffer.from(file.name);
    const frame = Buffer.alloc(1 + 2 + 8 + name.length + 4);
    frame[0] = ENTRY_FILE;
    frame.writeUInt16LE(name.length, 1);
    frame.writeBigUInt64LE(BigInt(file.sizeBytes), 3);
    name.copy(frame, 11);
    frame.writeUInt32LE(crc32c(frame, 0, 11 + name.length), 11 + name.length);
    yield frame;
    let crc = 0;
    let sent = 0;
    for await (const chunk of fileChunks(source.fileSystem, file)) {
      crc = crc32cUpdate(crc, chunk);
      sent += chunk.length;
      yield chunk;
    }
    if (sent !== file.sizeBytes) throw new DocketError(DocketErrorCode.INTERNAL, `checkpoint: ${file.name} gave ${sent} bytes, not ${file.sizeBytes}`);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(crc, 0);
    yield trailer;
  }
  const end = Buffer.alloc(1 + 4);
  end[0] = ENTRY_END;
  end.writeUInt32LE(descriptor.length, 1);
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32cUpdate(crc32c(end), descriptor), 0);
  yield Buffer.concat([end, descriptor, crc]);
}

/** Reads exact byte counts from a chunked stream; TRUNCATED when it ends first. */
class StreamReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private buffered: Buffer = Buffer.alloc(0);
  bytesRead = 0;

  constructor(chunks: AsyncIterable<Uint8Array>) {
    this.iterator = chunks[Symbol.asyncIterator]();
  }

  /** Exactly `length` bytes. */
  async read(length: number): Promise<Buffer> {
    while (this.buffered.length < length) {
      const more = await this.pull();
      this.buffered = this.buffered.length === 0 ? more : Buffer.concat([this.buffered, more]);
    }
    const bytes = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    this.bytesRead += length;
    return bytes;
  }

  /** The next `length` bytes in pieces as they arrive (none longer than what was buffered or received). */
  async *pieces(length: number): AsyncGenerator<Buffer> {
    let left = length;
    while (left > 0) {
      if (this.buffered.length === 0) this.buffered = await this.pull();
      const piece = this.buffered.subarray(0, Math.min(left, this.buffered.length));
      this.buffered = this.buffered.subarray(piece.length);
      this.bytesRead += piece.length;
      left -= piece.length;
      yield piece;
    }
  }

  /** Whether anything follows what was read. */
  async atEnd(): Promise<boolean> {
    while (this.buffered.length === 0) {
      const next = await this.nextChunk();
      if (next.done) return true;
      this.buffered = Buffer.from(next.value);
    }
    return false;
  }

  private async pull(): Promise<Buffer> {
    const next = await this.nextChunk();
    if (next.done) throw new DocketError(DocketErrorCode.CHECKPOINT_TRUNCATED, `checkpoint stream: it ended after ${this.bytesRead + this.buffered.length} bytes, before its end record`);
    return Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
  }

  /** The source's next chunk; a source that breaks (a dropped connection) is a truncated stream. */
  private async nextChunk(): Promise<IteratorResult<Uint8Array>> {
    try {
      return await this.iterator.next();
    } catch (error) {
      throw new DocketError(DocketErrorCode.CHECKPOINT_TRUNCATED, `checkpoint stream: it broke off after ${this.bytesRead + this.buffered.length} bytes: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * Writes a checkpoint stream into `directory` (new or empty), checking every frame and
 * checksum as it goes; the COMPLETE marker is written only after the end record checked out
 * and every file is durable. On any error the directory is left without it (and does not open).
 */
export async function installCheckpoint(chunks: AsyncIterable<Uint8Array>, options: TargetOptions, onProgress?: CheckpointProgress): Promise<CheckpointDescriptor> {
  const target = await CheckpointTarget.create(options);
  const reader = new StreamReader(chunks);
  const { files, totalBytes } = await readHeader(reader);
  const received: { name: string; sizeBytes: number }[] = [];
  let bytes = 0;
  for (;;) {
    const kind = (await reader.read(1))[0]!;
    if (kind === ENTRY_END) break;
    if (kind !== ENTRY_FILE) throw corrupt(`unknown entry kind 0x${kind.toString(16)} at byte ${reader.bytesRead - 1}`);
    if (received.length === files) throw corrupt(`more than the ${files} files its header announced`);
    const { name, sizeBytes } = await readFileFrame(reader);
    const out = await target.createFile(target.pathOf(name));
    let crc = 0;
    try {
      for await (const piece of reader.pieces(sizeBytes)) {
        crc = crc32cUpdate(crc, piece);
        await out.append(piece);
        bytes += piece.length;
        onProgress?.({ bytes, totalBytes });
      }
      if ((await reader.read(4)).readUInt32LE(0) !== crc) throw corrupt(`${name}: its bytes do not match their checksum`);
      await out.sync();
    } finally {
      await out.close();
    }
    received.push({ name, sizeBytes });
  }
  const descriptor = await readEnd(reader);
  checkDescriptor(descriptor, received, files, totalBytes);
  if (!(await reader.atEnd())) throw corrupt('bytes follow its end record');
  await target.complete(descriptor);
  return descriptor;
}

async function readHeader(reader: StreamReader): Promise<{ files: number; totalBytes: number }> {
  const header = await reader.read(STREAM_HEADER_BYTES);
  if (!header.subarray(0, 8).equals(STREAM_MAGIC)) throw corrupt('it does not start with DKTCHKPT (is this a Docket checkpoint?)');
  if (header.readUInt32LE(21) !== crc32c(header, 0, 21)) throw corrupt('its header does not match its checksum');
  if (header[8] !== STREAM_VERSION) throw corrupt(`version ${header[8]} (this code reads version ${STREAM_VERSION})`);
  const files = header.readUInt32LE(9);
  const totalBytes = Number(header.readBigUInt64LE(13));
  if (files > STREAM_FILES_MAX || !Number.isSafeInteger(totalBytes)) throw corrupt(`a header announcing ${files} files and ${totalBytes} bytes`);
  return { files, totalBytes };
}

async function readFileFrame(reader: StreamReader): Promise<{ name: string; sizeBytes: number }> {
  const fixed = await reader.read(2 + 8);
  const nameBytes = fixed.readUInt16LE(0);
  if (nameBytes === 0 || nameBytes > STREAM_NAME_BYTES_MAX) throw corrupt(`a file name of ${nameBytes} bytes`);
  const name = await reader.read(nameBytes);
  const crc = (await reader.read(4)).readUInt32LE(0);
  const expected = crc32cUpdate(crc32cUpdate(crc32c(Buffer.of(ENTRY_FILE)), fixed), name);
  if (crc !== expected) throw corrupt(`the frame of a file at byte ${reader.bytesRead - nameBytes - 15} does not match its checksum`);
  const sizeBytes = Number(fixed.readBigUInt64LE(2));
  if (!Number.isSafeInteger(sizeBytes)) throw corrupt(`a file of ${sizeBytes} bytes`);
  return { name: name.toString('utf8'), sizeBytes };
}

async function readEnd(reader: StreamReader): Promise<CheckpointDescriptor> {
  const length = (await reader.read(4)).readUInt32LE(0);
  if (length > STREAM_DESCRIPTOR_BYTES_MAX) throw corrupt(`an end record of ${length} bytes`);
  const descriptor = await reader.read(length);
  const crc = (await reader.read(4)).readUInt32LE(0);
  const prefix = Buffer.alloc(5);
  prefix[0] = ENTRY_END;
  prefix.writeUInt32LE(length, 1);
  if (crc !== crc32cUpdate(crc32c(prefix), descriptor)) throw corrupt('its end record does not match its checksum');
  try {
    return JSON.parse(descriptor.toString('utf8')) as CheckpointDescriptor;
  } catch {
    throw corrupt('its end record is not JSON');
  }
}

/** The descriptor must list exactly the files received, and the header's count and bytes. */
function checkDescriptor(descriptor: CheckpointDescriptor, received: readonly { name: string; sizeBytes: number }[], files: number, totalBytes: number): void {
  if (descriptor?.format !== CHECKPOINT_FORMAT) throw corrupt(`its descriptor's format is ${JSON.stringify(descriptor?.format)}, not ${CHECKPOINT_FORMAT}`);
  if (received.length !== files) throw corrupt(`${received.length} files where its header announced ${files}`);
  const listed = Array.isArray(descriptor.files) ? descriptor.files : [];
  const same = listed.length === received.length && listed.every((file, i) => file.name === received[i]!.name && file.sizeBytes === received[i]!.sizeBytes);
  if (!same) throw corrupt('its descriptor does not list the files it held');
  const sum = received.reduce((total, file) => total + file.sizeBytes, 0);
  if (sum !== totalBytes) throw corrupt(`${sum} bytes of files where its header announced ${totalBytes}`);
  if (!Number.isSafeInteger(descriptor.tsn) || descriptor.tsn < 0) throw corrupt(`its descriptor names TSN ${String(descriptor.tsn)}`);
}
