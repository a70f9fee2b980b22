// The engine's durable state as the manifest describes it: column families, their tables per
// level and their flush flags. Level arrays are replaced, never mutated, so a reader holding an
// old array (a version) keeps a consistent view while edits are applied.

import assert from 'node:assert/strict';
import { corruption } from '../errors.js';
import { LEVELS } from '../limits.js';
import type { FileMeta, FlushFlag, VersionEdit } from './version-edit.js';

export interface FamilyState {
  readonly id: number;
  readonly name: string;
  /** L0 newest first (by lsnMax); deeper levels sorted by smallest key, not overlapping. */
  levels: readonly (readonly FileMeta[])[];
  flag: FlushFlag | undefined;
  persistedLsn: number;
}

export class ManifestState {
  readonly families = new Map<number, FamilyState>();
  nextFileNumber = 2;
  lastLsn = 0;
  nextFamilyId = 0;

  apply(edit: VersionEdit): void {
    if (edit.nextFileNumber !== undefined) this.nextFileNumber = Math.max(this.nextFileNumber, edit.nextFileNumber);
    if (edit.lastLsn !== undefined) this.lastLsn = Math.max(this.lastLsn, edit.lastLsn);
    if (edit.nextFamilyId !== undefined) this.nextFamilyId = Math.max(this.nextFamilyId, edit.nextFamilyId);
    for (const { id, name } of edit.addedFamilies ?? []) {
      this.families.set(id, { id, name, levels: Array.from({ length: LEVELS }, () => []), flag: undefined, persistedLsn: 0 });
      this.nextFamilyId = Math.max(this.nextFamilyId, id + 1);
    }
    for (const id of edit.droppedFamilies ?? []) this.families.delete(id);
    this.applyFiles(edit);
    for (const { familyId, flag } of edit.flags ?? []) this.family(familyId).flag = flag;
    for (const { familyId, lsn } of edit.persistedLsns ?? []) {
      const family = this.family(familyId);
      family.persistedLsn = Math.max(family.persistedLsn, lsn);
    }
  }

  private applyFiles(edit: VersionEdit): void {
    const touched = new Map<FamilyState, FileMeta[][]>();
    const levelsOf = (familyId: number): FileMeta[][] => {
      const family = this.family(familyId);
      let levels = touched.get(family);
      if (!levels) touched.set(family, (levels = family.levels.map((files) => [...files])));
      return levels;
    };
    for (const d of edit.deletedFiles ?? []) {
      const files = levelsOf(d.familyId)[d.level];
      const index = files?.findIndex((f) => f.number === d.number) ?? -1;
      if (index < 0) throw corruption(`manifest: deleted table ${d.number} is not in level ${d.level}`);
      files!.splice(index, 1);
    }
    for (const a of edit.addedFiles ?? []) {
      if (a.level >= LEVELS) throw corruption(`manifest: level ${a.level} out of range`);
      levelsOf(a.familyId)[a.level]!.push(a.file);
      this.nextFileNumber = Math.max(this.nextFileNumber, a.file.number + 1);
      this.lastLsn = Math.max(this.lastLsn, a.file.lsnMax);
    }
    for (const [family, levels] of touched) family.levels = levels.map((files, level) => sortLevel(files, level));
  }

  family(id: number): FamilyState {
    const family = this.families.get(id);
    if (!family) throw corruption(`manifest: unknown column family id ${id}`);
    return family;
  }

  /** One edit that recreates this whole state (the first record of a new manifest). */
  snapshotEdit(): VersionEdit {
    const edit: Required<VersionEdit> = {
      nextFileNumber: this.nextFileNumber, lastLsn: this.lastLsn, nextFamilyId: this.nextFamilyId,
      addedFamilies: [], droppedFamilies: [], addedFiles: [], deletedFiles: [], flags: [], persistedLsns: [],
    };
    for (const family of this.families.values()) {
      edit.addedFamilies.push({ id: family.id, name: family.name });
      family.levels.forEach((files, level) => {
        for (const file of files) edit.addedFiles.push({ familyId: family.id, level, file });
      });
      if (family.flag) edit.flags.push({ familyId: family.id, flag: family.flag });
      edit.persistedLsns.push({ familyId: family.id, lsn: family.persistedLsn });
    }
    return edit;
  }

  /** Every table number referenced by any family. */
  liveTableNumbers(): Set<number> {
    const live = new Set<number>();
    for (const family of this.families.values()) {
      for (const files of family.levels) for (const file of files) live.add(file.number);
    }
    return live;
  }
}

function sortLevel(files: FileMeta[], level: number): readonly FileMeta[] {
  if (level === 0) return files.sort((a, b) => b.lsnMax - a.lsnMax || b.number - a.number);
  files.sort((a, b) => Buffer.compare(a.smallestKey, b.smallestKey));
  for (let i = 1; i < files.length; i++) {
    assert(Buffer.compare(files[i - 1]!.largestKey, files[i]!.smallestKey) < 0, `level ${level} tables overlap`);
  }
  return files;
}
