// Writing a checkpoint into a directory, from a captured source on this machine (hard links
// where the file system allows) or from a received stream (stream.ts). The order makes a cut-
// short checkpoint recognisable: the INCOMPLETE marker is durable before any other file is
// created, and the COMPLETE marker is written only once every file and directory is durable.
// FORMAT.md describes the layout.

import * as path from 'node:path';
import type { File, FileSystem } from '../../storage/index.js';
import { DocketError, DocketErrorCode } from '../errors.js';
import { COMPLETE_MARKER, fileChunks, INCOMPLETE_MARKER, type CheckpointDescriptor, type CheckpointSource } from './checkpoint.js';

/** The directories a checkpoint's files live in, inside the checkpoint. */
export const CHECKPOINT_SUBDIRECTORIES = ['engine', 'binlog'] as const;
/** A checkpoint file's name: one of the subdirectories, then a plain file name. */
export const CHECKPOINT_FILE_NAME_PATTERN = /^(engine|binlog)\/[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

export interface TargetOptions {
  readonly fileSystem: FileSystem;
  readonly directory: string;
  /** Runs once every file is durable, before the COMPLETE marker: what must be there when it is (a standby's term file). */
  readonly beforeComplete?: (directory: string) => Promise<void>;
}

/** Bytes written so far of the total; called after each chunk. */
export type CheckpointProgress = (progress: { readonly bytes: number; readonly totalBytes: number }) => void;

export class CheckpointTarget {
  private readonly names = new Set<string>();

  private constructor(
    readonly fileSystem: FileSystem,
    readonly directory: string,
    private readonly beforeComplete?: (directory: string) => Promise<void>,
  ) {}

  /**
   * Takes `directory` (absent or empty: CHECKPOINT_TARGET_NOT_EMPTY otherwise) and makes the
   * INCOMPLETE marker and the subdirectories durable before anything else goes in.
   */
  static async create(options: TargetOptions): Promise<CheckpointTarget> {
    const { fileSystem, directory } = options;
    if ((await fileSystem.exists(directory)) && (await fileSystem.list(directory)).length > 0) {
      throw new DocketError(DocketErrorCode.CHECKPOINT_TARGET_NOT_EMPTY, `${directory} is not empty: a checkpoint or backup goes into a new or empty directory`);
    }
    await fileSystem.mkdir(directory);
    await fileSystem.syncDirectory(path.dirname(path.resolve(directory)));
    const target = new CheckpointTarget(fileSystem, directory, options.beforeComplete);
    await target.writeSmallFile(INCOMPLETE_MARKER, Buffer.from('a checkpoint is being written here; it is complete only once CHECKPOINT exists\n'));
    await fileSystem.syncDirectory(directory);
    for (const name of CHECKPOINT_SUBDIRECTORIES) await fileSystem.mkdir(path.join(directory, name));
    await fileSystem.syncDirectory(directory);
    return target;
  }

  /** The path of a checkpoint file, after checking its name (CHECKPOINT_CORRUPT if bad or repeated). */
  pathOf(name: string): string {
    if (!CHECKPOINT_FILE_NAME_PATTERN.test(name)) throw new DocketError(DocketErrorCode.CHECKPOINT_CORRUPT, `checkpoint: ${JSON.stringify(name.slice(0, 80))} is not a checkpoint file name`);
    if (this.names.has(name)) throw new DocketError(DocketErrorCode.CHECKPOINT_CORRUPT, `checkpoint: ${name} appears twice`);
    this.names.add(name);
    return path.join(this.directory, ...name.split('/'));
  }

  /** A hard link to `source` at `target` (from pathOf); false (nothing made) when the file system cannot. */
  async link(target: string, source: string): Promise<boolean> {
    if (!this.fileSystem.link) return false;
    try {
      await this.fileSystem.link(source, target);
      return true;
    } catch {
      return false; // EXDEV, EPERM...: the caller copies.
    }
  }

  /** Creates the file at `target` (from pathOf) for writing. */
  createFile(target: string): Promise<File> {
    return this.fileSystem.open(target, 'create');
  }

  /** Every file is durable: make the directory entries durable, then write the COMPLETE marker. */
  async complete(descriptor: CheckpointDescriptor): Promise<void> {
    for (const name of CHECKPOINT_SUBDIRECTORIES) await this.fileSystem.syncDirectory(path.join(this.directory, name));
    await this.beforeComplete?.(this.directory);
    const temporary = `${COMPLETE_MARKER}.tmp`;
    await this.writeSmallFile(temporary, Buffer.from(`${JSON.stringify(descriptor, null, 1)}\n`));
    await this.fileSystem.rename(path.join(this.directory, temporary), path.join(this.directory, COMPLETE_MARKER));
    await this.fileSystem.syncDirectory(this.directory);
    await this.fileSystem.unlink(path.join(this.directory, INCOMPLETE_MARKER));
    await this.fileSystem.syncDirectory(this.directory);
  }

  private async writeSmallFile(name: string, bytes: Buffer): Promise<void> {
    const file = await this.fileSystem.open(path.join(this.directory, name), 'create');
    try {
      await file.append(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
  }
}

/**
 * Writes a captured checkpoint into `directory` on this machine: immutable files as hard links
 * when the source and target share a file system, everything else copied and synced. Resolves
 * with the descriptor its COMPLETE marker holds. Does not release the source.
 */
export async function writeCheckpoint(source: CheckpointSource, options: TargetOptions, onProgress?: CheckpointProgress): Promise<CheckpointDescriptor> {
  const target = await CheckpointTarget.create(options);
  const sameFileSystem = source.fileSystem === options.fileSystem;
  let bytes = 0;
  for (const file of source.files) {
    const at = target.pathOf(file.name);
    if (file.immutable && file.source !== undefined && sameFileSystem && (await target.link(at, file.source))) {
      bytes += file.sizeBytes;
      onProgress?.({ bytes, totalBytes: source.sizeBytes });
      continue;
    }
    const out = await target.createFile(at);
    try {
      for await (const chunk of fileChunks(source.fileSystem, file)) {
        await out.append(chunk);
        bytes += chunk.length;
        onProgress?.({ bytes, totalBytes: source.sizeBytes });
      }
      await out.sync();
    } finally {
      await out.close();
    }
  }
  await target.complete(source.descriptor);
  return source.descriptor;
}
