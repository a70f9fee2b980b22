// Writes one SSTable in a single pass: data blocks, then a bloom filter over the user keys, a
// properties block, an index block and the footer. Output is buffered and appended to the file
// in large chunks. The layout is described in FORMAT.md.

import assert from 'node:assert/strict';
import { EntryKind, type Entry } from '../entry.js';
import type { File } from '../file-system.js';
import { BLOCK_RESTART_INTERVAL, BLOCK_SIZE_BYTES_DEFAULT, BLOOM_BITS_PER_KEY } from '../limits.js';
import { ByteWriter } from '../util/coding.js';
import { BlockBuilder } from './block-builder.js';
import { BloomBuilder } from './bloom.js';
import {
  BLOCK_TRAILER_SIZE_BYTES,
  BlockType,
  FOOTER_SIZE_BYTES,
  FORMAT_VERSION,
  blockChecksum,
  encodeFooter,
  encodeHandle,
  type BlockHandle,
} from './format.js';
import { encodeProperties, type TableProperties } from './properties.js';

export type { TableProperties } from './properties.js';

/** Buffered output goes to the file once this much is pending: few, large appends. */
const WRITE_CHUNK_BYTES = 1024 * 1024;
/** Written chunks kept for reuse; more would only hold memory. */
const SPARE_OUTPUTS_MAX = 4;

export interface TableBuilderOptions {
  blockSizeBytes?: number;
  bloomBitsPerKey?: number;
}

const ORDER_MESSAGE = 'TableBuilder.add: entries must arrive in strictly increasing internal order';

export class TableBuilder {
  private readonly blockSizeBytes: number;
  private readonly dataBlock: BlockBuilder;
  private readonly indexBlock = new BlockBuilder(1);
  private readonly bloom: BloomBuilder;
  private output: ByteWriter;
  /** Bytes handed to `file.append` so far; the file offset where `output` starts. */
  private flushedBytes = 0;
  /** Output buffers whose appends have completed, kept for the next chunks. */
  private readonly spares: ByteWriter[] = [];
  private writes: Promise<void> = Promise.resolve();
  private writeError: unknown = undefined;
  private state: 'open' | 'finished' | 'abandoned' = 'open';
  private first: Entry | undefined;
  private last: Entry | undefined;
  private entryCount = 0;
  private deletionCount = 0;
  private smallestLsn = Number.MAX_SAFE_INTEGER;
  private largestLsn = 0;

  /** REQUIRES: `file` is new and empty; the builder only appends to it. */
  constructor(
    private readonly file: File,
    options: TableBuilderOptions = {},
  ) {
    assert(file.size() === 0, 'TableBuilder needs an empty file');
    this.blockSizeBytes = options.blockSizeBytes ?? BLOCK_SIZE_BYTES_DEFAULT;
    assert(this.blockSizeBytes > 0, 'block size must be positive');
    this.dataBlock = new BlockBuilder(BLOCK_RESTART_INTERVAL, this.blockSizeBytes + 1024);
    this.bloom = new BloomBuilder(options.bloomBitsPerKey ?? BLOOM_BITS_PER_KEY);
    this.output = this.takeOutput();
  }

  /** Bytes the file would hold if the table were finished now (less filter and properties). */
  get estimatedSizeBytes(): number {
    return this.nextOffset + this.dataBlock.estimatedSizeBytes + this.indexBlock.estimatedSizeBytes;
  }

  /** REQUIRES: entries in strictly increasing internal order (compareEntries); asserted. */
  add(entry: Entry): void {
    assert(this.state === 'open', 'TableBuilder.add after finish or abandon');
    this.throwIfWriteFailed();
    assert(Number.isSafeInteger(entry.lsn) && entry.lsn >= 0, 'entry lsn out of range');
    this.account(entry);
    this.dataBlock.add(entry.key, entry.lsn, entry.kind, entry.value);
    this.last = entry;
    if (this.dataBlock.estimatedSizeBytes >= this.blockSizeBytes) this.flushDataBlock();
  }

  /** Resolves once every chunk handed to the file so far is written: backpressure for callers. */
  async drain(): Promise<void> {
    await this.writes;
    this.throwIfWriteFailed();
  }

