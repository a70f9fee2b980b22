// The engine's own write-ahead log, used only in `double` durability mode (off by default):
// each group of batches is one write and one fdatasync. Files rotate past a size; a file is
// deleted once every item in it is in some family's tables.

import * as path from 'node:path';
import type { FileSystem } from '../file-system.js';
import { LogWriter } from '../log/log-writer.js';
import { LogReader } from '../log/log-reader.js';
import { ByteWriter } from '../util/coding.js';
import { decodeLoggedBatch, encodeLoggedBatch, type LoggedBatch } from './wal-record.js';

export const walName = (number: number): string => `${String(number).padStart(6, '0')}.wal`;
export const WAL_NAME_PATTERN = /^(\d{6,})\.wal$/;

interface WalFile {
  readonly number: number;
  lsnMax: number;
}

export class EngineWal {
  private writer: LogWriter | undefined;
  private current: WalFile | undefined;
  /** Files before the current one, oldest first. */
  private readonly older: WalFile[] = [];
  private readonly encoder = new ByteWriter(64 * 1024);

  constructor(
    private readonly fs: FileSystem,
    private readonly directory: string,
    private readonly segmentSizeBytes: number,
  ) {}

  /** Tracks a replayed file, to be deleted once its items are flushed. */
  adopt(number: number, lsnMax: number): void {
    this.older.push({ number, lsnMax });
  }

  async start(number: number): Promise<void> {
    const file = await this.fs.open(path.join(this.directory, walName(number)), 'create');
    await this.fs.syncDirectory(this.directory);
    if (this.current) this.older.push(this.current);
    await this.writer?.close();
    this.writer = new LogWriter(file, number);
    this.current = { number, lsnMax: 0 };
  }

  /** One record per batch, one write, one sync. Resolves with the bytes written. */
  async append(batches: LoggedBatch[]): Promise<number> {
    const payloads = batches.map((batch) => {
      this.encoder.reset();
      encodeLoggedBatch(this.encoder, batch);
      return Buffer.from(this.encoder.view());
    });
    const before = this.writer!.position;
    await this.writer!.addMany(payloads);
    await this.writer!.sync();
    const last = batches[batches.length - 1]!;
    this.current!.lsnMax = Math.max(this.current!.lsnMax, last.lsnFirst + last.items.length - 1);
    return this.writer!.position - before;
  }

  get needsRotation(): boolean {
    return this.writer !== undefined && this.writer.position >= this.segmentSizeBytes;
  }

  /** Deletes older files whose every item has an LSN below `lsnUnpersistedMin`. */
  async deleteObsolete(lsnUnpersistedMin: number): Promise<void> {
    let deleted = false;
    while (this.older.length > 0 && this.older[0]!.lsnMax < lsnUnpersistedMin) {
      await this.fs.unlink(path.join(this.directory, walName(this.older.shift()!.number)));
      deleted = true;
    }
    if (deleted) await this.fs.syncDirectory(this.directory);
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.writer = undefined;
  }
}

/** Reads every batch of one WAL file; a torn tail ends it (that batch was never acknowledged). */
export async function readWalFile(fs: FileSystem, directory: string, number: number): Promise<{ batches: LoggedBatch[]; torn: boolean }> {
  const file = await fs.open(path.join(directory, walName(number)), 'read');
  try {
    const reader = new LogReader(file, number);
    const batches: LoggedBatch[] = [];
    for (let record = await reader.next(); record; record = await reader.next()) batches.push(decodeLoggedBatch(record.payload));
    return { batches, torn: reader.status.kind === 'torn' };
  } finally {
    await file.close();
  }
}
