// The constants and small codecs the SSTable writer and reader share: block trailers, block
// handles and the footer. Every number here is frozen on disk; FORMAT.md describes the layout.

import { StorageError, StorageErrorCode, corruption } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/coding.js';
import { crc32c, crc32cUpdate, maskCrc } from '../util/crc32c.js';

/** Readers accept every version up to this one; writers write exactly this one. */
export const FORMAT_VERSION = 1;

/** The magic number 0x444f434b45545354, stored big-endian so the file ends in ASCII "DOCKETST". */
export const TABLE_MAGIC_HIGH = 0x444f434b;
export const TABLE_MAGIC_LOW = 0x45545354;

/** The first byte of every block trailer says how the block bytes are stored. */
export const BlockType = {
  /** The block bytes are stored as they are. */
  NONE: 0,
  // 1 is reserved for a future compressed block; a version 1 reader rejects it as corruption.
} as const;
export type BlockType = (typeof BlockType)[keyof typeof BlockType];

/** After every block: the block type (1 byte), then the masked CRC-32C of block bytes + type. */
export const BLOCK_TRAILER_SIZE_BYTES = 5;

/** Three handles (2 x fixed64 each), version (fixed32), crc (fixed32), magic (8 bytes). */
export const FOOTER_SIZE_BYTES = 64;
/** The footer crc covers the three handles and the version: every byte before the crc. */
export const FOOTER_CHECKED_BYTES = 52;

/** Where a block lives in the file. `size` excludes the trailer. */
export interface BlockHandle {
  readonly offset: number;
  readonly size: number;
}

export interface Footer {
  readonly filter: BlockHandle;
  readonly properties: BlockHandle;
  readonly index: BlockHandle;
  readonly formatVersion: number;
}

const typeScratch = new Uint8Array(1);

/** The masked CRC-32C a block trailer stores: over the block bytes, then the type byte. */
export function blockChecksum(contents: Uint8Array, type: number): number {
  typeScratch[0] = type;
  return maskCrc(crc32cUpdate(crc32c(contents), typeScratch));
}

/** Index entries store handles as two varints (offset, size) to keep the index small. */
export function encodeHandle(handle: BlockHandle): Buffer {
  return Buffer.from(new ByteWriter(20).varint(handle.offset).varint(handle.size).view());
}

export function decodeHandle(data: Buffer, what: string): BlockHandle {
  const reader = new ByteReader(data, 0, data.length, what);
  const handle = { offset: reader.varint(), size: reader.varint() };
  if (reader.remaining !== 0) throw corruption(`${what}: ${reader.remaining} stray bytes after a block handle`);
  return handle;
}

export function encodeFooter(footer: Footer): Buffer {
  const writer = new ByteWriter(FOOTER_SIZE_BYTES);
  for (const handle of [footer.filter, footer.properties, footer.index]) {
    writer.fixed64(handle.offset).fixed64(handle.size);
  }
  writer.fixed32(footer.formatVersion);
  writer.fixed32(maskCrc(crc32c(writer.view())));
  const out = Buffer.alloc(FOOTER_SIZE_BYTES);
  writer.view().copy(out);
  out.writeUInt32BE(TABLE_MAGIC_HIGH, FOOTER_CHECKED_BYTES + 4);
  out.writeUInt32BE(TABLE_MAGIC_LOW, FOOTER_CHECKED_BYTES + 8);
  return out;
}

/**
 * Checks magic, then crc, then version, in that order: a flipped bit in the version field is
 * corruption, while a newer writer's intact footer is UNSUPPORTED_VERSION.
 */
export function decodeFooter(data: Buffer, what: string): Footer {
  if (data.length !== FOOTER_SIZE_BYTES) throw corruption(`${what}: footer truncated to ${data.length} bytes`);
  const magicAt = FOOTER_CHECKED_BYTES + 4;
  if (data.readUInt32BE(magicAt) !== TABLE_MAGIC_HIGH || data.readUInt32BE(magicAt + 4) !== TABLE_MAGIC_LOW) {
    throw corruption(`${what}: bad magic number (not an SSTable)`);
  }
  if (data.readUInt32LE(FOOTER_CHECKED_BYTES) !== maskCrc(crc32c(data, 0, FOOTER_CHECKED_BYTES))) {
    throw corruption(`${what}: footer checksum mismatch`);
  }
  const formatVersion = data.readUInt32LE(FOOTER_CHECKED_BYTES - 4);
  if (formatVersion === 0) throw corruption(`${what}: format version 0 does not exist`);
  if (formatVersion > FORMAT_VERSION) {
    throw new StorageError(
      StorageErrorCode.UNSUPPORTED_VERSION,
      `${what}: SSTable format version ${formatVersion} is newer than ${FORMAT_VERSION}`,
    );
  }
  const reader = new ByteReader(data, 0, FOOTER_CHECKED_BYTES - 4, what);
  const handle = (): BlockHandle => ({ offset: reader.fixed64(), size: reader.fixed64() });
  return { filter: handle(), properties: handle(), index: handle(), formatVersion };
}
