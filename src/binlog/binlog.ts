// Docket's binlog, the only log of the database: numbered, preallocated segments of records in
// the storage/log framing, one record per transaction in TSN order, group commit under two sync
// policies, recovery of a torn tail, reads by TSN range and purge. Layout and rules: FORMAT.md.
//
// The pipeline (one writer loop; `append` only enqueues):
//
//   append(tsn, payload)  -> queue
//   loop: take every queued record that fits (bounded by bytes and count) as one group
//         if it does not fit the segment: sync the segment, make the spare current (rotate)
//         addMany(header? + group)            one write call
//         immediate: fdatasync, then resolve the group's appends in order
//         periodic:  resolve the group's appends; a timer or waitDurable asks for the fdatasync
//
// Invariants:
// - Every segment but the last is complete and synced before the next one takes a byte.
// - Nothing is written to a segment recovered at open; appends start a new one.
// - After the first failed write, sync or preallocation the log is failed for good: nothing is
//   acknowledged after it and no fsync is retried (fsyncgate).
// - Appends are resolved, and rejected, in TSN order.

import assert from 'node:assert/strict';
import * as path from 'node:path';
import { LogWriter, type File, type FileSystem } from '../../storage/index.js';
import { DocketError, DocketErrorCode } from '../errors.js';
import {
  BINLOG_GROUP_RECORDS_MAX,
  BINLOG_HEADER_READ_CHUNK_BYTES,
  BINLOG_GROUP_SIZE_BYTES_MAX,
  BINLOG_PAYLOAD_SIZE_BYTES_MAX,
  BINLOG_SEGMENT_SIZE_BYTES_DEFAULT,
  BINLOG_SEGMENT_SIZE_BYTES_MIN,
} from './limits.js';
import {
  binlogCorruption,
  createSegment,
  encodeHeader,
  encodeRecordPayload,
  FRAME_HEADER_BYTES,
  HEADER_RECORD_BYTES,
  holdsOnlyZeros,
  SEGMENT_NAME_PATTERN,
  SegmentCursor,
  segmentPath,
  withResource,
  writeZeros,
  type BinlogRecord,
} from './segment.js';

export type { BinlogRecord } from './segment.js';
export { BINLOG_SEGMENT_SIZE_BYTES_DEFAULT } from './limits.js';

export type SyncPolicy = { readonly mode: 'immediate' } | { readonly mode: 'periodic'; readonly intervalMs: number };

export interface BinlogOptions {
  readonly directory: string;
  readonly fileSystem: FileSystem;
  readonly sync: SyncPolicy;
  /** Defaults to BINLOG_SEGMENT_SIZE_BYTES_DEFAULT (64 MiB). */
  readonly segmentSizeBytes?: number;
}

export interface BinlogOpenReport {
  /** Segments with a header found on disk (before open started a new one). */
  readonly segments: number;
  readonly lastTsn: number;
  /** The last segment ended in a torn record, which open cut off. */
  readonly tornTail: boolean;
  readonly tornDetail?: string;
  /** The oldest TSN still in the log, or lastTsn + 1 if there is none. */
  readonly firstTsn: number;
}

export interface BinlogStats {
  lastTsn: number;
  durableTsn: number;
  firstTsn: number;
  /** Segments holding a header (the current one included, the spare not). */
  segments: number;
  /** Framed bytes of records, segment headers included; preallocated zeros are not. */
  bytesWritten: number;
  /** Zeros written to preallocate segments. */
  bytesPreallocated: number;
  /** fdatasyncs that made records durable (not those of preallocation or open). */
  syncs: number;
  groups: number;
  records: number;
  syncPolicy: string;
}

interface Settings {
  readonly directory: string;
  readonly fs: FileSystem;
  readonly policy: SyncPolicy;
  readonly segmentSizeBytes: number;
}

interface SegmentEntry {
  readonly number: number;
  readonly firstTsn: number;
}

interface Spare {
  readonly number: number;
  readonly file: File;
}

/** The segment being written. */
interface Current extends SegmentEntry {
  readonly writer: LogWriter;
  readonly sizeBytes: number;
  /** The header payload, until it goes out in front of the segment's first group. */
  header: Buffer | null;
  headerDurable: boolean;
}

