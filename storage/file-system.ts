// The file layer: every byte the engine and the binlog read or write goes through this
// interface. `RealFileSystem` is the only importer of node:fs in storage/; the simulated
// crash-and-fault implementation (sim-file-system.ts) implements the same interface.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fromSystemError, StorageError, StorageErrorCode } from './errors.js';

/** An open file. Writes are positional or appends; `sync` is fdatasync. */
export interface File {
  readonly path: string;
  /** Current size in bytes, including writes not yet synced. */
  size(): number;
  /** Appends at the end of the file. */
  append(data: Uint8Array): Promise<void>;
  /** Writes at `position` (may extend the file; a gap reads as zeros). */
  write(position: number, data: Uint8Array): Promise<void>;
  /** Reads up to `length` bytes at `position`; shorter only at end of file. */
  read(position: number, length: number): Promise<Buffer>;
  /** Makes every write so far durable (fdatasync). */
  sync(): Promise<void>;
  /** Cuts or extends (with zeros) the file to `sizeBytes`. Durable after the next sync. */
  truncate(sizeBytes: number): Promise<void>;
  close(): Promise<void>;
}

export type OpenMode =
  /** Existing file, reads only. */
  | 'read'
  /** Existing file, reads and writes. */
  | 'write'
  /** A new empty file; fails with EEXIST if one is there. */
  | 'create';

export interface FileSystem {
  open(filePath: string, mode: OpenMode): Promise<File>;
  /** Reads a whole file (small files: CURRENT, manifests). */
  readFile(filePath: string): Promise<Buffer>;
  /** Names (not paths) of the entries of a directory, sorted. */
  list(directory: string): Promise<string[]>;
  exists(filePath: string): Promise<boolean>;
  /** Creates a directory and its parents; durable after syncDirectory of the parent. */
  mkdir(directory: string): Promise<void>;
  /** Atomically replaces `to` with `from`; durable after syncDirectory. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; durable after syncDirectory. */
  unlink(filePath: string): Promise<void>;
  /** Makes creates, renames and unlinks in `directory` durable (fsync of the directory). */
  syncDirectory(directory: string): Promise<void>;
  /**
   * A second name for an existing file (a hard link); durable after syncDirectory of the new
   * name's directory. Fails if `newPath` exists, or (EXDEV, as a StorageError IO) across file
   * systems. Optional: a caller without it copies. Checkpoints use it for immutable files.
   */
  link?(existingPath: string, newPath: string): Promise<void>;
  /**
   * Takes the directory for one engine: LOCKED if another holds it. Resolves with the release.
   * Optional: the simulated file system has no other processes to keep out.
   */
  lockDirectory?(directory: string): Promise<() => Promise<void>>;
}

class RealFile implements File {
  constructor(
    readonly path: string,
    private readonly fd: number,
    private sizeBytes: number,
  ) {}

  size(): number {
    return this.sizeBytes;
  }

  append(data: Uint8Array): Promise<void> {
    const position = this.sizeBytes;
    this.sizeBytes += data.length;
    return this.writeAll(position, data);
  }

  write(position: number, data: Uint8Array): Promise<void> {
    this.sizeBytes = Math.max(this.sizeBytes, position + data.length);
    return this.writeAll(position, data);
  }

  private writeAll(position: number, data: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const step = (offset: number): void => {
        fs.write(this.fd, data, offset, data.length - offset, position + offset, (error, written) => {
          if (error) return reject(fromSystemError(error, `write ${this.path}`));
          if (offset + written < data.length) return step(offset + written);
          resolve();
        });
      };
      step(0);
    });
  }

  read(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    return new Promise((resolve, reject) => {
      const step = (offset: number): void => {
        fs.read(this.fd, buffer, offset, length - offset, position + offset, (error, read) => {
          if (error) return reject(fromSystemError(error, `read ${this.path}`));
          if (read === 0) return resolve(buffer.subarray(0, offset));
          if (offset + read < length) return step(offset + read);
          resolve(buffer);
        });
      };
      if (length === 0) resolve(buffer);
      else step(0);
    });
  }

  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.fdatasync(this.fd, (error) => (error ? reject(fromSystemError(error, `fdatasync ${this.path}`)) : resolve()));
    });
  }

  truncate(sizeBytes: number): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.ftruncate(this.fd, sizeBytes, (error) => {
        if (error) return reject(fromSystemError(error, `truncate ${this.path}`));
        this.sizeBytes = sizeBytes;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      fs.close(this.fd, (error) => (error ? reject(fromSystemError(error, `close ${this.path}`)) : resolve()));
    });
  }
}

