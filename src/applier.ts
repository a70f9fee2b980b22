// The applier: "apply transaction T at LSN_first, only the items each family lacks". The one
// place where a binlog record becomes engine state, used by the commit pipeline (every item, at
// the next LSNs) and by recovery (at the LSNs the flags rebuild, only what a family lacks);
// and standby replay (replication/standby.ts, through the commit pipeline). It owns the set of column families: a transaction's
// families are created before its items are written, and a dropped collection's families go
// once its drop is applied and durable.
//
// Invariant: transactions are applied in TSN order, each at LSN_first = the previous one's
// LSN_first + its item count, so an item's LSN is a pure function of the binlog (PASV rebuilds
// it at recovery from one flag's LSN_first).
// Invariant: a family created for transaction T starts with the flag <T, L, L - 1> (L = T's
// LSN_first): it holds everything before T and nothing of T. Under flags it is created only
// once T is durable in the binlog, so no flag ever names a transaction a crash could take back.

import { WriteBatch, type Engine, type FlushFlag } from '../storage/index.js';
import { familyName, metaFamily, parseFamilyName } from './documents/keys.js';
import { translate, type Outline } from './documents/translate.js';

/** Spare write batches kept, and the largest kept (a bulk transaction's stays with the collector). */
const SPARE_BATCHES = 8;
const SPARE_BATCH_BYTES_MAX = 256 * 1024;

/** Where the applier stands: the last applied transaction and the LSN of its first item. */
export interface LogPosition {
  readonly tsn: number;
  readonly lsnFirst: number;
  readonly lsnLast: number;
}

/** Sees a transaction's outline and items before they are applied (a standby keeps its catalog this way). */
export type OnTranslated = (outline: Outline, batch: WriteBatch, payload: Buffer) => void;

/** Whether a family lacks item `lsn` of the transaction being applied (recovery's filter). */
export type Lacks = (family: string, lsn: number) => boolean;

export interface ApplierOptions {
  /** Write flush flags (passive and double durability); naive mode writes none. */
  readonly flags: boolean;
  /** Resolves once the binlog is durable through `tsn`. */
  readonly waitDurable: (tsn: number) => Promise<void>;
}

export interface Applied {
  readonly tsn: number;
  readonly lsnFirst: number;
  /** Items the transaction translated to (LSNs lsnFirst .. lsnFirst + count - 1). */
  readonly count: number;
  /** Settles when the engine holds the items (rejects if it failed). */
  readonly written: Promise<void>;
}

export class Applier {
  private position: LogPosition;
  /** Families this applier created. */
  familiesCreated = 0;
  /** The engine write of the last transaction: family changes wait for it, as they did when first written. */
  private lastWritten: Promise<unknown> = Promise.resolve();
  /** Batches the engine is done with: a transaction reuses one rather than allocating its arrays. */
  private readonly spare: WriteBatch[] = [];

  constructor(
    private readonly engine: Engine,
    /** The engine's families, kept in step with it. */
    readonly families: Set<string>,
    private readonly options: ApplierOptions,
    last: LogPosition,
  ) {
    this.position = last;
  }

  /** The last transaction applied (its items may still be on their way into the engine). */
  get last(): LogPosition {
    return this.position;
  }

  /**
   * Applies transaction `tsn` (its record's payload) at the next LSNs: creates the families it
   * needs, hands its items to the engine (all of them, or with `lacks` only those each family
   * lacks), and drops the families of collections it drops. Resolves once the items are queued
   * and the family changes done; `written` says when the engine holds them.
   * REQUIRES: called in TSN order, each call awaited before the next.
   */
  async apply(tsn: number, payload: Buffer, lacks?: Lacks, onTranslated?: OnTranslated): Promise<Applied> {
    const batch = this.spare.pop() ?? new WriteBatch();
    const outline = translate(payload, tsn, batch);
    onTranslated?.(outline, batch, payload);
    const lsnFirst = this.position.lsnLast + 1;
    await this.createFamilies(outline, tsn, lsnFirst);
    const flags = this.options.flags;
    const lsn = lacks
      ? this.engine.applyAt(batch, lsnFirst, { tag: tsn, include: lacks })
      : this.engine.write(batch, flags ? { tag: tsn } : {});
    const written = lsn.then((assigned) => {
      if (assigned !== lsnFirst) throw new Error(`applier: transaction ${tsn} went to LSN ${assigned}, not ${lsnFirst}`);
    });
    written.then(() => this.recycle(batch), () => undefined); // The caller handles a failure; a later family change reports it too.
    this.lastWritten = written;
    this.position = { tsn, lsnFirst, lsnLast: lsnFirst + batch.length - 1 };
    if (outline.drops.length > 0) await this.dropFamilies(outline, tsn);
    return { tsn, lsnFirst, count: batch.length, written };
  }

  /** Keeps a batch the engine is done with for a later transaction, unless it grew large. */
  private recycle(batch: WriteBatch): void {
    if (this.spare.length >= SPARE_BATCHES || batch.capacityBytes > SPARE_BATCH_BYTES_MAX) return;
    batch.reset();
    this.spare.push(batch);
  }

  /**
   * Creates the families the transaction writes to that do not exist. A family of a collection
   * whose meta family is gone belongs to a collection dropped later (recovery replays its old
   * writes): it is not created, and the engine skips its items.
   */
  private async createFamilies(outline: Outline, tsn: number, lsnFirst: number): Promise<void> {
    let creates: Set<string> | undefined;
    for (const name of outline.families) {
      if (this.families.has(name)) continue;
      creates ??= new Set(outline.creates.map((id) => metaFamily(id)));
      const { collectionId } = parseFamilyName(name)!;
      if (!creates.has(name) && !this.families.has(metaFamily(collectionId))) continue;
      await this.lastWritten; // Families change only between applied transactions.
      if (this.options.flags) {
        await this.options.waitDurable(tsn);
        const flag: FlushFlag = { tag: tsn, lsnFirst, lsnLast: lsnFirst - 1 };
        await this.engine.createFamily(name, { flag });
      } else {
        await this.engine.createFamily(name);
      }
      this.families.add(name);
      this.familiesCreated++;
    }
  }

  /** Drops a collection's families once its drop is applied and durable (never ahead of the log). */
  private async dropFamilies(outline: Outline, tsn: number): Promise<void> {
    await this.lastWritten;
    await this.options.waitDurable(tsn);
    for (const op of outline.drops) {
      for (const number of op.familyNumbers) {
        const name = familyName(op.collectionId, number);
        if (this.families.delete(name)) await this.engine.dropFamily(name);
      }
    }
  }
}