interface Pending {
  readonly tsn: number;
  /** The framed payload: TSN, then the caller's bytes. */
  readonly payload: Buffer;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface Waiter {
  readonly tsn: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** What open found on disk, after cutting a torn tail and deleting surplus spares. */
interface Recovered {
  readonly segments: SegmentEntry[];
  readonly lastTsn: number;
  readonly tornDetail: string | null;
  readonly spare: Spare | null;
  readonly nextNumber: number;
}

export class Binlog {
  readonly openReport: BinlogOpenReport;
  private appendedTsn: number;
  private writtenTsn: number;
  private syncedTsn: number;
  /** Segments with a header, oldest first; the last is the current one. */
  private readonly segments: SegmentEntry[];
  private current: Current;
  private spare: Spare | null = null;
  private sparePreparation: Promise<void> | null = null;
  private nextSegmentNumber: number;
  private readonly queue: Pending[] = [];
  /** Sorted by TSN. Durable waiters ask for a sync; written ones (periodic reads) do not. */
  private readonly durableWaiters: Waiter[] = [];
  private readonly writtenWaiters: Waiter[] = [];
  private loop: Promise<void> | null = null;
  private failure: Error | null = null;
  private timerDue = false;
  private readonly timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private closed = false;
  /** Where the record of the last synced TSN ends (unknown for what open recovered). */
  private syncedEnd: { tsn: number; segment: number; offset: number } | undefined;
  /** TSNs that holders (checkpoints being copied) need kept: purge deletes nothing holding them. */
  private readonly retained = new Map<symbol, number>();
  private readonly counters = { bytesWritten: 0, bytesPreallocated: 0, syncs: 0, groups: 0, records: 0 };
  /** Called after each fdatasync that made records durable, with the new durable TSN (replication ships on it). */
  onDurable: ((durableTsn: number) => void) | undefined;
  /** Called with each record as it is queued (replication keeps recent ones to ship without reading them back). */
  onAppend: ((tsn: number, payload: Buffer) => void) | undefined;

  private constructor(
    private readonly settings: Settings,
    recovered: Recovered,
    current: Current,
    bytesPreallocated: number,
  ) {
    this.appendedTsn = this.writtenTsn = this.syncedTsn = recovered.lastTsn;
    this.segments = [...recovered.segments, current];
    this.current = current;
    this.nextSegmentNumber = Math.max(recovered.nextNumber, current.number + 1);
    this.counters.bytesPreallocated = bytesPreallocated;
    this.openReport = {
      segments: recovered.segments.length,
      lastTsn: recovered.lastTsn,
      tornTail: recovered.tornDetail !== null,
      ...(recovered.tornDetail === null ? {} : { tornDetail: recovered.tornDetail }),
      firstTsn: this.firstTsn,
    };
    const policy = settings.policy;
    if (policy.mode === 'periodic') {
      this.timer = setInterval(() => this.onTimer(), policy.intervalMs);
      this.timer.unref(); // A timer alone must not keep the process alive.
    }
  }

  /** Opens the log in `directory` (created if missing), recovering it, and starts a new segment. */
  static async open(options: BinlogOptions): Promise<Binlog> {
    const settings = checkOptions(options);
    await ensureDirectory(settings.fs, settings.directory);
    const recovered = await recover(settings);
    const { current, bytesPreallocated } = await startSegment(settings, recovered);
    const binlog = new Binlog(settings, recovered, current, bytesPreallocated);
    try {
      await binlog.writeFirstHeader();
    } catch (error) {
      await binlog.close().catch(() => undefined);
      throw error;
    }
    return binlog;
  }

  /** The last TSN handed to append (0 when the log is empty). */
  get lastTsn(): number {
    return this.appendedTsn;
  }

  /** The last TSN covered by a completed fsync. */
  get durableTsn(): number {
    return this.syncedTsn;
  }

  /** The oldest TSN still in the log, or lastTsn + 1 if there is none. */
  get firstTsn(): number {
    return this.segments[0]!.firstTsn;
  }

  /**
   * Queues the record of transaction `tsn`; resolves when it is acknowledged (immediate: durable;
   * periodic: written). REQUIRES: tsn === lastTsn + 1, so back-to-back calls need no awaits.
   */
  append(tsn: number, payload: Buffer): Promise<void> {
    if (this.closing !== null) return Promise.reject(this.closedError());
    assert.equal(tsn, this.appendedTsn + 1, `binlog: append of TSN ${tsn} after TSN ${this.appendedTsn}`);
    if (payload.length > BINLOG_PAYLOAD_SIZE_BYTES_MAX) {
      const message = `binlog: a record of ${payload.length} bytes exceeds ${BINLOG_PAYLOAD_SIZE_BYTES_MAX} bytes`;
      return Promise.reject(new DocketError(DocketErrorCode.LIMIT_EXCEEDED, message));
    }
    this.appendedTsn = tsn;
    if (this.failure !== null) return Promise.reject(this.readOnlyError());
    this.onAppend?.(tsn, payload);
    return new Promise((resolve, reject) => {
      this.queue.push({ tsn, payload: encodeRecordPayload(tsn, payload), resolve, reject });
      this.kick();
    });
  }

  /** Resolves once durableTsn >= tsn, asking for a sync if none that covers it is under way. */
  waitDurable(tsn: number): Promise<void> {
    if (this.closed) return Promise.reject(this.closedError());
    if (tsn <= this.syncedTsn) return Promise.resolve();
    if (this.failure !== null) return Promise.reject(this.readOnlyError());
    assert(tsn <= this.appendedTsn, `binlog: waitDurable(${tsn}) beyond the last TSN ${this.appendedTsn}`);
    return this.wait(this.durableWaiters, tsn);
  }

  /** Makes everything appended so far durable. */
  sync(): Promise<void> {
    return this.waitDurable(this.appendedTsn);
  }

  /**
   * The records with fromTsn <= tsn <= throughTsn (default: lastTsn now), in order. It waits
   * until they are acknowledged, then reads with its own file handles, so appends may go on.
   */
  read(fromTsn: number, options: { throughTsn?: number } = {}): AsyncIterableIterator<BinlogRecord> {
    return this.readRange(fromTsn, options.throughTsn ?? this.appendedTsn);
  }

  /** Deletes every segment whose records all have TSNs below `belowTsn`; returns how many. */
  async purge(belowTsn: number): Promise<number> {
    if (this.closing !== null) throw this.closedError();
    // A deleted segment's successor must keep its header through a crash, or the log would
    // look empty and restart at TSN 1.
    if (!this.current.headerDurable) await this.sync();
    for (const tsn of this.retained.values()) belowTsn = Math.min(belowTsn, tsn);
    const doomed: SegmentEntry[] = [];
    while (this.segments.length > 1 && this.segments[1]!.firstTsn <= belowTsn) doomed.push(this.segments.shift()!);
    if (doomed.length === 0) return 0;
    const { fs, directory } = this.settings;
    for (const segment of doomed) await fs.unlink(segmentPath(directory, segment.number));
    await fs.syncDirectory(directory);
    return doomed.length;
  }

  /**
   * Keeps purge from deleting any segment that holds a TSN at or after `fromTsn` until the
   * returned release is called (a checkpoint copying them, later a standby catching up).
   */
  retain(fromTsn: number): () => void {
    const key = Symbol('retained');
    this.retained.set(key, fromTsn);
    return () => void this.retained.delete(key);
  }

  /**
   * The segments that hold TSNs fromTsn..throughTsn, oldest first, with their paths: every one
   * but the last is complete and synced, never written again. REQUIRES: the range is retained
   * (see retain) and within firstTsn..lastTsn.
   */
  segmentFiles(fromTsn: number, throughTsn: number): { number: number; firstTsn: number; path: string }[] {
    assert(fromTsn >= this.firstTsn && fromTsn <= throughTsn && throughTsn <= this.appendedTsn, `binlog: no segments for TSNs ${fromTsn}..${throughTsn}`);
    const first = this.segmentHolding(fromTsn);
    const last = this.segmentHolding(throughTsn);
    return this.segments
      .filter((segment) => segment.number >= first.number && segment.number <= last.number)
      .map((segment) => ({ number: segment.number, firstTsn: segment.firstTsn, path: segmentPath(this.settings.directory, segment.number) }));
  }

  /**
   * The segment and byte offset just past the record of `tsn`, if it is the last one synced by
   * this process (a checkpoint copies the tail segment that far without reading it first).
   */
  durableEndOf(tsn: number): { segment: number; offset: number } | undefined {
    const end = this.syncedEnd;
    return end !== undefined && end.tsn === tsn ? { segment: end.segment, offset: end.offset } : undefined;
  }

  /** The file system and directory the log lives in (a checkpoint reads its segments there). */
  get location(): { fileSystem: FileSystem; directory: string } {
    return { fileSystem: this.settings.fs, directory: this.settings.directory };
  }

  stats(): BinlogStats {
    const policy = this.settings.policy;
    return {
      lastTsn: this.appendedTsn,
      durableTsn: this.syncedTsn,
      firstTsn: this.firstTsn,
      segments: this.segments.length,
      ...this.counters,
      syncPolicy: policy.mode === 'immediate' ? 'immediate' : `periodic ${policy.intervalMs} ms`,
    };
  }

  /** Writes and syncs what is queued (unless the log failed), then closes. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  // ---- The writer loop ----

  private kick(): void {
    if (this.loop !== null) return;
    // Started a microtask later, so that appends issued in the same tick share the first group.
    this.loop = Promise.resolve().then(() => this.run());
  }

  private async run(): Promise<void> {
    for (;;) {
      // Decided synchronously with clearing `loop`, so that no append can slip between the two.
      const work = this.nextWork();
      if (work === null) {
        this.loop = null;
        return;
      }
      await work;
    }
  }

  private nextWork(): Promise<void> | null {
    if (this.failure !== null) {
      this.rejectEverything();
      return null;
    }
    if (this.wantsSync()) return this.syncForWaiters();
    if (this.queue.length > 0) return this.writeGroup();
    return null;
  }

  private wantsSync(): boolean {
    if (this.writtenTsn <= this.syncedTsn) return false;
    if (this.timerDue) return true;
    const first = this.durableWaiters[0];
    // A waiter for a record still queued waits for its group to be written first.
    return first !== undefined && (first.tsn <= this.writtenTsn || this.queue.length === 0);
  }

  private async writeGroup(): Promise<void> {
    let group: Pending[] = [];
    try {
      await this.makeRoom(this.queue[0]!.payload.length);
      group = this.takeGroup(this.roomBytes());
      await this.writeRecords(group);
      if (this.settings.policy.mode === 'immediate') await this.syncWriter();
    } catch (error) {
      if (group.length === 0) group = this.takeGroup(BINLOG_GROUP_SIZE_BYTES_MAX);
      this.fail(error);
      for (const pending of group) pending.reject(error);
      return;
    }
    this.settle(group);
    this.maybePrepareSpare();
  }

  /** The queued records, oldest first, that fit in `roomBytes` and the group bounds (at least one). */
  private takeGroup(roomBytes: number): Pending[] {
    const limitBytes = Math.min(roomBytes, BINLOG_GROUP_SIZE_BYTES_MAX);
    let count = 0;
    let bytes = 0;
    for (const pending of this.queue) {
      const recordBytes = FRAME_HEADER_BYTES + pending.payload.length;
      if (count > 0 && (bytes + recordBytes > limitBytes || count === BINLOG_GROUP_RECORDS_MAX)) break;
      bytes += recordBytes;
      count += 1;
    }
    return this.queue.splice(0, count);
  }

  private async writeRecords(group: Pending[]): Promise<void> {
    const current = this.current;
    const payloads = group.map((pending) => pending.payload);
    if (current.header !== null) payloads.unshift(current.header);
    current.header = null;
    const startBytes = current.writer.position;
    await current.writer.addMany(payloads);
    this.counters.bytesWritten += current.writer.position - startBytes;
    this.counters.groups += 1;
    this.counters.records += group.length;
    this.writtenTsn = group[group.length - 1]!.tsn;
    resolveUpTo(this.writtenWaiters, this.writtenTsn);
  }

  /** fdatasync of the current segment; throws on failure (the caller fails the log). */
  private async syncWriter(): Promise<void> {
    const throughTsn = this.writtenTsn;
    const { number } = this.current;
    const offset = this.current.writer.position; // Just past the record of throughTsn: nothing is written during a sync.
    await this.current.writer.sync();
    this.syncedTsn = throughTsn;
    this.syncedEnd = { tsn: throughTsn, segment: number, offset };
    this.current.headerDurable = true;
    this.timerDue = false;
    this.counters.syncs += 1;
    resolveUpTo(this.durableWaiters, this.syncedTsn);
    this.onDurable?.(this.syncedTsn);
  }

  private async syncForWaiters(): Promise<void> {
    try {
      await this.syncWriter();
    } catch (error) {
      this.fail(error); // The loop rejects the waiters next.
    }
  }

  /** Resolves a group whose I/O succeeded, unless the log failed meanwhile (then nothing is acknowledged). */
  private settle(group: Pending[]): void {
    if (this.failure !== null) {
      const error = this.readOnlyError();
      for (const pending of group) pending.reject(error);
      return;
    }
    for (const pending of group) pending.resolve();
  }

  private fail(error: unknown): void {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    this.kick();
  }

  private rejectEverything(): void {
    const error = this.readOnlyError();
    for (const pending of this.queue.splice(0)) pending.reject(error);
    for (const waiter of this.durableWaiters.splice(0)) waiter.reject(error);
    for (const waiter of this.writtenWaiters.splice(0)) waiter.reject(error);
  }

  private wait(waiters: Waiter[], tsn: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let at = waiters.length;
      while (at > 0 && waiters[at - 1]!.tsn > tsn) at -= 1;
      waiters.splice(at, 0, { tsn, resolve, reject });
      this.kick();
    });
  }

