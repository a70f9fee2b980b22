// The engine's part of a checkpoint: its tables as they are, and a fresh manifest (with CURRENT)
// that describes exactly those tables and the flush flags of the same instant. The document
// layer adds its binlog and writes or streams the whole (src/checkpoint/FORMAT.md); this file
// only says which bytes make up a copy of the engine that opens like the original.

import type { Engine } from './db.js';
import { encodeRecord } from './log/format.js';
import { manifestName } from './manifest/manifest.js';
import { encodeEdit, type FlushFlag } from './manifest/version-edit.js';
import * as path from 'node:path';
import { tableName } from './table-cache.js';

/** One file of a checkpoint. */
export interface CheckpointFile {
  /** Its name inside the checkpoint directory, '/'-separated (e.g. `engine/000012.sst`). */
  readonly name: string;
  readonly sizeBytes: number;
  /** The file whose first sizeBytes bytes it is, or... */
  readonly source?: string;
  /** ...its bytes. */
  readonly bytes?: Buffer;
  /** The source is never written again (a table, a complete binlog segment): a hard link may stand for a copy. */
  readonly immutable: boolean;
}

export interface EngineCheckpoint {
  readonly files: CheckpointFile[];
  /** Each family's flush flag in the captured state. */
  readonly flags: ReadonlyMap<string, FlushFlag | undefined>;
  /** Lets the engine delete the captured tables again once they are obsolete. */
  release(): void;
}

/**
 * Captures the engine's durable state (one synchronous step, so no edit lands half-seen) and
 * pins its tables until `release`. `prefix` is the engine's directory inside the checkpoint.
 */
export function checkpointEngine(engine: Engine, prefix: string): EngineCheckpoint {
  const { edit, tables, directory, release } = engine.pinState();
  // The manifest takes the next file number; the copy's numbers continue above it.
  const number = edit.nextFileNumber!;
  const snapshot = { ...edit, nextFileNumber: number + 1 };
  const manifest = encodeRecord(number, encodeEdit(snapshot));
  const current = Buffer.from(`${manifestName(number)}\n`, 'latin1');
  const files: CheckpointFile[] = tables.map((table) => ({
    name: `${prefix}/${tableName(table.number)}`,
    sizeBytes: table.sizeBytes,
    source: path.join(directory, tableName(table.number)),
    immutable: true,
  }));
  // CURRENT last: a reader of the copy meets the manifest only once every table it names is there.
  files.push({ name: `${prefix}/${manifestName(number)}`, sizeBytes: manifest.length, bytes: manifest, immutable: false });
  files.push({ name: `${prefix}/CURRENT`, sizeBytes: current.length, bytes: current, immutable: false });
  const names = new Map((edit.addedFamilies ?? []).map((family) => [family.id, family.name]));
  const flags = new Map<string, FlushFlag | undefined>([...names.values()].map((name) => [name, undefined]));
  for (const { familyId, flag } of edit.flags ?? []) flags.set(names.get(familyId)!, flag);
  return { files, flags, release };
}
