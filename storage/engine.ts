// The engine's core: column families over one LSN space, one manifest and one block cache. This
// file holds the write path (queue, LSN assignment, optional WAL, memtable apply), the background
// work (flush with its flag and barrier, leveled compaction), recovery, and the versions reads
// pin. The public class (db.ts) composes it with the read path (reader.ts), which reads through
// the ReadSource this core implements.
// storage/README.md maps the files on disk and the paths through this code.

import assert from 'node:assert/strict';
import * as path from 'node:path';
import { BlockCache } from './cache.js';
import { ColumnFamily, Version } from './column-family.js';
import { pickCompaction, pickWholeLevel, type CompactionPick, type PickerConfig } from './compaction/picker.js';
import { InlineRunner, WorkerRunner, workerAvailable, type JobRunner } from './compaction/job-runner.js';
import type { CompactionJob, FlushJob } from './compaction/table-job.js';
import { EngineWal, readWalFile, walName, WAL_NAME_PATTERN } from './wal/engine-wal.js';
import { compareKeys, type EntryKind } from './entry.js';
import { corruption, invalidArgument, StorageError, StorageErrorCode } from './errors.js';
import { RealFileSystem, type FileSystem } from './file-system.js';
import * as limits from './limits.js';
import { Manifest, manifestName } from './manifest/manifest.js';
import type { FileMeta, FlushFlag, VersionEdit } from './manifest/version-edit.js';
import { TableCache, tableName } from './table-cache.js';
import type { WriteBatch } from './write-batch.js';
import type { LoggedBatch } from './wal/wal-record.js';
import type { ReadSource, Snapshots } from './reader.js';

export interface RecoveryReport {
  readonly manifestTornTail: { manifest: string; offset: number; detail: string } | undefined;
  readonly walBatchesReplayed: number;
  /** WAL batches beyond walReplayTagMax, dropped at open. */
  readonly walBatchesDropped: number;
  readonly walTornTail: boolean;
}

export interface FamilyStats {
  readonly name: string;
  readonly memtableBytes: number;
  /** Entries in memory, overwrites and tombstones included. */
  readonly memtableEntries: number;
  readonly immutableMemtables: number;
  /** Per level; `entries` counts every version and tombstone the tables hold. */
  readonly levels: { files: number; bytes: number; entries: number }[];
  readonly flag: FlushFlag | undefined;
}

export interface EngineStats {
  readonly lastLsn: number;
  readonly families: FamilyStats[];
  readonly bytesWritten: { user: number; wal: number; flush: number; compaction: number };
  /** (WAL + flush + compaction bytes) / user bytes. */
  readonly writeAmplification: number;
  readonly flushes: number;
  readonly compactions: number;
  readonly trivialMoves: number;
  readonly stallMs: number;
  readonly slowdowns: number;
  /** What the active memtables hold, against the store-wide bound; switches made to keep it. */
  readonly writeBuffer: { usageBytes: number; capacityBytes: number; switches: number };
  readonly blockCache: { hits: number; misses: number; hitRatio: number; usageBytes: number; capacityBytes: number };
  readonly tableCache: { openFiles: number; opens: number };
}

export interface EngineOptions {
  readonly directory: string;
  /** Default: the real file system. Tests pass a SimFileSystem. */
  readonly fileSystem?: FileSystem;
  /** The engine's own WAL (`double` durability). Default off: the caller's log is the WAL. */
  readonly wal?: boolean;
  /**
   * Called before a table holding items of tagged batches up to `tag` is installed; the flush
   * waits for it. This is how the caller keeps the write-ahead invariant for its own log.
   */
  readonly flushBarrier?: (tag: number) => Promise<void>;
  /**
   * With the WAL: at open, a WAL batch tagged above this, and every batch after it, is dropped
   * rather than replayed. The WAL syncs on its own schedule, so after a crash it may hold
   * batches the caller's log lost (its later records were never synced); the engine must not
   * keep what that log does not. Their items never reached a table (the flush barrier).
   */
  readonly walReplayTagMax?: number;
  /** Called once when background work fails and the engine stops taking writes. */
  readonly onBackgroundError?: (error: StorageError) => void;
  readonly memtableSizeBytes?: number;
  /** Bytes all active memtables together may hold before the largest is switched for flush. */
  readonly writeBufferBytes?: number;
  readonly blockSizeBytes?: number;
  readonly tableSizeBytesTarget?: number;
  readonly blockCacheSizeBytes?: number;
  readonly tableCacheFiles?: number;
  readonly level1SizeBytes?: number;
  readonly l0CompactionTriggerFiles?: number;
  readonly l0SlowdownTriggerFiles?: number;
  readonly l0StopTriggerFiles?: number;
  readonly walSegmentSizeBytes?: number;
  readonly manifestSizeBytesMax?: number;
  /** Default true. Tests turn it off to compact only when they ask. */
  readonly autoCompaction?: boolean;
  /**
   * Run flush and compaction table building in a worker thread. Default: on with the real file
   * system (given or not) when the compiled worker is present; any other file system runs inline.
   */
  readonly backgroundThread?: boolean;
}

export interface WriteOptions {
  /** Opaque to the engine; the document layer passes its TSN. Recorded in flush flags. */
  readonly tag?: number;
}

export interface ApplyOptions extends WriteOptions {
  /** Recovery: apply only the items this returns true for; each keeps LSN lsnFirst + index. */
  readonly include?: (family: string, lsn: number) => boolean;
}

interface PendingWrite {
  readonly batch: WriteBatch;
  /** Per item of the batch, its family (resolved once per distinct name). */
  readonly families: ColumnFamily[];
  readonly sizeBytes: number;
  readonly tag: number | undefined;
  readonly include: ApplyOptions['include'];
  lsnFirst: number;
  readonly fixedLsn: boolean;
  readonly resolve: (lsnFirst: number) => void;
  readonly reject: (error: unknown) => void;
}