  private onTimer(): void {
    if (this.writtenTsn <= this.syncedTsn && this.queue.length === 0) return;
    this.timerDue = true;
    this.kick();
  }

  // ---- Segments: rotation and the spare ----

  private roomBytes(): number {
    const current = this.current;
    const headerBytes = current.header === null ? 0 : HEADER_RECORD_BYTES;
    return current.sizeBytes - current.writer.position - headerBytes;
  }

  private async makeRoom(payloadBytes: number): Promise<void> {
    const recordBytes = FRAME_HEADER_BYTES + payloadBytes;
    if (recordBytes <= this.roomBytes()) return;
    await this.rotate(HEADER_RECORD_BYTES + recordBytes);
  }

  /** Makes the spare (at least `neededBytes` long) current; its header goes out with the next group. */
  private async rotate(neededBytes: number): Promise<void> {
    // Invariant: every segment but the last is complete and synced.
    if (this.writtenTsn > this.syncedTsn) await this.syncWriter();
    await this.current.writer.close();
    const spare = await this.takeSpare(neededBytes);
    const firstTsn = this.writtenTsn + 1;
    this.current = activate(spare, firstTsn);
    this.segments.push({ number: spare.number, firstTsn });
  }

  private async takeSpare(neededBytes: number): Promise<Spare> {
    if (this.sparePreparation !== null) await this.sparePreparation;
    if (this.failure !== null) throw this.failure;
    const spare = this.spare;
    const { fs, directory, segmentSizeBytes } = this.settings;
    if (spare === null) {
      const number = this.nextSegmentNumber++;
      const sizeBytes = Math.max(segmentSizeBytes, neededBytes);
      const file = await createSegment(fs, directory, number, sizeBytes);
      this.counters.bytesPreallocated += sizeBytes;
      return { number, file };
    }
    const sizeBytes = spare.file.size();
    if (sizeBytes < neededBytes) {
      // A record bigger than a segment gets a bigger segment, preallocated like any other.
      await writeZeros(spare.file, sizeBytes, neededBytes);
      await spare.file.sync();
      this.counters.bytesPreallocated += neededBytes - sizeBytes;
    }
    this.spare = null; // Only now: if the extension failed, close() still closes the file.
    return spare;
  }

