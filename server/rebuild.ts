// Rebuilding a running standby in place: one that can no longer follow its primary's log (the
// primary purged what it needs, or its history diverged: DOCKET_ERR_CHECKPOINT_NEEDED) re-seeds
// itself from the primary's streamed checkpoint while it keeps serving reads from its old copy.
//
//   1. download  the checkpoint goes into `<data>.rebuild`, beside the data directory; its
//                COMPLETE marker (written last, after every file and the term history are
//                durable) is what makes it a copy to open
//   2. swap      the old store is closed (reads answer 503 meanwhile), then
//                  rename <data> -> <data>.old, rename <data>.rebuild -> <data>, fsync the parent
//   3. open      the new copy opens as any restart does and follows the primary from its TSN + 1;
//                <data>.old goes (renamed to <data>.trash-N, then deleted)
//
// Invariant: at every instant the disk holds an openable store: <data> itself, or, between the
// two renames, a complete <data>.rebuild with <data>.old. settleRebuild, run before a store
// opens, finishes or undoes whatever a crash interrupted:
//   - <data>.rebuild without the COMPLETE marker (download cut short): deleted; <data> opens
//   - <data>.rebuild complete (crash after the download, or between the renames): the swap is
//     finished (rolled forward), the new copy opens
//   - <data>.old beside <data> (crash after the swap): deleted
//   - <data>.old without <data> and without a rebuild (cannot happen by the order above; handled
//     anyway): renamed back
//   - <data>.trash-N (crash while deleting): deleted
// Renames are in one directory (the data directory's parent), so each is atomic; the parent is
// fsynced after them before anything is deleted. A data directory that cannot be renamed (a
// mount point: EBUSY) fails the swap before anything changed; the standby keeps its old copy,
// shows the error in /stats and tries again.

import * as path from 'node:path';
import type { FileSystem } from '../storage/index.js';
import { COMPLETE_MARKER } from '../src/checkpoint/checkpoint.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import type { Config } from './config.js';
import { streamCheckpointInto, type ReplicationLog } from './replication.js';

export interface RebuildPaths {
  readonly data: string;
  readonly rebuild: string;
  readonly old: string;
  readonly parent: string;
}

export function rebuildPaths(dataDirectory: string): RebuildPaths {
  const data = path.resolve(dataDirectory);
  return { data, rebuild: `${data}.rebuild`, old: `${data}.old`, parent: path.dirname(data) };
}

/** Deletes a directory tree (the real file system: fs.rm; tests: what their file layer can). */
export type RemoveTree = (directory: string) => Promise<void>;

/** Whether a directory holds a complete checkpoint (its COMPLETE marker is written last). */
async function isComplete(fileSystem: FileSystem, directory: string): Promise<boolean> {
  return fileSystem.exists(path.join(directory, COMPLETE_MARKER));
}

/**
 * Removes `directory` for good: first renamed to a `.trash-N` name (atomically: a crash leaves
 * either the old name or a trash, never half a tree under the old name), then deleted.
 */
export async function discard(fileSystem: FileSystem, paths: RebuildPaths, directory: string, removeTree: RemoveTree): Promise<void> {
  if (!(await fileSystem.exists(directory))) return;
  let n = 0;
  while (await fileSystem.exists(`${paths.data}.trash-${n}`)) n++;
  const trash = `${paths.data}.trash-${n}`;
  await fileSystem.rename(directory, trash);
  await fileSystem.syncDirectory(paths.parent);
  await removeTree(trash);
}

/** What settleRebuild found and did, for the log. */
export type Settled = 'nothing' | 'removed-incomplete' | 'rolled-forward' | 'removed-old' | 'restored-old';

/**
 * Finishes or undoes a rebuild a crash interrupted (see the top of this file). Runs before the
 * store opens; afterwards only `<data>` remains (or nothing, for a new standby).
 */