interface TaggedBatch {
  readonly tag: number;
  readonly lsnFirst: number;
  readonly lsnLast: number;
}

type Settings = Required<Omit<EngineOptions, 'fileSystem' | 'flushBarrier' | 'onBackgroundError' | 'backgroundThread' | 'walReplayTagMax'>>;

const GROUP_WRITES_MAX = 1024;
/** A group stops growing past this many bytes, so one room check never admits much more. */
const GROUP_BYTES_MAX = 1024 * 1024;

/** A table job without what the engine fills in. */
type JobRequest = Omit<FlushJob, 'fileNumbers' | 'directory' | 'blockSizeBytes'> | Omit<CompactionJob, 'fileNumbers' | 'directory' | 'blockSizeBytes'>;

/** The options with their defaults; INVALID_ARGUMENT when they contradict each other. */
export function settingsOf(options: EngineOptions): Settings {
  const settings = defaultsOf(options);
  const positive = ['memtableSizeBytes', 'writeBufferBytes', 'blockSizeBytes', 'tableSizeBytesTarget', 'tableCacheFiles', 'level1SizeBytes', 'l0CompactionTriggerFiles', 'walSegmentSizeBytes', 'manifestSizeBytesMax'] as const;
  for (const name of positive) if (!(settings[name] > 0)) throw invalidArgument(`${name} must be positive, got ${settings[name]}`);
  if (!(settings.l0CompactionTriggerFiles <= settings.l0SlowdownTriggerFiles && settings.l0SlowdownTriggerFiles <= settings.l0StopTriggerFiles)) {
    throw invalidArgument('L0 triggers must satisfy compaction <= slowdown <= stop');
  }
  return settings;
}

function defaultsOf(options: EngineOptions): Settings {
  return {
    directory: options.directory,
    wal: options.wal ?? false,
    memtableSizeBytes: options.memtableSizeBytes ?? limits.MEMTABLE_SIZE_BYTES_DEFAULT,
    writeBufferBytes: options.writeBufferBytes ?? limits.WRITE_BUFFER_BYTES_DEFAULT,
    blockSizeBytes: options.blockSizeBytes ?? limits.BLOCK_SIZE_BYTES_DEFAULT,
    tableSizeBytesTarget: options.tableSizeBytesTarget ?? limits.TABLE_SIZE_BYTES_TARGET,
    blockCacheSizeBytes: options.blockCacheSizeBytes ?? limits.BLOCK_CACHE_SIZE_BYTES_DEFAULT,
    tableCacheFiles: options.tableCacheFiles ?? limits.TABLE_CACHE_FILES_DEFAULT,
    level1SizeBytes: options.level1SizeBytes ?? limits.LEVEL1_SIZE_BYTES,
    l0CompactionTriggerFiles: options.l0CompactionTriggerFiles ?? limits.L0_COMPACTION_TRIGGER_FILES,
    l0SlowdownTriggerFiles: options.l0SlowdownTriggerFiles ?? limits.L0_SLOWDOWN_TRIGGER_FILES,
    l0StopTriggerFiles: options.l0StopTriggerFiles ?? limits.L0_STOP_TRIGGER_FILES,
    walSegmentSizeBytes: options.walSegmentSizeBytes ?? limits.WAL_SEGMENT_SIZE_BYTES,
    manifestSizeBytesMax: options.manifestSizeBytesMax ?? limits.MANIFEST_SIZE_BYTES_MAX,
    autoCompaction: options.autoCompaction ?? true,
  };
}

/**
 * Stands for a family dropped before recovery replays a batch that wrote to it. It is marked
 * dropped, so its items are skipped, and its id is never a real one, so a WAL replay skips them too.
 */
const GONE = ((): ColumnFamily => {
  const id = Number.MAX_SAFE_INTEGER;
  const family = new ColumnFamily(id, '', { id, name: '', levels: [], flag: undefined, persistedLsn: 0 });
  family.dropped = true;
  return family;
})();