  /** Once the current segment is half full, the next one is preallocated in the background. */
  private maybePrepareSpare(): void {
    if (this.spare !== null || this.sparePreparation !== null || this.failure !== null || this.closing !== null) return;
    if (this.current.writer.position * 2 < this.current.sizeBytes) return;
    const { fs, directory, segmentSizeBytes } = this.settings;
    const number = this.nextSegmentNumber++;
    this.sparePreparation = createSegment(fs, directory, number, segmentSizeBytes)
      .then(
        (file) => {
          this.spare = { number, file };
          this.counters.bytesPreallocated += segmentSizeBytes;
        },
        (error: unknown) => this.fail(error),
      )
      .finally(() => {
        this.sparePreparation = null;
      });
  }

  private async writeFirstHeader(): Promise<void> {
    const current = this.current;
    const header = current.header!;
    current.header = null;
    await current.writer.addMany([header]);
    assert.equal(current.writer.position, HEADER_RECORD_BYTES);
    await current.writer.sync();
    current.headerDurable = true;
    this.counters.bytesWritten += HEADER_RECORD_BYTES;
  }

  // ---- Reads ----

  private async *readRange(fromTsn: number, throughTsn: number): AsyncGenerator<BinlogRecord> {
    if (this.closed) throw this.closedError();
    checkRange(fromTsn, throughTsn, this.appendedTsn);
    if (fromTsn <= throughTsn) await this.whenAcknowledged(throughTsn);
    // Checked after the wait, which a purge may have overlapped.
    if (fromTsn < this.firstTsn) {
      throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `binlog: TSN ${fromTsn} was purged (the log starts at ${this.firstTsn})`);
    }
    if (fromTsn > throughTsn) return;
    let segment = this.segmentHolding(fromTsn);
    for (;;) {
      const cursor = await this.openCursor(segment);
      const done = yield* readSegment(cursor, fromTsn, throughTsn);
      if (done) return;
      segment = this.segmentAfter(segment, cursor.nextTsn, throughTsn);
    }
  }

  /** Under immediate a record may be read once durable; under periodic once written. */
  private whenAcknowledged(tsn: number): Promise<void> {
    const immediate = this.settings.policy.mode === 'immediate';
    if (tsn <= (immediate ? this.syncedTsn : this.writtenTsn)) return Promise.resolve();
    if (this.failure !== null) return Promise.reject(this.readOnlyError());
    return this.wait(immediate ? this.durableWaiters : this.writtenWaiters, tsn);
  }

  /** The last segment whose firstTsn is at most `tsn` (a header-only segment may share its firstTsn). */
  private segmentHolding(tsn: number): SegmentEntry {
    let found = this.segments[0]!;
    for (const segment of this.segments) if (segment.firstTsn <= tsn) found = segment;
    return found;
  }

  private segmentAfter(segment: SegmentEntry, nextTsn: number, throughTsn: number): SegmentEntry {
    const next = this.segments.find((candidate) => candidate.number > segment.number);
    if (next === undefined) {
      const message = `segment ${segment.number} ends before TSN ${nextTsn}, and no segment follows (reading through ${throughTsn})`;
      throw binlogCorruption(message);
    }
    if (next.firstTsn !== nextTsn) {
      const message = `segment ${segment.number} ends before TSN ${nextTsn}, but segment ${next.number} starts at TSN ${next.firstTsn}`;
      throw binlogCorruption(message);
    }
    return next;
  }

  private async openCursor(segment: SegmentEntry): Promise<SegmentCursor> {
    const { fs, directory } = this.settings;
    let cursor: SegmentCursor;
    try {
      cursor = await SegmentCursor.open(fs, directory, segment.number);
    } catch (error) {
      if (this.segments.includes(segment)) throw error;
      const message = `binlog: segment ${segment.number} was purged while being read`;
      throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, message, { cause: error });
    }
    if (cursor.firstTsn !== segment.firstTsn) {
      await cursor.close().catch(() => undefined);
      throw binlogCorruption(`segment ${segment.number}: header says TSN ${cursor.firstTsn}, open found ${segment.firstTsn}`);
    }
    return cursor;
  }

  // ---- Errors and shutdown ----

  private readOnlyError(): DocketError {
    const cause = this.failure!;
    const message = `binlog: an earlier write or sync failed (${cause.message}); the log takes no more writes until reopened`;
    return new DocketError(DocketErrorCode.READ_ONLY, message, { cause });
  }

  private closedError(): DocketError {
    return new DocketError(DocketErrorCode.CLOSED, 'binlog: closed');
  }

  private async shutDown(): Promise<void> {
    const healthy = this.failure === null;
    let firstError: unknown = null;
    const note = (error: unknown): void => {
      if (healthy) firstError ??= error;
    };
    await this.waitDurable(this.appendedTsn).catch(note);
    if (this.timer !== null) clearInterval(this.timer);
    while (this.loop !== null) await this.loop;
    if (this.sparePreparation !== null) await this.sparePreparation;
    await this.current.writer.close().catch(note);
    await this.spare?.file.close().catch(note);
    this.closed = true;
    if (firstError !== null) throw firstError;
  }
}