  /** Writes the rest of the table and the footer. Does not sync or close the file. */
  async finish(): Promise<TableProperties> {
    assert(this.state === 'open', 'TableBuilder.finish twice or after abandon');
    this.state = 'finished';
    this.throwIfWriteFailed();
    if (this.dataBlock.entryCount > 0) this.flushDataBlock();
    const dataSizeBytes = this.nextOffset;
    const filter = this.writeBlock(this.bloom.finish());
    const index = this.indexBlock.finish();
    const propertiesSizeBytes = encodeProperties(this.properties(dataSizeBytes, 0)).length;
    const fileSizeBytes =
      this.nextOffset + propertiesSizeBytes + index.length + 2 * BLOCK_TRAILER_SIZE_BYTES + FOOTER_SIZE_BYTES;
    const properties = this.properties(dataSizeBytes, fileSizeBytes);
    const propertiesHandle = this.writeBlock(encodeProperties(properties));
    const indexHandle = this.writeBlock(index);
    this.output.bytes(encodeFooter({ filter, properties: propertiesHandle, index: indexHandle, formatVersion: FORMAT_VERSION }));
    this.startWrite(false);
    await this.drain();
    assert(this.flushedBytes === fileSizeBytes, 'table size differs from the size its properties state');
    return properties;
  }

  /** Stops building; the caller closes and deletes the file. Writes in flight still finish. */
  abandon(): void {
    this.state = 'abandoned';
    this.output = new ByteWriter(16);
    this.dataBlock.reset();
    this.indexBlock.reset();
  }

  private get nextOffset(): number {
    return this.flushedBytes + this.output.length;
  }

  /** Asserts the order and updates the counts; one key comparison per entry. */
  private account(entry: Entry): void {
    const last = this.last;
    const byKey = last === undefined ? 1 : Buffer.compare(entry.key, last.key);
    if (byKey === 0) assert(entry.lsn < last!.lsn, ORDER_MESSAGE);
    else assert(byKey > 0, ORDER_MESSAGE);
    if (byKey !== 0) this.bloom.addKey(entry.key);
    if (this.first === undefined) this.first = entry;
    this.entryCount++;
    if (entry.kind === EntryKind.DELETE) this.deletionCount++;
    if (entry.lsn < this.smallestLsn) this.smallestLsn = entry.lsn;
    if (entry.lsn > this.largestLsn) this.largestLsn = entry.lsn;
  }

  /** The index maps the last (key, lsn) of each data block to the block's handle. */
  private flushDataBlock(): void {
    const last = this.last!;
    const handle = this.writeBlock(this.dataBlock.finish());
    this.dataBlock.reset();
    this.indexBlock.add(last.key, last.lsn, EntryKind.PUT, encodeHandle(handle));
  }

  /** Copies `contents` and its trailer into the output; the one CRC computation of a block. */
  private writeBlock(contents: Buffer): BlockHandle {
    const handle = { offset: this.nextOffset, size: contents.length };
    this.output.bytes(contents).byte(BlockType.NONE).fixed32(blockChecksum(contents, BlockType.NONE));
    if (this.output.length >= WRITE_CHUNK_BYTES) this.startWrite();
    return handle;
  }

  /** Hands the pending output to the file; appends run one after another, in order. */
  private startWrite(more = true): void {
    const writer = this.output;
    const chunk = writer.view();
    if (chunk.length === 0) return;
    this.flushedBytes += chunk.length;
    this.output = more ? this.takeOutput() : new ByteWriter(16);
    this.writes = this.writes
      .then(async () => {
        if (this.writeError !== undefined) return;
        await this.file.append(chunk);
        // The file keeps no reference once the append resolves, so the buffer can be reused:
        // fresh megabyte buffers would cost page faults and garbage collection.
        writer.reset();
        if (this.spares.length < SPARE_OUTPUTS_MAX) this.spares.push(writer);
      })
      // Recorded, not rethrown: the chain must never hold an unhandled rejection between calls.
      .catch((error: unknown) => {
        this.writeError ??= error;
      });
  }

  private takeOutput(): ByteWriter {
    return this.spares.pop() ?? new ByteWriter(WRITE_CHUNK_BYTES + 2 * this.blockSizeBytes);
  }

  private throwIfWriteFailed(): void {
    if (this.writeError !== undefined) throw this.writeError;
  }

  private properties(dataSizeBytes: number, fileSizeBytes: number): TableProperties {
    const empty = this.entryCount === 0;
    return {
      entries: this.entryCount,
      distinctKeys: this.bloom.keyCount,
      deletions: this.deletionCount,
      dataSizeBytes,
      smallestKey: Buffer.from(this.first?.key ?? []),
      largestKey: Buffer.from(this.last?.key ?? []),
      smallestLsn: empty ? 0 : this.smallestLsn,
      largestLsn: empty ? 0 : this.largestLsn,
      fileSizeBytes,
      formatVersion: FORMAT_VERSION,
    };
  }
}
