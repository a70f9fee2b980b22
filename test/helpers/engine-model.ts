// The plain in-memory model the engine crash tests compare with: batches of items per family,
// and what each family must hold given its flush flag.

import type { FlushFlag } from '../../storage/index.js';

export interface BatchItem {
  family: string;
  key: string;
  /** null for a delete. */
  value: string | null;
}

export interface BatchRecord {
  tag: number;
  lsnFirst: number;
  items: BatchItem[];
}

export type Contents = Map<string, Map<string, string>>;

/** A seeded PRNG: the same seed, the same workload. */
export { mulberry32 as random } from '../../storage/sim-file-system.js';

function applyItem(contents: Contents, item: BatchItem): void {
  let map = contents.get(item.family);
  if (!map) contents.set(item.family, (map = new Map()));
  if (item.value === null) map.delete(item.key);
  else map.set(item.key, item.value);
}

/** Every item of every record, in order. */
export function applyRecords(records: readonly BatchRecord[], families?: readonly string[]): Contents {
  const contents: Contents = new Map((families ?? []).map((family) => [family, new Map()]));
  for (const record of records) for (const item of record.items) applyItem(contents, item);
  return withoutEmpty(contents);
}

function withoutEmpty(contents: Contents): Contents {
  return new Map([...contents].filter(([, map]) => map.size > 0));
}

/**
 * What each family holds when it recovered exactly to its flag <T, lsnFirst, lsnLast>: its items
 * of batches before T, and of batch T those with LSN <= lsnLast. A string names a violated
 * cross-check (a flag whose lsnFirst is not batch T's).
 */
export function expectedAtFlags(records: readonly BatchRecord[], flags: Map<string, FlushFlag | undefined>, families: readonly string[]): Contents | string {
  const contents: Contents = new Map();
  for (const family of families) {
    const flag = flags.get(family);
    if (!flag) continue;
    const flagged = records.find((record) => record.tag === flag.tag);
    if (!flagged) return `family ${family} has flag tag ${flag.tag}, which no batch had`;
    if (flagged.lsnFirst !== flag.lsnFirst) return `family ${family} flag lsnFirst ${flag.lsnFirst}, batch ${flag.tag} had ${flagged.lsnFirst}`;
    for (const record of records) {
      if (record.tag > flag.tag) break;
      record.items.forEach((item, index) => {
        if (item.family !== family) return;
        if (record.tag < flag.tag || record.lsnFirst + index <= flag.lsnLast) applyItem(contents, item);
      });
    }
  }
  return withoutEmpty(contents);
}