/** Reads the records of one segment in range; true once throughTsn was reached. Closes the cursor. */
async function* readSegment(cursor: SegmentCursor, fromTsn: number, throughTsn: number): AsyncGenerator<BinlogRecord, boolean> {
  try {
    for (let record = await cursor.next(); record !== null; record = await cursor.next()) {
      if (record.tsn >= fromTsn) yield record;
      if (record.tsn >= throughTsn) return true;
    }
    const status = cursor.status;
    if (status.kind === 'torn') {
      const message = `segment ${cursor.number}: torn record at offset ${status.offset} before TSN ${throughTsn} (${status.detail})`;
      throw binlogCorruption(message);
    }
    return false;
  } finally {
    // Also when the caller stops early. A read handle has nothing to lose on close.
    await cursor.close().catch(() => undefined);
  }
}

function resolveUpTo(waiters: Waiter[], tsn: number): void {
  while (waiters.length > 0 && waiters[0]!.tsn <= tsn) waiters.shift()!.resolve();
}

function activate(spare: Spare, firstTsn: number): Current {
  const writer = new LogWriter(spare.file, spare.number, { position: 0 });
  const header = encodeHeader(firstTsn);
  return { number: spare.number, firstTsn, writer, sizeBytes: spare.file.size(), header, headerDurable: false };
}

