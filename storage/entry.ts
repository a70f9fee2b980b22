// An entry is one version of one key inside a column family: the unit memtables, SSTables,
// iterators and compaction all deal in. Versions of a key are ordered newest (highest LSN) first.

/** Frozen on disk: these numbers appear in SSTable blocks and WAL records. */
export const EntryKind = {
  DELETE: 0,
  PUT: 1,
} as const;
export type EntryKind = (typeof EntryKind)[keyof typeof EntryKind];

export interface Entry {
  readonly key: Buffer;
  /** The engine sequence number of this version. */
  readonly lsn: number;
  readonly kind: EntryKind;
  /** Empty for a DELETE. */
  readonly value: Buffer;
}

/** Internal order: user key ascending, then LSN descending (newest version first). */
export function compareEntries(a: Entry, b: Entry): number {
  const byKey = Buffer.compare(a.key, b.key);
  return byKey !== 0 ? byKey : b.lsn - a.lsn;
}

/** Compares (key, lsn) pairs in internal order, without building entries. */
export function compareInternal(aKey: Buffer, aLsn: number, bKey: Buffer, bLsn: number): number {
  const byKey = Buffer.compare(aKey, bKey);
  return byKey !== 0 ? byKey : bLsn - aLsn;
}

/** Bytes an entry costs in a memtable or cache (data plus a rough fixed overhead). */
export function entryChargeBytes(entry: Entry): number {
  return entry.key.length + entry.value.length + 64;
}