export async function settleRebuild(fileSystem: FileSystem, dataDirectory: string, removeTree: RemoveTree): Promise<Settled> {
  const paths = rebuildPaths(dataDirectory);
  let settled: Settled = 'nothing';
  if (!(await fileSystem.exists(paths.parent))) return settled;
  if (await fileSystem.exists(paths.rebuild)) {
    if (await isComplete(fileSystem, paths.rebuild)) {
      await swapIn(fileSystem, paths, removeTree);
      settled = 'rolled-forward';
    } else {
      await discard(fileSystem, paths, paths.rebuild, removeTree);
      settled = 'removed-incomplete';
    }
  }
  if (await fileSystem.exists(paths.old)) {
    if (await fileSystem.exists(paths.data)) {
      await discard(fileSystem, paths, paths.old, removeTree);
      if (settled === 'nothing') settled = 'removed-old';
    } else {
      await fileSystem.rename(paths.old, paths.data);
      await fileSystem.syncDirectory(paths.parent);
      settled = 'restored-old';
    }
  }
  for (const name of await fileSystem.list(paths.parent)) {
    if (name.startsWith(`${path.basename(paths.data)}.trash-`)) await removeTree(path.join(paths.parent, name));
  }
  return settled;
}

/**
 * The swap: a complete `<data>.rebuild` becomes `<data>`; the old copy goes. REQUIRES: the old
 * store is closed; `<data>.rebuild` is complete and durable.
 */
export async function swapIn(fileSystem: FileSystem, paths: RebuildPaths, removeTree: RemoveTree): Promise<void> {
  if (!(await isComplete(fileSystem, paths.rebuild))) throw new DocketError(DocketErrorCode.CHECKPOINT_INCOMPLETE, `${paths.rebuild} is not a complete checkpoint: not swapped in`);
  if (await fileSystem.exists(paths.data)) {
    // A <data>.old beside <data> is a leftover of an earlier rebuild: <data> is the live copy.
    await discard(fileSystem, paths, paths.old, removeTree);
    await fileSystem.rename(paths.data, paths.old);
  }
  await fileSystem.rename(paths.rebuild, paths.data);
  await fileSystem.syncDirectory(paths.parent);
  await discard(fileSystem, paths, paths.old, removeTree);
}

// ---- the rebuild of a running standby ----

/** Where a rebuild stands, for /stats (replication.rebuild). */
export interface RebuildFigures {
  /** idle (none running), downloading (the checkpoint into <data>.rebuild), swapping (reads answer 503). */
  state: 'idle' | 'downloading' | 'swapping';
  attempts: number;
  completed: number;
  failed: number;
  /** The running attempt's checkpoint bytes so far, and in all. */
  bytes: number;
  totalBytes: number;
  /** Why the last attempt started (the primary's refusal) and, if it failed, why. */
  cause?: { code: string; message: string };
  lastError?: { code: string; message: string; at: string };
  /** After failed attempts, none starts before this (ISO time): the wait doubles from 5 s to 5 min. */
  nextAttemptNotBefore?: string;
  last?: { tsn: number; bytes: number; ms: number; at: string };
}

export interface RebuilderOptions {
  /** The configuration now (its --replica-of may have been re-pointed since the start). */
  readonly config: () => Readonly<Config>;
  readonly log: ReplicationLog;
  readonly fileSystem: FileSystem;
  readonly removeTree: RemoveTree;
  /**
   * Takes the store out of service, closes it, runs `install` (the swap on disk), settles the
   * directories and opens the store again, whatever `install` did; resolves once it serves.
   */
  readonly swap: (install: () => Promise<void>) => Promise<void>;
  /**
   * Whether the server still wants a copy of `primary` swapped in: not if it was promoted (or is
   * being promoted) or re-pointed to another primary while the download ran.
   */
  readonly stillWanted: (primary: string) => boolean;
}

/**
 * Rebuilds a running standby from its primary's checkpoint when it cannot follow the log. One
 * attempt at a time; the standby's loop asks again (every 5 s) while it is refused, so a failed
 * attempt is retried, after 5 s, then 10, 20, ... up to 5 min while failures repeat. The old
 * copy serves reads until the swap.
 */
