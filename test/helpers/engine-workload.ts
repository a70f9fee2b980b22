// A seeded engine workload (tagged batches, flushes, compactions) and the checks the crash and
// fault tests share: what survives must be what was acknowledged (WAL on) or exactly what the
// flush flags say (WAL off).

import { Engine, StorageError, WriteBatch } from '../../storage/index.js';
import type { SimFileSystem } from '../../storage/sim-file-system.js';
import { applyRecords, expectedAtFlags, random, type BatchRecord, type Contents } from './engine-model.js';

export const FAMILIES = ['a', 'b', 'c'];
export const OPTIONS = {
  directory: '/db',
  memtableSizeBytes: 1024,
  blockSizeBytes: 256,
  tableSizeBytesTarget: 2048,
  level1SizeBytes: 4096,
  l0CompactionTriggerFiles: 2,
};

type Op = { kind: 'write'; record: BatchRecord } | { kind: 'flush'; families: string[] } | { kind: 'compact' };

/** A deterministic workload: tagged batches (LSNs known in advance), flushes, compactions. */
export function workload(seed: number, length: number): Op[] {
  const next = random(seed);
  const ops: Op[] = [];
  let lsn = 1;
  for (let tag = 1; ops.length < length; ) {
    const roll = next();
    if (roll < 0.1) ops.push({ kind: 'flush', families: FAMILIES.filter(() => next() < 0.6) });
    else if (roll < 0.14) ops.push({ kind: 'compact' });
    else {
      const big = next() < 0.05; // Larger than a memtable: one batch spans two.
      const count = big ? 12 : 1 + Math.floor(next() * 4);
      const items = Array.from({ length: count }, () => ({
        family: FAMILIES[Math.floor(next() * FAMILIES.length)]!,
        key: `k${Math.floor(next() * 24)}`,
        value: next() < 0.2 ? null : `v${tag}-`.padEnd(big ? 150 : 5 + Math.floor(next() * 120), 'x'),
      }));
      ops.push({ kind: 'write', record: { tag, lsnFirst: lsn, items } });
      lsn += count;
      tag++;
    }
  }
  return ops;
}

export interface RunResult {
  acknowledged: BatchRecord[];
  issued: BatchRecord[];
  /** The tag of a batch acknowledged after an earlier operation had failed. */
  acknowledgedAfterFailure?: number;
  /** The first error that was not a coded StorageError. */
  uncoded?: string;
}

/**
 * Runs the workload until the simulated disk crashes. With `stopOnError: false` (the fault
 * loop) a failed operation is noted and the workload goes on, to see what the engine does next.
 */
export async function run(fs: SimFileSystem, wal: boolean, ops: Op[], options: { stopOnError?: boolean } = {}): Promise<RunResult> {
  const result: RunResult = { acknowledged: [], issued: [] };
  let engine: Engine;
  try {
    engine = await Engine.open({ ...OPTIONS, fileSystem: fs, wal });
    for (const family of FAMILIES) await engine.createFamily(family);
  } catch (error) {
    if (fs.crashed) return result;
    throw error;
  }
  let failed = false;
  for (const op of ops) {
    const acknowledgedBefore = result.acknowledged.length;
    try {
      await step(engine, op, result);
      if (failed && result.acknowledged.length > acknowledgedBefore) result.acknowledgedAfterFailure ??= result.acknowledged.at(-1)!.tag;
    } catch (error) {
      if (fs.crashed) return result;
      if (options.stopOnError ?? true) throw error;
      if (!(error instanceof StorageError)) result.uncoded ??= (error as Error).stack ?? String(error);
      failed = true;
    }
  }
  await engine.close().catch((error) => {
    if (!fs.crashed && !failed && (options.stopOnError ?? true)) throw error;
  });
  return result;
}

async function step(engine: Engine, op: Op, result: RunResult): Promise<void> {
  if (op.kind === 'flush') return engine.flush(op.families);
  if (op.kind === 'compact') return engine.compactAll();
  const batch = new WriteBatch();
  for (const item of op.record.items) {
    if (item.value === null) batch.delete(item.family, Buffer.from(item.key));
    else batch.put(item.family, Buffer.from(item.key), Buffer.from(item.value));
  }
  result.issued.push(op.record);
  const lsnFirst = await engine.write(batch, { tag: op.record.tag });
  if (lsnFirst !== op.record.lsnFirst) throw new Error(`batch ${op.record.tag} got LSN ${lsnFirst}, expected ${op.record.lsnFirst}`);
  result.acknowledged.push(op.record);
}

export async function contentsOf(engine: Engine): Promise<Contents> {
  const contents: Contents = new Map();
  for (const family of engine.listFamilies()) {
    const map = new Map<string, string>();
    for await (const { key, value } of engine.iterator(family)) map.set(key.toString(), value.toString());
    if (map.size > 0) contents.set(family, map);
  }
  return contents;
}

export function describe(contents: Contents): string {
  const families = [...contents].sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify(families.map(([family, map]) => [family, [...map].map(([key, value]) => `${key}=${value.slice(0, 6)}`).sort()]));
}

/** Undefined when `engine` holds what it must after a crash or fault; otherwise what differs. */
export async function verifyRecovered(engine: Engine, wal: boolean, result: RunResult): Promise<string | undefined> {
  const actual = describe(await contentsOf(engine));
  if (wal) {
    // Every acknowledged batch survives; the one in flight is wholly there or wholly absent.
    const allowed = [applyRecords(result.acknowledged), applyRecords(result.issued)].map(describe);
    return allowed.includes(actual) ? undefined : `WAL on: recovered ${actual}, acknowledged ${allowed[0]}`;
  }
  const expected = expectedAtFlags(result.issued, engine.flags(), FAMILIES);
  if (typeof expected === 'string') return expected;
  return describe(expected) === actual ? undefined : `WAL off: recovered ${actual}, flags say ${describe(expected)}`;
}