function checkRange(fromTsn: number, throughTsn: number, lastTsn: number): void {
  const valid = Number.isSafeInteger(fromTsn) && fromTsn >= 1 && Number.isSafeInteger(throughTsn) && throughTsn <= lastTsn;
  if (!valid) {
    const message = `binlog: cannot read TSNs ${fromTsn} through ${throughTsn} (the last TSN is ${lastTsn})`;
    throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, message);
  }
}

function checkOptions(options: BinlogOptions): Settings {
  const segmentSizeBytes = options.segmentSizeBytes ?? BINLOG_SEGMENT_SIZE_BYTES_DEFAULT;
  if (!Number.isSafeInteger(segmentSizeBytes) || segmentSizeBytes < BINLOG_SEGMENT_SIZE_BYTES_MIN) {
    const message = `binlog: segmentSizeBytes must be an integer of at least ${BINLOG_SEGMENT_SIZE_BYTES_MIN}, got ${segmentSizeBytes}`;
    throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, message);
  }
  const policy = options.sync;
  if (policy.mode === 'periodic' && !(Number.isFinite(policy.intervalMs) && policy.intervalMs > 0)) {
    throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `binlog: sync intervalMs must be positive, got ${policy.intervalMs}`);
  }
  return { directory: options.directory, fs: options.fileSystem, policy, segmentSizeBytes };
}

