// Leveled compaction picking: L0 by file count, deeper levels by size against a target that
// grows by LEVEL_SIZE_RATIO per level; within a level, files are taken round-robin.

import { L0_COMPACTION_TRIGGER_FILES, LEVEL1_SIZE_BYTES, LEVEL_SIZE_RATIO, LEVELS } from '../limits.js';
import type { FileMeta } from '../manifest/version-edit.js';

export interface CompactionPick {
  readonly level: number;
  readonly inputs: readonly FileMeta[];
  /** Overlapping tables of level + 1. */
  readonly nextInputs: readonly FileMeta[];
  readonly score: number;
}

export interface PickerConfig {
  l0TriggerFiles: number;
  level1SizeBytes: number;
}

export const PICKER_DEFAULTS: PickerConfig = {
  l0TriggerFiles: L0_COMPACTION_TRIGGER_FILES,
  level1SizeBytes: LEVEL1_SIZE_BYTES,
};

export function levelTargetBytes(level: number, config: PickerConfig): number {
  return config.level1SizeBytes * LEVEL_SIZE_RATIO ** Math.max(0, level - 1);
}

export function levelBytes(files: readonly FileMeta[]): number {
  let total = 0;
  for (const file of files) total += file.sizeBytes;
  return total;
}

/** How urgently each level wants compaction; >= 1 means it should run. */
export function levelScores(levels: readonly (readonly FileMeta[])[], config: PickerConfig): number[] {
  return levels.map((files, level) => {
    if (level === LEVELS - 1) return 0; // The bottom level compacts into nothing.
    if (level === 0) return files.length / config.l0TriggerFiles;
    return levelBytes(files) / levelTargetBytes(level, config);
  });
}

export function pickCompaction(
  levels: readonly (readonly FileMeta[])[],
  pointers: (Buffer | undefined)[],
  config: PickerConfig,
): CompactionPick | undefined {
  const scores = levelScores(levels, config);
  let level = -1;
  for (let l = 0; l < scores.length; l++) if (scores[l]! >= 1 && (level < 0 || scores[l]! > scores[level]!)) level = l;
  if (level < 0) return undefined;
  const inputs = level === 0 ? [...levels[0]!] : [roundRobin(levels[level]!, pointers[level])];
  return { level, inputs, nextInputs: overlappingInputs(inputs, levels[level + 1]!), score: scores[level]! };
}

/** Everything in `level` (forced, for a manual compaction), or nothing if it is empty. */
export function pickWholeLevel(levels: readonly (readonly FileMeta[])[], level: number): CompactionPick | undefined {
  const inputs = levels[level]!;
  if (inputs.length === 0 || level >= LEVELS - 1) return undefined;
  return { level, inputs: [...inputs], nextInputs: overlappingInputs(inputs, levels[level + 1]!), score: 0 };
}

function roundRobin(files: readonly FileMeta[], pointer: Buffer | undefined): FileMeta {
  if (pointer) for (const file of files) if (Buffer.compare(file.smallestKey, pointer) > 0) return file;
  return files[0]!;
}

function overlappingInputs(inputs: readonly FileMeta[], next: readonly FileMeta[]): FileMeta[] {
  let smallest = inputs[0]!.smallestKey;
  let largest = inputs[0]!.largestKey;
  for (const file of inputs) {
    if (Buffer.compare(file.smallestKey, smallest) < 0) smallest = file.smallestKey;
    if (Buffer.compare(file.largestKey, largest) > 0) largest = file.largestKey;
  }
  return overlapping(next, smallest, largest);
}

export function overlapping(files: readonly FileMeta[], smallest: Buffer, largest: Buffer): FileMeta[] {
  return files.filter((f) => Buffer.compare(f.largestKey, smallest) >= 0 && Buffer.compare(f.smallestKey, largest) <= 0);
}
