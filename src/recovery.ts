// Passive-persistence recovery: flush flags and epochs in, binlog replay out. The engine has
// no WAL of its own, so whatever was in memtables at a crash is rebuilt from the binlog:
//
//   s    = the smallest TSN in any family's flag (the global epoch is s - 1, or s when whole)
//   LSN  = the flag's LSN_first for record s, then + item count for each later record
//   each record from s to the end is translated again and applied at its LSNs, to each family
//   only what it lacks: TSN above its flag, or, for the flag's own TSN, LSN above LSN_last
//
// Every other flag's LSN_first is checked against the LSN rebuilt for its TSN; a mismatch, a
// flag beyond the binlog's end or a binlog purged past s means flags and log disagree, and the
// store refuses to open rather than guess.

import type { Engine, FlushFlag } from '../storage/index.js';
import { Applier, type LogPosition } from './applier.js';
import type { Binlog } from './binlog/binlog.js';
import { DocketError, DocketErrorCode } from './errors.js';
import { CATALOG_FAMILY } from './documents/keys.js';

export interface ReplayReport {
  /** First TSN replayed (0 when nothing was). */
  readonly fromTsn: number;
  readonly toTsn: number;
  readonly records: number;
  readonly bytes: number;
  readonly familiesCreated: number;
  readonly durationMs: number;
}

/** Where a fresh store starts: before TSN 1, whose first item will have LSN 1. */
export const ORIGIN: LogPosition = { tsn: 0, lsnFirst: 1, lsnLast: 0 };

function mismatch(message: string): DocketError {
  return new DocketError(DocketErrorCode.RECOVERY_MISMATCH, `${message}; the store does not open (see the Recovery section of docs/DESIGN.md)`);
}

/** The replay start: TSN and the LSN of its first item. */
function startOf(flags: Map<string, FlushFlag>, binlog: Binlog): { tsn: number; lsn: number } {
  let start: FlushFlag | undefined;
  for (const [name, flag] of flags) {
    if (flag.tag > binlog.lastTsn) throw mismatch(`family ${name} has persisted through TSN ${flag.tag} but the binlog ends at ${binlog.lastTsn}`);
    if (!start || flag.tag < start.tag) start = flag;
  }
  if (!start || start.tag === 0) return { tsn: 1, lsn: 1 };
  if (binlog.firstTsn > start.tag) throw mismatch(`replay must start at TSN ${start.tag} but the binlog starts at ${binlog.firstTsn}`);
  return { tsn: start.tag, lsn: start.lsnFirst };
}

/** Transactions replayed so far of those the binlog holds from the replay start. */
export type ReplayProgress = (progress: { readonly replayed: number; readonly total: number }) => void;

/** Replays the binlog into the engine through the applier. REQUIRES: a passive or double store, before any write. */
export async function replay(engine: Engine, binlog: Binlog, families: Set<string>, onProgress?: ReplayProgress): Promise<{ position: LogPosition; report: ReplayReport }> {
  const started = Date.now();
  const flags = new Map<string, FlushFlag>();
  for (const [name, flag] of engine.flags()) {
    if (!flag) throw mismatch(`family ${name} has no flush flag (was the store written in naive mode?)`);
    flags.set(name, flag);
  }
  if (!families.has(CATALOG_FAMILY)) await createCatalog(engine, binlog, flags, families);
  const lsnBefore = engine.lastLsnAssigned;
  const start = startOf(flags, binlog);
  const from: LogPosition = start.tsn === 1 ? ORIGIN : { tsn: start.tsn - 1, lsnFirst: start.lsn, lsnLast: start.lsn - 1 };
  const applier = new Applier(engine, families, { flags: true, waitDurable: (tsn) => binlog.waitDurable(tsn) }, from);
  let records = 0;
  let bytes = 0;
  let written: Promise<void> = Promise.resolve();
  const total = Math.max(0, binlog.lastTsn - start.tsn + 1);
  onProgress?.({ replayed: 0, total });
  for await (const record of binlog.read(start.tsn)) {
    const lsn = applier.last.lsnLast + 1;
    for (const [name, flag] of flags) {
      if (flag.tag === record.tsn && flag.lsnFirst !== lsn) throw mismatch(`family ${name}'s flag puts TSN ${record.tsn} at LSN ${flag.lsnFirst}, replay at ${lsn}`);
    }
    const tsn = record.tsn;
    // Writes are awaited only now and then (the applier waits for the last before a family
    // changes); a failure fails the engine, so the last one reports it too.
    ({ written } = await applier.apply(tsn, record.payload, (family, itemLsn) => lacks(flags.get(family), tsn, itemLsn)));
    records++;
    bytes += record.sizeBytes;
    onProgress?.({ replayed: records, total });
  }
  await written;
  const position = applier.last;
  if (position.tsn !== binlog.lastTsn) throw mismatch(`replay ended at TSN ${position.tsn} but the binlog ends at ${binlog.lastTsn}`);
  if (lsnBefore > position.lsnLast) throw mismatch(`the engine holds LSN ${lsnBefore} but the binlog's last transaction ends at LSN ${position.lsnLast}`);
  const familiesCreated = applier.familiesCreated;
  const report = { fromTsn: records > 0 ? start.tsn : 0, toTsn: position.tsn, records, bytes, familiesCreated, durationMs: Date.now() - started };
  return { position, report };
}

/** Whether a family with this flag lacks item `lsn` of transaction `tsn`. */
function lacks(flag: FlushFlag | undefined, tsn: number, lsn: number): boolean {
  if (!flag || tsn > flag.tag) return true;
  return tsn === flag.tag && lsn > flag.lsnLast;
}

/** A store whose engine is empty replays its binlog from TSN 1, which needs the catalog first. */
async function createCatalog(engine: Engine, binlog: Binlog, flags: Map<string, FlushFlag>, families: Set<string>): Promise<void> {
  if (flags.size > 0 || binlog.firstTsn > 1 || engine.lastLsnAssigned > 0) throw mismatch('the engine has no catalog family');
  await engine.createFamily(CATALOG_FAMILY, { flag: { tag: 0, lsnFirst: 1, lsnLast: 0 } });
  families.add(CATALOG_FAMILY);
}
