// A load's checkpoint: which inputs it reads, and the point up to which the server has
// acknowledged every line (input, line, uncompressed byte offset), with the running counts.
// Written after each acknowledged request, atomically (temporary file, fsync, rename), so that
// `docket load --resume` continues after the last acknowledged line, whenever the loader stopped.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { InputIdentity } from './input.js';

export const CHECKPOINT_FORMAT = 'docket-load-checkpoint/1';

export interface LoadPosition {
  /** Index into `inputs` of the input being read. */
  readonly input: number;
  /** Lines of that input acknowledged (physical lines, blank ones included). */
  readonly line: number;
  /** Uncompressed bytes of that input acknowledged: the start of line `line + 1`. */
  readonly offset: number;
}

export interface LoadCounts {
  /** Non-blank lines sent and acknowledged. */
  readonly lines: number;
  readonly stored: number;
  readonly failed: number;
  /** Uncompressed input bytes acknowledged. */
  readonly bytes: number;
}

export interface Checkpoint {
  readonly format: typeof CHECKPOINT_FORMAT;
  readonly collection: string;
  readonly idField: string;
  readonly inputs: readonly InputIdentity[];
  readonly position: LoadPosition;
  readonly counts: LoadCounts;
  readonly complete: boolean;
}

export class CheckpointError extends Error {}

/** The default checkpoint path for a load into `collection`, in the working directory. */
export function defaultCheckpointPath(collection: string): string {
  return path.resolve(`docket-load-${encodeURIComponent(collection)}.checkpoint.json`);
}

export async function readCheckpoint(file: string): Promise<Checkpoint | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let checkpoint: Checkpoint;
  try {
    checkpoint = JSON.parse(text) as Checkpoint;
  } catch (error) {
    throw new CheckpointError(`the checkpoint ${file} is not valid JSON (${(error as Error).message}); delete it or pass --restart`);
  }
  if (checkpoint?.format !== CHECKPOINT_FORMAT) throw new CheckpointError(`${file} is not a docket load checkpoint (format ${CHECKPOINT_FORMAT})`);
  return checkpoint;
}

export async function writeCheckpoint(file: string, checkpoint: Checkpoint): Promise<void> {
  const temporary = `${file}.tmp`;
  const handle = await fs.open(temporary, 'w');
  try {
    await handle.writeFile(JSON.stringify(checkpoint, null, 1) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temporary, file);
}

/**
 * Why `checkpoint` cannot be resumed by a load of `inputs` into `collection`, or undefined when
 * it can. Files must be the same ones, unchanged (size and modification time).
 */
export function resumeMismatch(checkpoint: Checkpoint, collection: string, idField: string, inputs: readonly InputIdentity[]): string | undefined {
  if (checkpoint.collection !== collection) return `it records a load into ${JSON.stringify(checkpoint.collection)}, not ${JSON.stringify(collection)}`;
  if (checkpoint.idField !== idField) return `it records --id-field ${JSON.stringify(checkpoint.idField)}, not ${JSON.stringify(idField)}`;
  if (checkpoint.inputs.length !== inputs.length) return `it records ${checkpoint.inputs.length} inputs, not ${inputs.length}`;
  for (const [index, recorded] of checkpoint.inputs.entries()) {
    const input = inputs[index]!;
    if (recorded.path !== input.path) return `input ${index + 1} was ${recorded.path}, not ${input.path}`;
    if (recorded.sizeBytes !== input.sizeBytes || recorded.modifiedMs !== input.modifiedMs) return `${input.path} changed since (size or modification time)`;
  }
  return undefined;
}