/** After a failed rebuild the next waits this long, doubling per failure in a row, up to the max. */
export const REBUILD_BACKOFF_MIN_MS = 5_000;
export const REBUILD_BACKOFF_MAX_MS = 300_000;

export class StandbyRebuilder {
  private running: Promise<void> | undefined;
  private failuresInRow = 0;
  private notBeforeMs = 0;
  readonly figures: RebuildFigures = { state: 'idle', attempts: 0, completed: 0, failed: 0, bytes: 0, totalBytes: 0 };

  constructor(private readonly options: RebuilderOptions) {}

  /** Starts a rebuild unless one runs; returns at once (the standby's loop must not wait for its own replacement). */
  request(cause: DocketError): Promise<void> {
    // A failure that repeats (a full disk, a directory that cannot be renamed) does not fetch
    // the primary's whole checkpoint every 5 s.
    if (Date.now() < this.notBeforeMs) return Promise.resolve();
    this.running ??= this.run(cause).finally(() => (this.running = undefined));
    return Promise.resolve();
  }

  /** Settles when the running attempt (if any) ends. */
  async idle(): Promise<void> {
    await this.running;
  }

  stats(): RebuildFigures {
    return { ...this.figures };
  }

  private async run(cause: DocketError): Promise<void> {
    const { log, fileSystem, removeTree } = this.options;
    const config = this.options.config();
    const paths = rebuildPaths(config.dataDirectory);
    const figures = this.figures;
    const started = Date.now();
    figures.attempts++;
    figures.state = 'downloading';
    figures.bytes = figures.totalBytes = 0;
    figures.cause = { code: cause.code, message: cause.message };
    let swapped = false;
    try {
      log('warn', `rebuilding this standby in place from a checkpoint of ${config.replicaOf} into ${paths.rebuild} (it serves reads from its old copy meanwhile): ${cause.message}`);
      await discard(fileSystem, paths, paths.rebuild, removeTree); // A failed attempt's leftover.
      const seeded = await streamCheckpointInto(config, paths.rebuild, log, started, (bytes, totalBytes) => {
        figures.bytes = bytes;
        figures.totalBytes = totalBytes;
      });
      if (!this.options.stillWanted(config.replicaOf)) throw new DocketError(DocketErrorCode.STANDBY_REBUILD_FAILED, `this server was promoted or re-pointed while the checkpoint of ${config.replicaOf} downloaded: not swapped in`);
      figures.state = 'swapping';
      await this.options.swap(async () => {
        await swapIn(fileSystem, paths, removeTree);
        swapped = true;
      });
      if (!swapped) throw new DocketError(DocketErrorCode.STANDBY_REBUILD_FAILED, 'the swap did not complete: the old copy was opened again');
      figures.completed++;
      this.failuresInRow = 0;
      this.notBeforeMs = 0;
      delete figures.nextAttemptNotBefore;
      figures.last = { tsn: seeded.tsn, bytes: seeded.bytes, ms: Date.now() - started, at: new Date().toISOString() };
      log('info', `rebuilt this standby in place from a checkpoint through TSN ${seeded.tsn} (${seeded.bytes} bytes in ${figures.last.ms} ms); following from TSN ${seeded.tsn + 1}`, figures.last);
    } catch (error) {
      figures.failed++;
      this.failuresInRow++;
      this.notBeforeMs = Date.now() + Math.min(REBUILD_BACKOFF_MAX_MS, REBUILD_BACKOFF_MIN_MS * 2 ** (this.failuresInRow - 1));
      figures.nextAttemptNotBefore = new Date(this.notBeforeMs).toISOString();
      const code = error instanceof DocketError ? error.code : DocketErrorCode.STANDBY_REBUILD_FAILED;
      figures.lastError = { code, message: (error as Error).message, at: new Date().toISOString() };
      log('error', `rebuilding this standby in place failed (${code}): ${(error as Error).message}; ${swapped ? '' : 'it keeps its old copy and '}tries again when next refused`);
      if (!swapped) await discard(fileSystem, paths, paths.rebuild, removeTree).catch(() => undefined);
    } finally {
      figures.state = 'idle';
    }
  }
}