const OPEN_FLAGS: Record<OpenMode, string> = { read: 'r', write: 'r+', create: 'wx+' };

export class RealFileSystem implements FileSystem {
  async open(filePath: string, mode: OpenMode): Promise<File> {
    try {
      // A raw descriptor (not a FileHandle): the callback API avoids a promise per read.
      const fd = await promisify(fs.open)(filePath, OPEN_FLAGS[mode]);
      const { size } = await promisify(fs.fstat)(fd);
      return new RealFile(filePath, fd, size);
    } catch (error) {
      throw fromSystemError(error, `open ${filePath}`);
    }
  }

  async readFile(filePath: string): Promise<Buffer> {
    try {
      return await fs.promises.readFile(filePath);
    } catch (error) {
      throw fromSystemError(error, `read ${filePath}`);
    }
  }

  async list(directory: string): Promise<string[]> {
    try {
      return (await fs.promises.readdir(directory)).sort();
    } catch (error) {
      throw fromSystemError(error, `list ${directory}`);
    }
  }

  async exists(filePath: string): Promise<boolean> {
    try {
      await fs.promises.access(filePath);
      return true;
    } catch {
      return false;
    }
  }

  async mkdir(directory: string): Promise<void> {
    try {
      await fs.promises.mkdir(directory, { recursive: true });
    } catch (error) {
      throw fromSystemError(error, `mkdir ${directory}`);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      await fs.promises.rename(from, to);
    } catch (error) {
      throw fromSystemError(error, `rename ${from} to ${to}`);
    }
  }

  async unlink(filePath: string): Promise<void> {
    try {
      await fs.promises.unlink(filePath);
    } catch (error) {
      throw fromSystemError(error, `unlink ${filePath}`);
    }
  }

  async link(existingPath: string, newPath: string): Promise<void> {
    try {
      await fs.promises.link(existingPath, newPath);
    } catch (error) {
      throw fromSystemError(error, `link ${existingPath} to ${newPath}`);
    }
  }

  /**
   * A LOCK file holding the owner's process id. One left by a process that is gone is stale and
   * taken over (node has no flock; two processes taking over one stale lock at the same instant
   * is the case this does not cover).
   */
  async lockDirectory(directory: string): Promise<() => Promise<void>> {
    const resolved = path.resolve(directory);
    const lockPath = path.join(resolved, 'LOCK');
    if (lockedHere.has(resolved)) throw locked(`${resolved} is already open in this process`);
    lockedHere.add(resolved);
    try {
      await writeLock(lockPath);
    } catch (error) {
      lockedHere.delete(resolved);
      throw error;
    }
    return async () => {
      lockedHere.delete(resolved);
      await fs.promises.unlink(lockPath).catch(() => undefined);
    };
  }

  async syncDirectory(directory: string): Promise<void> {
    let handle: fs.promises.FileHandle | undefined;
    try {
      handle = await fs.promises.open(path.resolve(directory), 'r');
      await handle.sync();
    } catch (error) {
      throw fromSystemError(error, `fsync directory ${directory}`);
    } finally {
      await handle?.close();
    }
  }
}


/** Directories this process holds: a second engine on one of them is refused. */
const lockedHere = new Set<string>();

function locked(message: string): StorageError {
  return new StorageError(StorageErrorCode.LOCKED, message);
}

async function writeLock(lockPath: string): Promise<void> {
  try {
    await fs.promises.writeFile(lockPath, `${process.pid}\n`, { flag: 'wx' });
    return;
  } catch (error) {
    if ((error as { code?: string }).code !== 'EEXIST') throw fromSystemError(error, `lock ${lockPath}`);
  }
  const owner = Number((await fs.promises.readFile(lockPath, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
    throw locked(`${path.dirname(lockPath)} is in use by process ${owner}`);
  }
  await fs.promises.writeFile(lockPath, `${process.pid}\n`).catch((error: unknown) => {
    throw fromSystemError(error, `lock ${lockPath}`);
  });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM'; // Alive, but not ours to signal.
  }
}