async function ensureDirectory(fs: FileSystem, directory: string): Promise<void> {
  if (await fs.exists(directory)) return;
  await fs.mkdir(directory);
  await fs.syncDirectory(path.dirname(path.resolve(directory)));
}

// ---- Open: recovery ----

/**
 * Reads every segment's header, reads the last segment with a header in full (cutting a torn
 * tail), and keeps at most one trailing spare. Earlier segments were synced whole before their
 * successor took a byte, so open does not read them; read() checks them.
 */
async function recover(settings: Settings): Promise<Recovered> {
  const numbers = await listSegments(settings);
  const starts: { number: number; firstTsn: number | null }[] = [];
  for (const number of numbers) starts.push({ number, firstTsn: await readFirstTsn(settings, number) });
  let headed = starts.length;
  while (headed > 0 && starts[headed - 1]!.firstTsn === null) headed -= 1;
  const segments = checkHeaders(starts.slice(0, headed));
  const last = segments[segments.length - 1];
  const { lastTsn, tornDetail } = last === undefined ? { lastTsn: 0, tornDetail: null } : await recoverLastSegment(settings, last);
  const spare = await keepOneSpare(settings, numbers.slice(headed));
  return { segments, lastTsn, tornDetail, spare, nextNumber: (numbers[numbers.length - 1] ?? 0) + 1 };
}

