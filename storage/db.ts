// The engine's public class: a core (engine.ts: families, the write path, background work,
// recovery) and a reader (reader.ts: point reads, multi-gets, iterators) composed, with the
// snapshots readers hold. Opening locks the directory; closing releases it.

import * as path from 'node:path';
import { EngineCore, settingsOf, type ApplyOptions, type EngineOptions, type EngineStats, type FamilyStats, type RecoveryReport, type WriteOptions } from './engine.js';
import { RealFileSystem } from './file-system.js';
import type { FileMeta, FlushFlag, VersionEdit } from './manifest/version-edit.js';
import { Reader, Snapshots, type EngineIterator, type IteratorOptions, type ReadOptions, type Snapshot } from './reader.js';
import type { BlockCache } from './cache.js';
import type { WriteBatch } from './write-batch.js';

export class Engine {
  private readonly reader: Reader;

  private constructor(
    private readonly core: EngineCore,
    private readonly snapshots: Snapshots,
  ) {
    this.reader = new Reader(core);
  }

  static async open(options: EngineOptions): Promise<Engine> {
    settingsOf(options); // Rejects contradictory options before any file is touched.
    const fs = options.fileSystem ?? new RealFileSystem();
    if (!(await fs.exists(options.directory))) {
      await fs.mkdir(options.directory);
      await fs.syncDirectory(path.dirname(path.resolve(options.directory)));
    }
    const unlock = (await fs.lockDirectory?.(options.directory)) ?? (async () => undefined);
    const snapshots = new Snapshots();
    try {
      return new Engine(await EngineCore.open(fs, options, snapshots, unlock), snapshots);
    } catch (error) {
      await unlock();
      throw error;
    }
  }

  // ---- families and writes (the core) ----

  listFamilies(): string[] {
    return this.core.listFamilies();
  }

  /** See EngineCore.createFamily: `flag` is installed with the family in one manifest edit. */
  createFamily(name: string, options: { flag?: FlushFlag } = {}): Promise<void> {
    return this.core.createFamily(name, options);
  }

  dropFamily(name: string): Promise<void> {
    return this.core.dropFamily(name);
  }

  /** Applies the batch at the next LSNs; resolves with the first. */
  write(batch: WriteBatch, options: WriteOptions = {}): Promise<number> {
    return this.core.write(batch, options);
  }

  /** Applies the batch at the LSNs the caller's log gives it (recovery); resolves with the first. */
  applyAt(batch: WriteBatch, lsnFirst: number, options: ApplyOptions = {}): Promise<number> {
    return this.core.applyAt(batch, lsnFirst, options);
  }

  flush(names?: string[]): Promise<void> {
    return this.core.flush(names);
  }

  compactAll(names?: string[]): Promise<void> {
    return this.core.compactAll(names);
  }

  /** The tables and manifest state of this moment, kept on disk until released (checkpoints). */
  pinState(): { edit: VersionEdit; tables: FileMeta[]; directory: string; release: () => void } {
    return this.core.pinState();
  }

  // ---- reads (the reader) ----

  snapshot(): Snapshot {
    return this.snapshots.take(this.core.visibleLsn);
  }

  get(family: string, key: Buffer, options: ReadOptions = {}): Promise<Buffer | undefined> {
    return this.reader.get(family, key, options);
  }

  /** Several keys, possibly in several families, all at one snapshot. */
  getMany(requests: readonly { family: string; key: Buffer }[], options: ReadOptions = {}): Promise<(Buffer | undefined)[]> {
    return this.reader.getMany(requests, options);
  }

  /** Live entries of one family in key order (or reverse), within bounds, at a snapshot. */
  iterator(family: string, options: IteratorOptions = {}): EngineIterator {
    return this.reader.iterator(family, options);
  }

  // ---- what it holds, and close ----

  get blockCache(): BlockCache {
    return this.core.blockCache;
  }

  get recoveryReport(): RecoveryReport {
    return this.core.recoveryReport;
  }

  flags(): Map<string, FlushFlag | undefined> {
    return this.core.flags();
  }

  get lastLsnAssigned(): number {
    return this.core.lastLsnAssigned;
  }

  familyStats(name: string): FamilyStats | undefined {
    return this.core.familyStats(name);
  }

  stats(): EngineStats {
    return this.core.stats();
  }

  /** Waits for queued writes and background work, closes every file, releases the directory. */
  close(): Promise<void> {
    return this.core.close();
  }
}
