// The manifest: a log of version edits (shared framing, storage/log/FORMAT.md) named by the
// CURRENT file. Each open writes a fresh manifest holding one snapshot edit and switches CURRENT
// to it atomically; a manifest that grows past MANIFEST_SIZE_BYTES_MAX is rewritten the same way.

import * as path from 'node:path';
import { corruption, StorageError, StorageErrorCode } from '../errors.js';
import type { FileSystem } from '../file-system.js';
import { MANIFEST_SIZE_BYTES_MAX } from '../limits.js';
import { LogWriter } from '../log/log-writer.js';
import { readAllRecords } from '../log/log-reader.js';
import { ManifestState } from './manifest-state.js';
import { decodeEdit, encodeEdit, type VersionEdit } from './version-edit.js';

export const CURRENT_FILE = 'CURRENT';
export const manifestName = (number: number): string => `MANIFEST-${String(number).padStart(6, '0')}`;

/** What opening found that a caller should hear about. */
export interface ManifestRecovery {
  /** A torn or checksum-failing last edit was dropped (it was never acted on if a crash tore it). */
  tornTail?: { manifest: string; offset: number; detail: string };
}

export class Manifest {
  recovery: ManifestRecovery = {};
  private chain: Promise<void> = Promise.resolve();
  private failure: StorageError | undefined;

  private constructor(
    private readonly fs: FileSystem,
    private readonly directory: string,
    readonly state: ManifestState,
    private writer: LogWriter,
    private number: number,
    private readonly sizeBytesMax: number,
  ) {}

  /**
   * Loads the state named by CURRENT (an empty state if there is none), then starts a new
   * manifest with one snapshot edit. `fileNumberFloor` is above every file number in the
   * directory, so orphans of a crash are never reused.
   */
  static async open(fs: FileSystem, directory: string, fileNumberFloor: number, sizeBytesMax = MANIFEST_SIZE_BYTES_MAX): Promise<Manifest> {
    const { state, recovery } = await loadState(fs, directory);
    state.nextFileNumber = Math.max(state.nextFileNumber, fileNumberFloor);
    const number = state.nextFileNumber++;
    const writer = await writeSnapshot(fs, directory, number, state);
    await setCurrent(fs, directory, number);
    // The previous manifest is now an orphan; the engine deletes it with the others.
    const manifest = new Manifest(fs, directory, state, writer, number, sizeBytesMax);
    manifest.recovery = recovery;
    return manifest;
  }

  get manifestNumber(): number {
    return this.number;
  }

  /** Allocates a file number; it becomes durable with the next edit logged. */
  newFileNumber(): number {
    return this.state.nextFileNumber++;
  }

  /**
   * Appends `edit`, syncs it, then applies it to the state. Edits are logged one at a time in
   * call order. After a failed write or sync every later call fails: the manifest on disk may
   * no longer match the state in memory.
   */
  log(edit: VersionEdit): Promise<void> {
    const run = this.chain.then(() => this.logNow(edit));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async logNow(edit: VersionEdit): Promise<void> {
    if (this.failure) throw this.failure;
    try {
      const full: VersionEdit = { ...edit, nextFileNumber: this.state.nextFileNumber };
      await this.writer.add(encodeEdit(full));
      await this.writer.sync();
      this.state.apply(full);
      if (this.writer.position > this.sizeBytesMax) await this.rewrite();
    } catch (error) {
      this.failure = new StorageError(StorageErrorCode.READ_ONLY, `manifest write failed; reopen the engine: ${(error as Error).message}`, { cause: error });
      throw error;
    }
  }

  private async rewrite(): Promise<void> {
    const old = this.number;
    const number = this.state.nextFileNumber++;
    const writer = await writeSnapshot(this.fs, this.directory, number, this.state);
    await setCurrent(this.fs, this.directory, number);
    await this.writer.close();
    this.writer = writer;
    this.number = number;
    await this.fs.unlink(path.join(this.directory, manifestName(old)));
    await this.fs.syncDirectory(this.directory);
  }

  async close(): Promise<void> {
    await this.chain;
    await this.writer.close();
  }
}

async function readCurrent(fs: FileSystem, directory: string): Promise<string> {
  const text = (await fs.readFile(path.join(directory, CURRENT_FILE))).toString('latin1');
  const match = /^(MANIFEST-\d{6,})\n$/.exec(text);
  if (!match) throw corruption(`CURRENT does not name a manifest: ${JSON.stringify(text.slice(0, 40))}`);
  return match[1]!;
}

async function loadState(fs: FileSystem, directory: string): Promise<{ state: ManifestState; recovery: ManifestRecovery }> {
  const state = new ManifestState();
  const recovery: ManifestRecovery = {};
  if (!(await fs.exists(path.join(directory, CURRENT_FILE)))) return { state, recovery };
  const name = await readCurrent(fs, directory);
  const number = Number(name.slice('MANIFEST-'.length));
  const file = await fs.open(path.join(directory, name), 'read');
  try {
    // A torn last record is an edit whose sync never returned: it was never acted on. A bit
    // flipped in the last record looks the same; it is reported, not silently dropped.
    const { records, status } = await readAllRecords(file, number);
    if (records.length === 0) throw corruption(`${name} holds no snapshot edit`);
    for (const record of records) state.apply(decodeEdit(record));
    if (status.kind === 'torn') recovery.tornTail = { manifest: name, offset: status.offset, detail: status.detail };
  } finally {
    await file.close();
  }
  return { state, recovery };
}

async function writeSnapshot(fs: FileSystem, directory: string, number: number, state: ManifestState): Promise<LogWriter> {
  const file = await fs.open(path.join(directory, manifestName(number)), 'create');
  const writer = new LogWriter(file, number);
  await writer.add(encodeEdit(state.snapshotEdit()));
  await writer.sync();
  await fs.syncDirectory(directory);
  return writer;
}

/** Points CURRENT at manifest `number`: write a temporary file, sync, rename, sync the directory. */
async function setCurrent(fs: FileSystem, directory: string, number: number): Promise<void> {
  const temporary = path.join(directory, `${String(number).padStart(6, '0')}.dbtmp`);
  const file = await fs.open(temporary, 'create');
  try {
    await file.append(Buffer.from(`${manifestName(number)}\n`, 'latin1'));
    await file.sync();
  } finally {
    await file.close();
  }
  await fs.rename(temporary, path.join(directory, CURRENT_FILE));
  await fs.syncDirectory(directory);
}