async function listSegments(settings: Settings): Promise<number[]> {
  const numbers: number[] = [];
  for (const name of await settings.fs.list(settings.directory)) {
    const match = SEGMENT_NAME_PATTERN.exec(name);
    if (match !== null) numbers.push(Number(match[1]));
  }
  return numbers.sort((a, b) => a - b);
}

async function readFirstTsn(settings: Settings, number: number): Promise<number | null> {
  const cursor = await SegmentCursor.open(settings.fs, settings.directory, number, 'read', BINLOG_HEADER_READ_CHUNK_BYTES);
  await cursor.close();
  return cursor.firstTsn;
}

/** Segments before the last one with a header must all have one, with firstTsn never decreasing. */
function checkHeaders(starts: { number: number; firstTsn: number | null }[]): SegmentEntry[] {
  const segments: SegmentEntry[] = [];
  for (const { number, firstTsn } of starts) {
    if (firstTsn === null) throw binlogCorruption(`segment ${number} has no header, but a later segment has one`);
    const previous = segments[segments.length - 1];
    if (previous !== undefined && firstTsn < previous.firstTsn) {
      throw binlogCorruption(`segment ${number} starts at TSN ${firstTsn}, before segment ${previous.number} (TSN ${previous.firstTsn})`);
    }
    segments.push({ number, firstTsn });
  }
  return segments;
}

/**
 * Reads the last segment to its end. A torn tail (what a crash mid-append leaves; under immediate
 * it was never acknowledged) is cut to zeros. The segment is then synced: after a process crash
 * its unsynced pages are still readable, and appends about to follow them must not outlive them.
 */
async function recoverLastSegment(settings: Settings, segment: SegmentEntry): Promise<{ lastTsn: number; tornDetail: string | null }> {
  const cursor = await SegmentCursor.open(settings.fs, settings.directory, segment.number, 'write');
  return withResource(cursor, async () => {
    while ((await cursor.next()) !== null);
    const status = cursor.status;
    let tornDetail: string | null = null;
    if (status.kind === 'torn') {
      tornDetail = `segment ${segment.number}: ${status.detail} at offset ${status.offset}; cut there`;
      const sizeBytes = cursor.file.size();
      await cursor.file.truncate(status.offset); // Zeros from the cut on: nothing beyond it can come back.
      await cursor.file.truncate(sizeBytes);
    }
    await cursor.file.sync();
    return { lastTsn: cursor.nextTsn - 1, tornDetail };
  });
}

/**
 * Trailing segments without a header are spares or rotations whose header never landed; none
 * holds an acknowledged record. The first one that is full size and all zeros is kept as the
 * spare; the others are deleted before anything new is written, since a header-less segment
 * before one with a header is corruption.
 */
async function keepOneSpare(settings: Settings, numbers: number[]): Promise<Spare | null> {
  const { fs, directory } = settings;
  let spare: Spare | null = null;
  try {
    for (const number of numbers) {
      if (spare === null) spare = await reusableSpare(settings, number);
      if (spare?.number !== number) await fs.unlink(segmentPath(directory, number));
    }
    if (numbers.length > 0) await fs.syncDirectory(directory);
  } catch (error) {
    await spare?.file.close().catch(() => undefined);
    throw error;
  }
  return spare;
}

async function reusableSpare(settings: Settings, number: number): Promise<Spare | null> {
  const file = await settings.fs.open(segmentPath(settings.directory, number), 'write');
  try {
    if (file.size() >= settings.segmentSizeBytes && (await holdsOnlyZeros(file))) {
      await file.sync(); // Its zeros may not have reached the disk before a process crash.
      return { number, file };
    }
  } catch (error) {
    await file.close().catch(() => undefined);
    throw error;
  }
  await file.close();
  return null;
}

/** The segment new appends go to: the spare if open kept one, else a new preallocated one. */
async function startSegment(settings: Settings, recovered: Recovered): Promise<{ current: Current; bytesPreallocated: number }> {
  const firstTsn = recovered.lastTsn + 1;
  if (recovered.spare !== null) return { current: activate(recovered.spare, firstTsn), bytesPreallocated: 0 };
  const { fs, directory, segmentSizeBytes } = settings;
  const file = await createSegment(fs, directory, recovered.nextNumber, segmentSizeBytes);
  return { current: activate({ number: recovered.nextNumber, file }, firstTsn), bytesPreallocated: segmentSizeBytes };
}