/** Numbers of files in the directory named like ours, for the orphan floor. */
function fileNumberOf(name: string): number | undefined {
  const match = /^(?:MANIFEST-)?(\d+)(?:\.(?:sst|wal|dbtmp))?$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

export class EngineCore implements ReadSource {
  private readonly families = new Map<string, ColumnFamily>();
  private readonly familiesById = new Map<number, ColumnFamily>();
  readonly blockCache: BlockCache;
  readonly tables: TableCache;
  private readonly runner: JobRunner;
  private readonly settings: Settings;
  private readonly picker: PickerConfig;
  private wal: EngineWal | undefined;
  /** The last LSN assigned. */
  private lastLsn = 0;
  /** The last LSN whose batch is wholly applied: what new reads see. */
  private visible = 0;
  private lastTagged: TaggedBatch | undefined;
  private walBatchesReplayed = 0;
  /** WAL batches dropped at open for being beyond walReplayTagMax. */
  private walBatchesDropped = 0;
  private walTornTail = false;
  private readonly queue: PendingWrite[] = [];
  private draining: Promise<void> | undefined;
  private failure: StorageError | undefined;
  private closed = false;
  private flushing: ColumnFamily | undefined;
  private compacting: ColumnFamily | undefined;
  private waiters: (() => void)[] = [];
  private readonly liveVersions = new Set<Version>();
  private readonly pendingDeletes = new Set<number>();
  private readonly pendingOutputs = new Set<number>();
  private deleting: Promise<void> = Promise.resolve();
  private readonly counters = {
    bytesUser: 0, bytesWal: 0, bytesFlush: 0, bytesCompaction: 0,
    flushes: 0, compactions: 0, trivialMoves: 0, stallMs: 0, slowdowns: 0, writeBufferSwitches: 0,
  };
  /**
   * Families whose levels changed since the picker last found nothing to compact in them: only
   * they can need a compaction (picking depends on a family's levels alone), so background
   * scheduling looks at these, not at every family (a store may hold thousands).
   */
  private readonly compactionCandidates = new Set<ColumnFamily>();
  /** Families with immutable memtables waiting for flush. */
  private readonly flushCandidates = new Set<ColumnFamily>();
  /** Families with at least l0CompactionTriggerFiles tables in L0: only they can slow or stop writes. */
  private readonly l0Busy = new Set<ColumnFamily>();
  /** The sum of every family's memCharged: what the active memtables hold, against writeBufferBytes. */
  private activeMemtableBytes = 0;

  private constructor(
    private readonly fs: FileSystem,
    private readonly options: EngineOptions,
    private readonly manifest: Manifest,
    private readonly snapshots: Snapshots,
    /** Releases the directory's lock; close calls it last. */
    private readonly unlock: () => Promise<void>,
  ) {
    this.settings = settingsOf(options);
    this.picker = { l0TriggerFiles: this.settings.l0CompactionTriggerFiles, level1SizeBytes: this.settings.level1SizeBytes };
    this.blockCache = new BlockCache(this.settings.blockCacheSizeBytes);
    this.tables = new TableCache(fs, options.directory, this.blockCache, this.settings.tableCacheFiles);
    // The worker opens files itself, so only the real file system can go there. (The test was
    // `fileSystem === undefined`, so a store, which always passes its file system, built every
    // table on the event loop.)
    const threaded = options.backgroundThread ?? (fs instanceof RealFileSystem && workerAvailable());
    this.runner = threaded ? new WorkerRunner() : new InlineRunner(fs);
  }

  private get directory(): string {
    return this.settings.directory;
  }

  /** Reads with no snapshot see every batch up to here. */
  get visibleLsn(): number {
    return this.visible;
  }

  // ---- open ----

  /**
   * Opens the engine in a locked directory: the manifest, the families it lists, the WAL's
   * batches, then files nothing references are deleted. On failure every file it opened is
   * closed again; `unlock` stays the caller's then.
   */
  static async open(fs: FileSystem, options: EngineOptions, snapshots: Snapshots, unlock: () => Promise<void>): Promise<EngineCore> {
    const names = await fs.list(options.directory);
    let floor = 1;
    for (const name of names) floor = Math.max(floor, (fileNumberOf(name) ?? 0) + 1);
    const manifest = await Manifest.open(fs, options.directory, floor, options.manifestSizeBytesMax);
    const core = new EngineCore(fs, options, manifest, snapshots, unlock);
    try {
      await core.recover(names);
      return core;
    } catch (error) {
      await core.closeFiles().catch(() => undefined);
      throw error;
    }
  }

  private async recover(names: string[]): Promise<void> {
    for (const state of this.manifest.state.families.values()) this.addFamily(new ColumnFamily(state.id, state.name, state));
    this.lastLsn = this.manifest.state.lastLsn;
    for (const family of this.families.values()) this.lastLsn = Math.max(this.lastLsn, family.flag?.lsnLast ?? 0);
    this.visible = this.lastLsn;
    await this.deleteOrphans(names); // Before replay: its flushes and compactions change the directory.
    await this.replayWalFiles(names);
    if (this.settings.wal) {
      this.wal = new EngineWal(this.fs, this.directory, this.settings.walSegmentSizeBytes);
      await this.wal.start(this.manifest.newFileNumber());
    }
    this.scheduleBackground();
  }

  /**
   * Replays engine WAL files left by a run with the WAL on, then flushes what they held so
   * the files can go: whatever the mode of this run, nothing a WAL made durable is dropped.
   */
  private async replayWalFiles(names: string[]): Promise<void> {
    const numbers = names.map((n) => WAL_NAME_PATTERN.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
    let tornIn: number | undefined;
    const tagMax = this.options.walReplayTagMax ?? Number.POSITIVE_INFINITY;
    for (const number of numbers) {
      const { batches, torn } = await readWalFile(this.fs, this.directory, number);
      if (tornIn !== undefined && batches.length > 0) throw corruption(`engine WAL ${tornIn} is torn but a later WAL ${number} has records`);
      if (torn) tornIn = number;
      this.walTornTail ||= torn;
      for (const batch of batches) {
        // Tags grow with the WAL: once one is beyond what the caller's log holds, so is the rest.
        if (this.walBatchesDropped > 0 || (batch.tag !== undefined && batch.tag > tagMax)) {
          this.walBatchesDropped++;
          continue;
        }
        this.walBatchesReplayed++;
        this.replayBatch(batch);
      }
    }
    if (numbers.length === 0) return;
    for (const family of this.families.values()) if (!family.mem.empty) this.switchMemtable(family);
    await this.waitForFlushes([...this.families.values()]);
    for (const number of numbers) await this.fs.unlink(path.join(this.directory, walName(number)));
    await this.fs.syncDirectory(this.directory);
  }

  private replayBatch(batch: LoggedBatch): void {
    batch.items.forEach((item, index) => {
      const lsn = batch.lsnFirst + index;
      const family = this.familiesById.get(item.familyId);
      if (!family || lsn <= family.persistedLsn) return;
      this.applyItem(family, item.kind, item.key, item.value, lsn, batch.tag, batch.lsnFirst);
    });
    const lsnLast = batch.lsnFirst + batch.items.length - 1;
    if (batch.tag !== undefined) this.noteTagged({ tag: batch.tag, lsnFirst: batch.lsnFirst, lsnLast });
    this.lastLsn = Math.max(this.lastLsn, lsnLast);
    this.visible = this.lastLsn;
  }

  private async deleteOrphans(names: string[]): Promise<void> {
    const live = this.manifest.state.liveTableNumbers();
    const current = manifestName(this.manifest.manifestNumber);
    let deleted = false;
    for (const name of names) {
      const number = fileNumberOf(name);
      const orphanTable = name.endsWith('.sst') && number !== undefined && !live.has(number);
      const stale = name.endsWith('.dbtmp') || (name.startsWith('MANIFEST-') && name !== current);
      if (!orphanTable && !stale) continue;
      await this.fs.unlink(path.join(this.directory, name));
      deleted = true;
    }
    if (deleted) await this.fs.syncDirectory(this.directory);
  }

  // ---- families ----

  private addFamily(family: ColumnFamily): void {
    this.families.set(family.name, family);
    this.familiesById.set(family.id, family);
    family.current.refs = 1;
    this.liveVersions.add(family.current);
    this.noteLevels(family);
  }

  /** A family's levels changed: it may need a compaction, and may hold writes back. */
  private noteLevels(family: ColumnFamily): void {
    this.compactionCandidates.add(family);
    if (family.levels[0]!.length >= this.settings.l0CompactionTriggerFiles) this.l0Busy.add(family);
    else this.l0Busy.delete(family);
  }

  family(name: string): ColumnFamily {
    const family = this.families.get(name);
    if (!family) throw new StorageError(StorageErrorCode.FAMILY_NOT_FOUND, `no column family named ${JSON.stringify(name)}`);
    return family;
  }

  listFamilies(): string[] {
    return [...this.families.keys()].sort();
  }

  /**
   * Creates an empty family. `flag`, if given, is installed with it in the same manifest edit:
   * the caller's log position the new family starts from, so that recovery never looks for its
   * items before that point. REQUIRES: the caller's log is durable through `flag.tag`.
   */
  async createFamily(name: string, options: { flag?: FlushFlag } = {}): Promise<void> {
    this.checkWritable();
    const bytes = Buffer.byteLength(name, 'utf8');
    if (bytes === 0 || bytes > limits.FAMILY_NAME_BYTES_MAX) throw invalidArgument(`column family name must be 1..${limits.FAMILY_NAME_BYTES_MAX} bytes`);
    if (this.families.has(name)) throw new StorageError(StorageErrorCode.FAMILY_EXISTS, `column family ${JSON.stringify(name)} exists`);
    if (this.families.size >= limits.FAMILIES_MAX) throw invalidArgument(`at most ${limits.FAMILIES_MAX} column families`);
    const id = this.manifest.state.nextFamilyId;
    const flag = options.flag;
    if (flag) assert(flag.lsnFirst >= 1 && flag.lsnLast >= flag.lsnFirst - 1, `bad initial flag ${JSON.stringify(flag)}`);
    await this.logEdit({
      addedFamilies: [{ id, name }],
      nextFamilyId: id + 1,
      ...(flag ? { flags: [{ familyId: id, flag }], persistedLsns: [{ familyId: id, lsn: flag.lsnLast }] } : {}),
    });
    this.addFamily(new ColumnFamily(id, name, this.manifest.state.family(id)));
  }

  async dropFamily(name: string): Promise<void> {
    this.checkWritable();
    const family = this.family(name);
    family.dropped = true;
    this.families.delete(name);
    this.activeMemtableBytes -= family.memCharged; // Its memtables go with it.
    family.memCharged = 0;
    this.compactionCandidates.delete(family);
    this.flushCandidates.delete(family);
    this.l0Busy.delete(family);
    while (this.flushing === family || this.compacting === family) await this.progress();
    await this.logEdit({ droppedFamilies: [family.id] });
    this.familiesById.delete(family.id);
    for (const files of family.current.levels) for (const file of files) this.pendingDeletes.add(file.number);
    this.releaseVersion(family.current);
    await this.deleteObsoleteFiles();
  }

  // ---- writes ----

  /** Applies `batch` atomically at the next LSNs; resolves with the first one. */
  write(batch: WriteBatch, options: WriteOptions = {}): Promise<number> {
    return this.enqueue(batch, options, undefined);
  }

  /**
   * Recovery: applies `batch` at `lsnFirst` (item i at lsnFirst + i), only the items `include`
   * accepts. REQUIRES: called in LSN order, before new writes.
   */
  applyAt(batch: WriteBatch, lsnFirst: number, options: ApplyOptions = {}): Promise<number> {
    if (!Number.isSafeInteger(lsnFirst) || lsnFirst < 1) return Promise.reject(invalidArgument(`bad LSN ${lsnFirst}`));
    return this.enqueue(batch, options, lsnFirst);
  }

  private enqueue(batch: WriteBatch, options: ApplyOptions, fixedLsn: number | undefined): Promise<number> {
    try {
      this.checkWritable();
      if (options.tag !== undefined && (!Number.isSafeInteger(options.tag) || options.tag < 0)) throw invalidArgument(`bad tag ${options.tag}`);
      if (batch.length === 0) throw invalidArgument('an empty batch');
      const families = this.resolveFamilies(batch, fixedLsn !== undefined);
      return new Promise((resolve, reject) => {
        this.queue.push({ batch, families, sizeBytes: batch.sizeBytes, tag: options.tag, include: options.include, lsnFirst: fixedLsn ?? 0, fixedLsn: fixedLsn !== undefined, resolve, reject });
        this.kick();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Each item's family. Recovery replays batches written before a family was dropped: those items go to GONE and are skipped. */
  private resolveFamilies(batch: WriteBatch, replaying: boolean): ColumnFamily[] {
    const families: ColumnFamily[] = [];
    let name: string | undefined;
    let family = GONE;
    for (let i = 0; i < batch.length; i++) {
      const wanted = batch.families[i]!;
      if (wanted !== name) {
        name = wanted;
        family = replaying ? this.families.get(name) ?? GONE : this.family(name);
      }
      families.push(family);
    }
    return families;
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      // A write queued after the loop saw an empty queue but before this ran.
      if (this.queue.length > 0) this.kick();
    });
  }

  /** The single writer loop: groups queued writes, logs them once, applies them in order. */
  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.takeGroup();
      try {
        await this.makeRoom();
        this.assignLsns(group);
        if (this.wal) await this.logToWal(group);
        for (const write of group) this.applyWrite(write);
        this.visible = this.lastLsn;
      } catch (error) {
        for (const write of group) write.reject(error);
        continue;
      }
      for (const write of group) write.resolve(write.lsnFirst);
    }
  }

  /** The next writes to log and apply together: at least one, bounded in count and bytes. */
  private takeGroup(): PendingWrite[] {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < GROUP_WRITES_MAX && (count === 0 || bytes < GROUP_BYTES_MAX)) bytes += this.queue[count++]!.sizeBytes;
    return this.queue.splice(0, count);
  }

  private assignLsns(group: PendingWrite[]): void {
    for (const write of group) {
      if (!write.fixedLsn) write.lsnFirst = this.lastLsn + 1;
      this.lastLsn = Math.max(this.lastLsn, write.lsnFirst + write.batch.length - 1);
    }
  }

  private async logToWal(group: PendingWrite[]): Promise<void> {
    const batches: LoggedBatch[] = group.map((write) => ({
      lsnFirst: write.lsnFirst,
      tag: write.tag,
      items: write.families.map((family, i) => ({ familyId: family.id, kind: write.batch.kinds[i] as EntryKind, key: write.batch.key(i), value: write.batch.value(i) })),
    }));
    const wal = this.wal!;
    try {
      this.counters.bytesWal += await wal.append(batches);
      if (wal.needsRotation) await wal.start(this.manifest.newFileNumber());
    } catch (error) {
      this.fail(error);
      throw error; // This write sees the cause (NO_SPACE, IO); later ones see READ_ONLY.
    }
  }

  private applyWrite(write: PendingWrite): void {
    const { batch, families, lsnFirst, tag, include } = write;
    const { keyArena, valueSources, kinds, keyStarts, keyLengths, valueStarts, valueLengths } = batch;
    for (let index = 0; index < batch.length; index++) {
      const family = families[index]!;
      const lsn = lsnFirst + index;
      if (family.dropped || (include && !include(family.name, lsn))) continue;
      family.mem.addBytes(keyArena, keyStarts[index]!, keyLengths[index]!, valueSources[index]!, valueStarts[index]!, valueLengths[index]!, lsn, kinds[index] as EntryKind);
      this.noteApplied(family, lsn, tag, lsnFirst);
      this.counters.bytesUser += keyLengths[index]! + valueLengths[index]!;
    }
    if (tag !== undefined) this.noteTagged({ tag, lsnFirst, lsnLast: lsnFirst + batch.length - 1 });
  }

  private applyItem(family: ColumnFamily, kind: EntryKind, key: Buffer, value: Buffer, lsn: number, tag: number | undefined, lsnFirst: number): void {
    family.mem.add({ key, lsn, kind, value });
    this.noteApplied(family, lsn, tag, lsnFirst);
  }

  private noteApplied(family: ColumnFamily, lsn: number, tag: number | undefined, lsnFirst: number): void {
    if (tag !== undefined) family.mem.noteTagged(tag, lsnFirst, lsn);
    const size = family.mem.sizeBytes;
    this.activeMemtableBytes += size - family.memCharged;
    family.memCharged = size;
    // A batch larger than a memtable spans two: visibility is by LSN, so this is safe.
    if (size >= this.settings.memtableSizeBytes) this.switchMemtable(family);
    else if (this.activeMemtableBytes > this.settings.writeBufferBytes) this.switchLargest();
  }

  /** Over the store-wide write buffer: the family holding the most goes to flush. */
  private switchLargest(): void {
    let largest: ColumnFamily | undefined;
    for (const family of this.families.values()) if (!largest || family.memCharged > largest.memCharged) largest = family;
    if (!largest || largest.memCharged === 0) return;
    this.counters.writeBufferSwitches++;
    this.switchMemtable(largest);
  }

  private noteTagged(batch: TaggedBatch): void {
    if (!this.lastTagged || batch.tag >= this.lastTagged.tag) this.lastTagged = batch;
  }

  /** Back-pressure: slow writes while L0 piles up, stop them while flushes cannot keep up. */
  private async makeRoom(): Promise<void> {
    let slowed = false;
    for (;;) {
      this.checkWritable();
      let immutables = 0;
      let l0Files = 0;
      for (const family of this.flushCandidates) immutables = Math.max(immutables, family.imm.length);
      for (const family of this.l0Busy) l0Files = Math.max(l0Files, family.levels[0]!.length);
      const stop = immutables >= limits.IMMUTABLE_MEMTABLES_MAX || (this.settings.autoCompaction && l0Files >= this.settings.l0StopTriggerFiles);
      if (stop) {
        const started = Date.now();
        await this.progress();
        this.counters.stallMs += Date.now() - started;
        continue;
      }
      if (slowed || !this.settings.autoCompaction || l0Files < this.settings.l0SlowdownTriggerFiles) return;
      slowed = true;
      this.counters.slowdowns++;
      await new Promise((resolve) => setTimeout(resolve, limits.WRITE_SLOWDOWN_DELAY_MS));
    }
  }

  private checkWritable(): void {
    if (this.closed) throw new StorageError(StorageErrorCode.CLOSED, 'the engine is closed');
    if (this.failure) throw this.failure;
  }

  /** Enters the failed state: every later write is refused until the engine is reopened. */
  private fail(error: unknown): StorageError {
    if (!this.failure) {
      const detail = error instanceof Error ? error.message : String(error);
      this.failure = new StorageError(StorageErrorCode.READ_ONLY, `the engine refuses writes until reopened after: ${detail}`, { cause: error });
      this.options.onBackgroundError?.(this.failure);
      this.notify();
    }
    return this.failure;
  }

  // ---- background work ----

  private switchMemtable(family: ColumnFamily): void {
    this.activeMemtableBytes -= family.memCharged;
    family.memCharged = 0;
    family.imm.push(family.mem);
    this.flushCandidates.add(family);
    family.mem = new (family.mem.constructor as new () => typeof family.mem)();
    this.scheduleBackground();
  }

  /** Resolves at the next completion of background work (or failure). */
  private progress(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  private scheduleBackground(): void {
    if (this.closed || this.failure) return;
    if (!this.flushing) {
      for (const family of this.flushCandidates) if (family.imm.length === 0 || family.dropped) this.flushCandidates.delete(family);
      const family = mostUrgentFlush(this.flushCandidates);
      if (family) this.runJob('flushing', family, () => this.flushOldest(family));
    }
    if (!this.compacting && this.settings.autoCompaction) {
      for (const family of this.compactionCandidates) {
        const pick = family.dropped ? undefined : pickCompaction(family.levels, family.compactPointers, this.picker);
        if (pick) return this.runJob('compacting', family, () => this.compact(family, pick));
        this.compactionCandidates.delete(family); // Nothing to do until its levels change.
      }
    }
  }

  private runJob(slot: 'flushing' | 'compacting', family: ColumnFamily, job: () => Promise<void>): void {
    this[slot] = family;
    job()
      .catch((error) => this.fail(error))
      .finally(() => {
        this[slot] = undefined;
        this.notify();
        this.scheduleBackground();
      });
  }

  /** Runs a table job with `count` output numbers; they stay reserved until it is installed. */
  private async buildTables(job: JobRequest, count: number): Promise<FileMeta[]> {
    const fileNumbers = Array.from({ length: count }, () => this.manifest.newFileNumber());
    for (const number of fileNumbers) this.pendingOutputs.add(number);
    let files: FileMeta[] = [];
    try {
      files = await this.runner.run({ ...job, fileNumbers, directory: this.directory, blockSizeBytes: this.settings.blockSizeBytes });
      return files;
    } finally {
      const written = new Set(files.map((file) => file.number));
      for (const number of fileNumbers) if (!written.has(number)) this.pendingOutputs.delete(number);
    }
  }

  /** Releases the numbers a job reserved: its outputs are now in a version or deleted. */
  private releaseOutputs(job: readonly number[]): void {
    for (const number of job) this.pendingOutputs.delete(number);
  }

  /**
   * Flushes the family's oldest immutable memtable to one L0 table. The table is synced, the
   * caller's barrier is awaited (write-ahead invariant), then one manifest edit installs the
   * table together with the flush flag.
   */
  private async flushOldest(family: ColumnFamily): Promise<void> {
    const memtable = family.imm[0]!;
    const flag = memtable.flag ? { ...memtable.flag } : undefined;
    const barrier = flag && this.options.flushBarrier ? this.options.flushBarrier(flag.tag) : undefined;
    barrier?.catch(() => undefined); // Awaited below; this only keeps it from being unhandled.
    const files = await this.buildTables({ kind: 'flush', memtable: memtable.image() }, 1);
    await this.fs.syncDirectory(this.directory);
    await barrier;
    if (family.dropped) return this.discardOutputs(files);
    const edit: VersionEdit = {
      addedFiles: files.map((file) => ({ familyId: family.id, level: 0, file })),
      flags: flag && (!family.flag || flag.tag >= family.flag.tag) ? [{ familyId: family.id, flag }] : [],
      persistedLsns: [{ familyId: family.id, lsn: memtable.lsnMax }],
    };
    await this.logEdit(edit);
    this.releaseOutputs(files.map((file) => file.number));
    family.imm.shift();
    this.installVersion(family);
    this.counters.flushes++;
    for (const file of files) this.counters.bytesFlush += file.sizeBytes;
    await this.wal?.deleteObsolete(this.lsnUnpersistedMin());
  }

  /**
   * The smallest LSN not yet in any table. NB: from visibleLsn, not lastLsn: a group that is
   * logged but not yet applied is in no memtable, and its WAL file must not be deleted.
   */
  private lsnUnpersistedMin(): number {
    let min = this.visible + 1;
    for (const family of this.families.values()) min = Math.min(min, family.lsnUnpersistedMin);
    return min;
  }

  private async discardOutputs(files: FileMeta[]): Promise<void> {
    for (const file of files) {
      this.pendingOutputs.delete(file.number);
      this.pendingDeletes.add(file.number);
    }
    await this.deleteObsoleteFiles();
  }

  private async compact(family: ColumnFamily, pick: CompactionPick): Promise<void> {
    const version = this.acquireVersion(family);
    try {
      if (movable(pick)) return await this.trivialMove(family, pick);
      const outputLevel = pick.level + 1;
      const inputBytes = [...pick.inputs, ...pick.nextInputs].reduce((sum, file) => sum + file.sizeBytes, 0);
      const files = await this.buildTables({
        kind: 'compaction',
        targetSizeBytes: this.settings.tableSizeBytesTarget,
        overlappingInputs: pick.level === 0 ? pick.inputs : [],
        sortedInputs: pick.level === 0 ? [pick.nextInputs] : [pick.inputs, pick.nextInputs],
        smallestSnapshotLsn: this.smallestSnapshotLsn(),
        deeperRanges: version.levels.slice(outputLevel + 1).flat(),
      }, Math.ceil(inputBytes / this.settings.tableSizeBytesTarget) + 4);
      await this.fs.syncDirectory(this.directory);
      if (family.dropped) return await this.discardOutputs(files);
      await this.installCompaction(family, pick, files);
    } finally {
      this.releaseVersion(version);
    }
  }

  private async installCompaction(family: ColumnFamily, pick: CompactionPick, files: FileMeta[]): Promise<void> {
    const outputLevel = pick.level + 1;
    await this.logEdit({
      deletedFiles: [
        ...pick.inputs.map((file) => ({ familyId: family.id, level: pick.level, number: file.number })),
        ...pick.nextInputs.map((file) => ({ familyId: family.id, level: outputLevel, number: file.number })),
      ],
      addedFiles: files.map((file) => ({ familyId: family.id, level: outputLevel, file })),
    });
    this.releaseOutputs(files.map((file) => file.number));
    for (const file of [...pick.inputs, ...pick.nextInputs]) this.pendingDeletes.add(file.number);
    family.compactPointers[pick.level] = pick.inputs[pick.inputs.length - 1]!.largestKey;
    this.installVersion(family);
    this.counters.compactions++;
    for (const file of files) this.counters.bytesCompaction += file.sizeBytes;
  }

  /** Moves the inputs one level down as they are: one manifest edit, no table rewritten. */
  private async trivialMove(family: ColumnFamily, pick: CompactionPick): Promise<void> {
    await this.logEdit({
      deletedFiles: pick.inputs.map((file) => ({ familyId: family.id, level: pick.level, number: file.number })),
      addedFiles: pick.inputs.map((file) => ({ familyId: family.id, level: pick.level + 1, file })),
    });
    family.compactPointers[pick.level] = pick.inputs[pick.inputs.length - 1]!.largestKey;
    this.installVersion(family);
    this.counters.trivialMoves++;
  }

  private smallestSnapshotLsn(): number {
    return this.snapshots.oldest(this.visible);
  }

  private async logEdit(edit: VersionEdit): Promise<void> {
    try {
      await this.manifest.log(edit);
    } catch (error) {
      throw this.fail(error);
    }
  }

  // ---- versions and obsolete files ----

  /**
   * The engine's durable state now, as the snapshot edit a fresh manifest would start with, and
   * the tables it names, kept from deletion until `release` (a compaction or drop meanwhile
   * leaves them in place). The state is the manifest's, which applies an edit only once it is
   * synced, so every flag in it names a tag the flush barrier has seen durable. A checkpoint
   * copies exactly this (storage/checkpoint.ts).
   */
  pinState(): { edit: VersionEdit; tables: FileMeta[]; directory: string; release: () => void } {
    this.checkWritable();
    const edit = this.manifest.state.snapshotEdit();
    const tables = (edit.addedFiles ?? []).map((added) => added.file);
    const version = new Version([tables]);
    version.refs = 1;
    this.liveVersions.add(version);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      // Closed meanwhile: nothing is deleted now; the next open deletes what no version names.
      if (this.closed) this.liveVersions.delete(version);
      else this.releaseVersion(version);
    };
    return { edit, tables, directory: this.directory, release };
  }

  acquireVersion(family: ColumnFamily): Version {
    family.current.refs++;
    return family.current;
  }

  releaseVersion(version: Version): void {
    assert(version.refs > 0);
    if (--version.refs > 0) return;
    this.liveVersions.delete(version);
    if (this.pendingDeletes.size > 0) void this.deleteObsoleteFiles().catch((error) => this.fail(error));
  }

  private installVersion(family: ColumnFamily): void {
    const previous = family.current;
    family.current = new Version(family.levels);
    family.current.refs = 1;
    this.liveVersions.add(family.current);
    this.releaseVersion(previous);
    this.noteLevels(family);
  }

  /** Deletes tables no live version references; deletions run one after another. */
  private deleteObsoleteFiles(): Promise<void> {
    const run = this.deleting.then(() => this.deleteObsoleteNow());
    this.deleting = run.catch(() => undefined);
    return run;
  }

  private async deleteObsoleteNow(): Promise<void> {
    const live = new Set<number>();
    for (const version of this.liveVersions) for (const files of version.levels) for (const file of files) live.add(file.number);
    const doomed = [...this.pendingDeletes].filter((number) => !live.has(number) && !this.pendingOutputs.has(number));
    if (doomed.length === 0) return;
    for (const number of doomed) this.pendingDeletes.delete(number);
    for (const number of doomed) {
      this.tables.evict(number);
      await this.fs.unlink(path.join(this.directory, tableName(number)));
    }
    await this.fs.syncDirectory(this.directory);
  }

  // ---- flush and compaction on request ----

  /**
   * Flushes the named families (all by default) and waits. A family with nothing in memory
   * instead records a flag advance to the last tagged batch, with no table, so an idle family
   * never holds the caller's log back.
   */
  async flush(names?: string[]): Promise<void> {
    this.checkWritable();
    const families = (names ?? this.listFamilies()).map((name) => this.family(name));
    const hadData = families.filter((family) => !family.mem.empty || family.imm.length > 0);
    for (const family of hadData) if (!family.mem.empty) this.switchMemtable(family);
    await this.waitForFlushes(hadData);
    // Every family now empty, flushed here or idle, is persisted through the last tagged batch.
    // NB: a flushed family's flag names its memtable's last batch, which may be far back (the
    // catalog's last field assignment): left there, it held the next open's replay back to it.
    for (const family of families) await this.advanceIdleFlag(family);
  }

  private async waitForFlushes(families: ColumnFamily[]): Promise<void> {
    while (families.some((family) => family.imm.length > 0 && !family.dropped)) {
      this.checkWritable();
      this.scheduleBackground();
      await this.progress();
    }
    this.checkWritable();
  }

  private async advanceIdleFlag(family: ColumnFamily): Promise<void> {
    const tagged = this.lastTagged;
    if (!tagged || !family.mem.empty || family.imm.length > 0 || family.dropped) return;
    if (family.flag && family.flag.tag >= tagged.tag) return;
    if (this.options.flushBarrier) await this.options.flushBarrier(tagged.tag);
    if (!family.mem.empty || family.imm.length > 0 || family.dropped) return;
    const flag: FlushFlag = { tag: tagged.tag, lsnFirst: tagged.lsnFirst, lsnLast: tagged.lsnLast };
    await this.logEdit({ flags: [{ familyId: family.id, flag }], persistedLsns: [{ familyId: family.id, lsn: tagged.lsnLast }] });
  }

  /** Compacts the named families (all by default) level by level down to the bottom, and waits. */
  async compactAll(names?: string[]): Promise<void> {
    this.checkWritable();
    for (const family of (names ?? this.listFamilies()).map((name) => this.family(name))) {
      for (let level = 0; level < limits.LEVELS - 1; level++) {
        while (this.compacting) await this.progress();
        const pick = pickWholeLevel(family.levels, level);
        if (!pick || family.dropped) continue;
        this.compacting = family;
        try {
          await this.compact(family, pick);
        } catch (error) {
          throw this.fail(error);
        } finally {
          this.compacting = undefined;
          this.notify();
        }
      }
    }
    this.scheduleBackground();
  }

  // ---- what it holds, and close ----

  /** What the last open found and repaired: a dropped torn manifest tail, WAL records replayed. */
  get recoveryReport(): RecoveryReport {
    return { manifestTornTail: this.manifest.recovery.tornTail, walBatchesReplayed: this.walBatchesReplayed, walBatchesDropped: this.walBatchesDropped, walTornTail: this.walTornTail };
  }

  /** The last flush flag made durable for each family (undefined where none yet). */
  flags(): Map<string, FlushFlag | undefined> {
    return new Map([...this.families].map(([name, family]) => [name, family.flag]));
  }

  get lastLsnAssigned(): number {
    return this.lastLsn;
  }

  /** One family's figures (what stats() lists for each), or undefined if there is no such family. */
  familyStats(name: string): FamilyStats | undefined {
    const family = this.families.get(name);
    return family && familyStats(family);
  }

  stats(): EngineStats {
    const c = this.counters;
    const cache = this.blockCache.stats;
    const lookups = cache.hits + cache.misses;
    return {
      lastLsn: this.lastLsn,
      families: [...this.families.values()].map(familyStats),
      bytesWritten: { user: c.bytesUser, wal: c.bytesWal, flush: c.bytesFlush, compaction: c.bytesCompaction },
      writeAmplification: c.bytesUser === 0 ? 0 : (c.bytesWal + c.bytesFlush + c.bytesCompaction) / c.bytesUser,
      flushes: c.flushes,
      compactions: c.compactions,
      trivialMoves: c.trivialMoves,
      stallMs: c.stallMs,
      slowdowns: c.slowdowns,
      writeBuffer: { usageBytes: this.activeMemtableBytes, capacityBytes: this.settings.writeBufferBytes, switches: c.writeBufferSwitches },
      blockCache: { hits: cache.hits, misses: cache.misses, hitRatio: lookups === 0 ? 0 : cache.hits / lookups, usageBytes: cache.usageBytes, capacityBytes: cache.capacityBytes },
      tableCache: { openFiles: this.tables.openFiles, opens: this.tables.opens },
    };
  }

  checkOpen(): void {
    if (this.closed) this.checkWritable();
  }

  /**
   * Waits for queued writes and background work, then closes every file and releases the
   * directory. Memtables are not flushed: with the WAL off the caller's log holds what they had.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.quiesce();
    this.closed = true;
    try {
      await this.closeFiles();
    } finally {
      await this.unlock();
    }
  }

  /** Waits until queued writes are applied and no background job runs. */
  private async quiesce(): Promise<void> {
    while (this.draining) await this.draining;
    while (this.flushing || this.compacting) await this.progress();
    await this.deleting; // A deletion still running after close would race the next open.
  }

  private async closeFiles(): Promise<void> {
    await this.runner.close();
    await this.wal?.close();
    await this.manifest.close().catch(() => undefined);
    await this.tables.close();
  }
}

function familyStats(family: ColumnFamily): FamilyStats {
  return {
    name: family.name,
    memtableBytes: family.memtableBytes,
    memtableEntries: family.memtableEntries,
    immutableMemtables: family.imm.length,
    levels: family.levels.map((files) => ({
      files: files.length,
      bytes: files.reduce((sum, file) => sum + file.sizeBytes, 0),
      entries: files.reduce((sum, file) => sum + file.entries, 0),
    })),
    flag: family.flag,
  };
}

/**
 * The family whose flush unblocks writers soonest: writes stop while any family holds
 * IMMUTABLE_MEMTABLES_MAX immutables, so the one with the most goes first; among equals, the
 * oldest data (it also holds the binlog's global epoch back). The first family with any, as
 * before, let one busy family (a comment's body) stall writes behind flushes of idle ones.
 */
function mostUrgentFlush(families: Iterable<ColumnFamily>): ColumnFamily | undefined {
  let best: ColumnFamily | undefined;
  for (const family of families) {
    if (family.imm.length === 0) continue;
    if (!best || family.imm.length > best.imm.length || (family.imm.length === best.imm.length && family.imm[0]!.lsnMin < best.imm[0]!.lsnMin)) best = family;
  }
  return best;
}

/**
 * Whether a compaction may move its inputs down without rewriting them: they overlap nothing in
 * the next level and (L0 files may overlap each other) nothing among themselves. A load of
 * ascending keys flushes tables that always pass, so it rewrites (almost) nothing.
 */
function movable(pick: CompactionPick): boolean {
  if (pick.nextInputs.length > 0) return false;
  if (pick.level > 0) return pick.inputs.length === 1;
  const sorted = [...pick.inputs].sort((a, b) => compareKeys(a.smallestKey, b.smallestKey));
  for (let i = 1; i < sorted.length; i++) if (compareKeys(sorted[i - 1]!.largestKey, sorted[i]!.smallestKey) >= 0) return false;
  return true;
}
