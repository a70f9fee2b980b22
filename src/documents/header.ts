// A document's header, the value of its key in the collection's meta family: the revision
// (the TSN that last wrote it), whether it is a tombstone, and its top-level fields by number
// in the document's own order (so a read puts them back in that order).
//
//   header := version:byte(1) flags:byte revision:varint count:varint fieldNumber:varint{count}
//   flags  := bit 0 set: deleted (a tombstone; count is 0)

import { ByteReader, ByteWriter, StorageError, StorageErrorCode } from '../../storage/index.js';

export interface Header {
  readonly revision: number;
  readonly deleted: boolean;
  readonly fieldNumbers: readonly number[];
}

export const HEADER_VERSION = 1;
export const FLAG_DELETED = 1;

export function encodeHeader(header: Header): Buffer {
  const writer = new ByteWriter(16 + header.fieldNumbers.length * 2);
  writer.byte(HEADER_VERSION).byte(header.deleted ? FLAG_DELETED : 0).varint(header.revision).varint(header.fieldNumbers.length);
  for (const number of header.fieldNumbers) writer.varint(number);
  return Buffer.from(writer.view());
}

export function decodeHeader(bytes: Buffer): Header {
  const reader = new ByteReader(bytes, 0, bytes.length, 'document header');
  const version = reader.byte();
  if (version !== HEADER_VERSION) throw new StorageError(StorageErrorCode.CORRUPTION, `document header version ${version} is not ${HEADER_VERSION}`);
  const flags = reader.byte();
  const revision = reader.varint();
  const count = reader.varint();
  const fieldNumbers: number[] = [];
  for (let i = 0; i < count; i++) fieldNumbers.push(reader.varint());
  return { revision, deleted: (flags & FLAG_DELETED) !== 0, fieldNumbers };
}
