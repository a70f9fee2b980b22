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

/** Keys up to this long compare fastest in a plain loop; longer ones in C++ (measured 2-3x). */
const LOOP_COMPARE_BYTES_MAX = 64;

/**
 * Bytewise order of two keys (negative, zero, positive), from byte `from` on: callers that know
 * the first bytes equal may skip them.
 */
export function compareKeys(a: Uint8Array, b: Uint8Array, from = 0): number {
  const length = a.length < b.length ? a.length : b.length;
  if (length > LOOP_COMPARE_BYTES_MAX) return Buffer.compare(a, b);
  for (let i = from; i < length; i++) {
    const difference = a[i]! - b[i]!;
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/** Internal order: user key ascending, then LSN descending (newest version first). */
export function compareEntries(a: Entry, b: Entry): number {
  const byKey = compareKeys(a.key, b.key);
  return byKey !== 0 ? byKey : b.lsn - a.lsn;
}

/** Compares (key, lsn) pairs in internal order, without building entries. */
export function compareInternal(aKey: Buffer, aLsn: number, bKey: Buffer, bLsn: number): number {
  const byKey = compareKeys(aKey, bKey);
  return byKey !== 0 ? byKey : bLsn - aLsn;
}
