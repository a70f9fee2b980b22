// A version edit: one atomic change to the engine's durable state (families, tables per level,
// flush flags), encoded as tagged fields. Tag numbers are frozen on disk: a retired tag leaves a
// gravestone here. The manifest is a log of these (storage/manifest/FORMAT.md).

import { corruption } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/coding.js';

/** One SSTable as the manifest knows it. */
export interface FileMeta {
  readonly number: number;
  readonly sizeBytes: number;
  readonly smallestKey: Buffer;
  readonly largestKey: Buffer;
  readonly lsnMin: number;
  readonly lsnMax: number;
  readonly entries: number;
}

/** `<family, tag, LSN_first, LSN_last>`: the last tagged batch whose items in the family are persisted. */
export interface FlushFlag {
  readonly tag: number;
  readonly lsnFirst: number;
  readonly lsnLast: number;
}

export interface VersionEdit {
  nextFileNumber?: number;
  lastLsn?: number;
  nextFamilyId?: number;
  addedFamilies?: { id: number; name: string }[];
  droppedFamilies?: number[];
  addedFiles?: { familyId: number; level: number; file: FileMeta }[];
  deletedFiles?: { familyId: number; level: number; number: number }[];
  flags?: { familyId: number; flag: FlushFlag }[];
  /** Every item of the family with an LSN at or below this is in its tables. */
  persistedLsns?: { familyId: number; lsn: number }[];
}

/** Frozen on disk. */
const Tag = {
  NEXT_FILE_NUMBER: 1,
  LAST_LSN: 2,
  ADD_FAMILY: 3,
  DROP_FAMILY: 4,
  ADD_FILE: 5,
  DELETE_FILE: 6,
  FLAG: 7,
  PERSISTED_LSN: 8,
  NEXT_FAMILY_ID: 9,
} as const;

export function encodeEdit(edit: VersionEdit): Buffer {
  const w = new ByteWriter(128);
  if (edit.nextFileNumber !== undefined) w.varint(Tag.NEXT_FILE_NUMBER).varint(edit.nextFileNumber);
  if (edit.lastLsn !== undefined) w.varint(Tag.LAST_LSN).varint(edit.lastLsn);
  if (edit.nextFamilyId !== undefined) w.varint(Tag.NEXT_FAMILY_ID).varint(edit.nextFamilyId);
  for (const f of edit.addedFamilies ?? []) w.varint(Tag.ADD_FAMILY).varint(f.id).string(f.name);
  for (const id of edit.droppedFamilies ?? []) w.varint(Tag.DROP_FAMILY).varint(id);
  for (const a of edit.addedFiles ?? []) encodeAddedFile(w, a.familyId, a.level, a.file);
  for (const d of edit.deletedFiles ?? []) w.varint(Tag.DELETE_FILE).varint(d.familyId).varint(d.level).varint(d.number);
  for (const { familyId, flag } of edit.flags ?? []) {
    w.varint(Tag.FLAG).varint(familyId).varint(flag.tag).varint(flag.lsnFirst).varint(flag.lsnLast);
  }
  for (const p of edit.persistedLsns ?? []) w.varint(Tag.PERSISTED_LSN).varint(p.familyId).varint(p.lsn);
  return Buffer.from(w.view());
}

function encodeAddedFile(w: ByteWriter, familyId: number, level: number, file: FileMeta): void {
  w.varint(Tag.ADD_FILE).varint(familyId).varint(level).varint(file.number).varint(file.sizeBytes);
  w.slice(file.smallestKey).slice(file.largestKey).varint(file.lsnMin).varint(file.lsnMax).varint(file.entries);
}

export function decodeEdit(payload: Buffer): VersionEdit {
  const r = new ByteReader(payload, 0, payload.length, 'manifest edit');
  const edit: Required<VersionEdit> = {
    nextFileNumber: undefined as unknown as number,
    lastLsn: undefined as unknown as number,
    nextFamilyId: undefined as unknown as number,
    addedFamilies: [], droppedFamilies: [], addedFiles: [], deletedFiles: [], flags: [], persistedLsns: [],
  };
  while (r.remaining > 0) decodeField(r, edit);
  return edit;
}

function decodeField(r: ByteReader, edit: Required<VersionEdit>): void {
  const tag = r.varint();
  switch (tag) {
    case Tag.NEXT_FILE_NUMBER: edit.nextFileNumber = r.varint(); return;
    case Tag.LAST_LSN: edit.lastLsn = r.varint(); return;
    case Tag.NEXT_FAMILY_ID: edit.nextFamilyId = r.varint(); return;
    case Tag.ADD_FAMILY: edit.addedFamilies.push({ id: r.varint(), name: r.string() }); return;
    case Tag.DROP_FAMILY: edit.droppedFamilies.push(r.varint()); return;
    case Tag.ADD_FILE: edit.addedFiles.push(decodeAddedFile(r)); return;
    case Tag.DELETE_FILE: edit.deletedFiles.push({ familyId: r.varint(), level: r.varint(), number: r.varint() }); return;
    case Tag.FLAG:
      edit.flags.push({ familyId: r.varint(), flag: { tag: r.varint(), lsnFirst: r.varint(), lsnLast: r.varint() } });
      return;
    case Tag.PERSISTED_LSN: edit.persistedLsns.push({ familyId: r.varint(), lsn: r.varint() }); return;
    default: throw corruption(`manifest edit: unknown tag ${tag}`);
  }
}

function decodeAddedFile(r: ByteReader): { familyId: number; level: number; file: FileMeta } {
  const familyId = r.varint();
  const level = r.varint();
  const number = r.varint();
  const sizeBytes = r.varint();
  const smallestKey = Buffer.from(r.slice());
  const largestKey = Buffer.from(r.slice());
  const file = { number, sizeBytes, smallestKey, largestKey, lsnMin: r.varint(), lsnMax: r.varint(), entries: r.varint() };
  return { familyId, level, file };
}
