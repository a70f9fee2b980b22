// Appends framed records to one log file at a position it tracks itself, one write call per
// add or group of adds; it owns the file and closes it. After a failed write or sync it refuses
// everything. See FORMAT.md.

import assert from 'node:assert/strict';
import { fromSystemError, StorageError, StorageErrorCode } from '../errors.js';
import type { File } from '../file-system.js';
import { encodeRecords, logCrcSeed } from './format.js';

export interface LogWriterOptions {
  /** Where the next record goes; defaults to the file's size. Set it to write over preallocated zeros. */
  position?: number;
}

export class LogWriter {
  private nextPosition: number;
  private failure: StorageError | null = null;
  private closed = false;
  private readonly seed: number;

  constructor(
    private readonly file: File,
    readonly logNumber: number,
    options: LogWriterOptions = {},
  ) {
    this.seed = logCrcSeed(logNumber);
    this.nextPosition = options.position ?? file.size();
    assert(Number.isSafeInteger(this.nextPosition) && this.nextPosition >= 0, `bad position ${this.nextPosition}`);
  }

  /** The offset where the next record will start. */
  get position(): number {
    return this.nextPosition;
  }

  /** Appends one record; resolves with the offset just past it (not yet durable: see sync). */
  add(payload: Uint8Array): Promise<number> {
    return this.addMany([payload]);
  }

  /** Appends several records with one write call (group commit); resolves with the end offset. */
  async addMany(payloads: readonly Uint8Array[]): Promise<number> {
    this.checkUsable();
    const bytes = encodeRecords(this.seed, payloads);
    const position = this.nextPosition;
    // Reserved before the await, so adds that overlap in time never overlap on disk.
    this.nextPosition += bytes.length;
    await this.guard(() => this.file.write(position, bytes));
    return position + bytes.length;
  }

  /** Makes every record added so far durable. */
  async sync(): Promise<void> {
    this.checkUsable();
    await this.guard(() => this.file.sync());
  }

  /** Closes the file (without a sync: call sync first for durability); later calls reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
  }

  private checkUsable(): void {
    if (this.closed) throw new StorageError(StorageErrorCode.CLOSED, `log ${this.logNumber}: the writer is closed`);
    if (this.failure === null) return;
    throw new StorageError(
      StorageErrorCode.READ_ONLY,
      `log ${this.logNumber}: an earlier write or sync failed (${this.failure.message}); the log takes no more writes`,
      { cause: this.failure },
    );
  }

  private async guard(operation: () => Promise<void>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      // NB: never retry. After a failed fsync Linux may drop the dirty pages and report the
      // next fsync as a success (fsyncgate), so the only safe answer is to stop writing.
      const failure = fromSystemError(error, `log ${this.logNumber} at ${this.file.path}`);
      this.failure ??= failure;
      throw failure;
    }
  }
}
