// The commit pipeline: the one place where TSN order is decided. A planned transaction is
// sequenced (TSN assigned, new fields numbered, record encoded, appended to the binlog) in one
// synchronous step, so binlog order is TSN order; the applier (applier.ts, which recovery
// replays with too) then writes each transaction's items to the engine in that same order, so
// LSNs increase with TSNs.
//
//   write(plan):  sequence ─▶ binlog.append ─▶ [immediate: fdatasync] ─▶ applier ─▶ engine ─▶ ack
//
// Invariant: a transaction is applied (and so visible) only after binlog.append resolved: after
// its fdatasync under `immediate`, after its write under `periodic`.
// Invariant: no table holding TSN t is installed before the binlog is durable through t (the
// engine's flushBarrier is binlog.waitDurable), and no family is created or dropped ahead of
// the binlog either (the applier waits for it).
// Invariant: the overlay holds, per document, the state its latest sequenced transaction
// leaves, until that transaction is applied; planning reads it before the engine.

import assert from 'node:assert/strict';
import type { Engine } from '../storage/index.js';
import { ByteWriter } from '../storage/index.js';
import { Applier, type LogPosition, type OnTranslated } from './applier.js';
import type { Binlog } from './binlog/binlog.js';
import type { Collection } from './catalog.js';
import { DocketError, DocketErrorCode } from './errors.js';
import { beginRecord, encodeCount, encodeCreate, encodeDrop, encodeDropIndex, encodeEntries, encodeIndex, encodeWriteFields, WriteFields, type WriteAction } from './documents/record.js';
import type { Index, IndexDefinition } from './indexes.js';
import * as limits from './limits.js';
import { Watermark } from './watermark.js';

/** A document's state as its latest transaction leaves it. */
export interface DocumentState {
  readonly revision: number;
  readonly deleted: boolean;
  /** Top-level fields in document order. */
  readonly fieldNames: readonly string[];
  /**
   * Per field of fieldNames, its JSON text when known without reading the engine (always for
   * a value whose latest write is not applied yet); undefined where the engine has it.
   */
  readonly values: readonly (Buffer | undefined)[];
}

export interface PlannedWrite {
  readonly kind: 'write';
  readonly action: WriteAction;
  readonly collection: Collection;
  readonly id: string;
  /** Whether the document was live before this write (the collection's count moves by the difference). */
  readonly wasLive: boolean;
  readonly deleted: boolean;
  readonly fieldNames: readonly string[];
  /** The new state's values, per field of fieldNames, where known at planning (for the overlay). */
  readonly values: readonly (Buffer | undefined)[];
  /** Fields written, by name, and their values (parallel). */
  readonly putNames: readonly string[];
  readonly putValues: readonly Buffer[];
  readonly deletes: readonly string[];
  /** Index keys the write changes, per index whose key for the document changes (none for a collection without indexes). */
  readonly entries?: readonly PlannedEntries[];
}

/** Keys one transaction deletes and puts in one index, and for a unique index who holds which values after it. */
export interface PlannedEntries {
  readonly index: Index;
  readonly deletes: readonly Buffer[];
  readonly puts: readonly Buffer[];
  /** Unique index only: per value prefix (hex) the write releases or takes, the id that holds it after (null: none). */
  readonly claims?: readonly (readonly [string, string | null])[];
}

export type PlannedOperation =
  | PlannedWrite
  | { readonly kind: 'create'; readonly collectionId?: number; readonly name: string; readonly definition: (id: number) => string }
  | { readonly kind: 'drop'; readonly collection: Collection }
  /** Defines an index or changes its state; `definition` is given the TSN (a new index's family number comes from it). */
  | { readonly kind: 'index'; readonly collection: Collection; readonly name: string; readonly definition: (tsn: number) => IndexDefinition }
  | { readonly kind: 'dropIndex'; readonly collection: Collection; readonly index: Index }
  /** Index entries without a document write (a background build's step). */
  | { readonly kind: 'entries'; readonly collection: Collection; readonly entries: PlannedEntries };

export type { LogPosition } from './applier.js';

export interface CommitHooks {
  /** Called synchronously at sequencing: the catalog changes in TSN order. */
  readonly onCreate: (id: number, name: string, definition: string) => void;
  readonly onDrop: (collection: Collection) => void;
}

interface Pending {
  readonly tsn: number;
  /** The binlog record's payload (record.ts); translation reads it where it lies. */
  readonly payload: Buffer;
  readonly logged: Promise<void>;
  readonly documentKeys: readonly string[];
  /** Keys of uniqueClaims this transaction set. */
  readonly claimKeys: readonly string[] | undefined;
  readonly resolve: (tsn: number) => void;
  readonly reject: (error: unknown) => void;
  finished: boolean;
}

export function documentKey(collection: Collection, id: string): string {
  return `${collection.id}\u0000${id}`;
}

export class CommitPipeline {
  private lastTsn: number;
  private readonly queue: Pending[] = [];
  private applying: Promise<void> | undefined;
  private readonly overlay = new Map<string, { tsn: number; state: DocumentState }>();
  private readonly locks = new Map<string, Promise<void>>();
  /**
   * Per unique index value (`family NUL prefix-hex`), who holds it as the latest sequenced but
   * unapplied transaction leaves it; the engine answers for values not here. Planning a write
   * to a collection with a unique index holds the collection's unique lock, so its check and
   * its sequencing see no other writer of that collection in between.
   */
  private readonly uniqueClaims = new Map<string, { tsn: number; holder: string | null }>();
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private readonly applier: Applier;
  /** The engine write of the last transaction applied. */
  private lastWritten: Promise<void> = Promise.resolve();
  private failure: DocketError | undefined;
  /** Set while the store is a standby: every write is refused with it (replication/standby.ts). */
  private refusal: DocketError | undefined;
  private closing = false;
  private readonly encoder = new ByteWriter(64 * 1024);
  private readonly writeFields = new WriteFields();
  /**
   * The last TSN such that it and every TSN before it were acknowledged to their writers
   * (logged by the sync policy and applied, so readable). The change feed shows no further.
   */
  readonly acknowledged: Watermark;
  /** Acknowledged TSNs above the watermark, waiting for one below them (engine writes may settle out of order). */
  private readonly acknowledgedAhead = new Set<number>();

  constructor(
    engine: Engine,
    private readonly binlog: Binlog,
    families: Set<string>,
    private readonly hooks: CommitHooks,
    flags: boolean,
    last: LogPosition,
  ) {
    this.lastTsn = last.tsn;
    this.acknowledged = new Watermark(last.tsn);
    this.applier = new Applier(engine, families, { flags, waitDurable: (tsn) => binlog.waitDurable(tsn) }, last);
  }

  get tsn(): number {
    return this.lastTsn;
  }

  /** Who holds a unique index's value as sequenced-but-unapplied transactions leave it: an id, null (released), or undefined (ask the engine). */
  pendingClaim(family: string, prefixHex: string): string | null | undefined {
    return this.uniqueClaims.get(`${family}\u0000${prefixHex}`)?.holder;
  }

  /** The state a document's latest sequenced-but-unapplied transaction leaves, if any. */
  pendingState(key: string): DocumentState | undefined {
    return this.overlay.get(key)?.state;
  }

  checkWritable(): void {
    if (this.failure) throw this.failure;
    if (this.refusal) throw this.refusal;
    if (this.closing) throw new DocketError(DocketErrorCode.CLOSED, 'the store is closing');
  }

  /** A standby refuses writes with `refusal`; undefined takes them again (promotion). */
  refuseWrites(refusal: DocketError | undefined): void {
    this.refusal = refusal;
  }

  /**
   * Standby: appends a record shipped from the primary at its TSN; resolves when the binlog
   * acknowledges it. REQUIRES: a standby (writes refused), tsn === this.tsn + 1.
   */
  appendShipped(tsn: number, payload: Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    assert.equal(tsn, this.lastTsn + 1, `a shipped record of TSN ${tsn} after TSN ${this.lastTsn}`);
    assert(this.refusal !== undefined && this.inFlight === 0, 'only a standby appends shipped records');
    this.lastTsn = tsn;
    return this.binlog.append(tsn, payload);
  }

  /**
   * Standby replay: applies a shipped record, durable in the binlog, through the one applier
   * at the next LSNs; it is acknowledged (readable, in the change feed) once the engine holds
   * it. Resolves once its items are queued. REQUIRES: in TSN order, each awaited.
   */
  async replayShipped(tsn: number, payload: Buffer, onTranslated?: OnTranslated): Promise<void> {
    if (this.failure) throw this.failure;
    assert.equal(tsn, this.applier.last.tsn + 1, `replay of TSN ${tsn} after TSN ${this.applier.last.tsn}`);
    const { written } = await this.applier.apply(tsn, payload, undefined, onTranslated);
    this.lastWritten = written;
    written.then(
      () => this.acknowledge(tsn),
      (error: unknown) => this.fail(error),
    );
  }

  /** The last transaction handed to the applier. */
  get appliedTsn(): number {
    return this.applier.last.tsn;
  }

  /** Refuses what is not yet sequenced; what is finishes (see drain). */
  close(): void {
    this.closing = true;
  }

  /** Waits for a slot, then for the locks of the given documents; resolves with the release. */
  async admit(documentKeys: readonly string[]): Promise<() => void> {
    this.checkWritable();
    while (this.inFlight >= limits.TRANSACTIONS_IN_FLIGHT_MAX) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    this.inFlight++;
    const unlock = await this.lock(documentKeys);
    return unlock;
  }

  private async lock(keys: readonly string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    for (const key of [...new Set(keys)].sort()) {
      const previous = this.locks.get(key);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const tail = (previous ?? Promise.resolve()).then(() => held);
      this.locks.set(key, tail);
      await previous;
      releases.push(() => {
        release();
        if (this.locks.get(key) === tail) this.locks.delete(key);
      });
    }
    return () => releases.forEach((release) => release());
  }

  /**
   * One transaction from locks to TSN: admits it on `keys`, asks `plan` (with the locks held)
   * what to sequence, and sequences it; when `plan` returns nothing or throws, the slot is given
   * back. The locks go as soon as it is sequenced (the overlay then answers for its documents);
   * `sequenced` sees the commit before they go. Resolves with the TSN once applied, or undefined
   * when nothing was sequenced.
   */
  async transact(
    keys: readonly string[],
    plan: () => readonly PlannedOperation[] | undefined | Promise<readonly PlannedOperation[] | undefined>,
    sequenced?: (committed: Promise<number>) => void,
  ): Promise<number | undefined> {
    const release = await this.admit(keys);
    let committed: Promise<number> | undefined;
    try {
      this.checkWritable(); // Closed or failed while this waited for its locks.
      const planned = await plan();
      if (planned === undefined) this.abandon();
      else {
        committed = this.sequence(planned);
        sequenced?.(committed);
      }
    } catch (error) {
      if (committed === undefined) this.abandon();
      throw error;
    } finally {
      release();
    }
    return committed;
  }

  /** Gives the slot back when a transaction ends without being sequenced. */
  abandon(): void {
    this.releaseSlot();
  }

  private releaseSlot(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
    if (this.inFlight === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /**
   * Sequences a planned transaction and resolves with its TSN once it is applied. REQUIRES:
   * admitted, with the locks of every document it writes held; the caller releases them as
   * soon as this returns (the overlay then answers for the documents).
   */
  sequence(planned: readonly PlannedOperation[]): Promise<number> {
    this.checkWritable();
    checkPlan(planned);
    const tsn = this.lastTsn + 1;
    const counted = countedCollections(planned);
    let entryOps = 0;
    for (const op of planned) if (op.kind === 'write' && op.entries) entryOps += op.entries.length;
    beginRecord(this.encoder, planned.length + counted.length + entryOps);
    for (const op of planned) this.encode(op, tsn);
    // Each collection a write touched gets its exact live count as this transaction leaves it.
    for (const collection of counted) encodeCount(this.encoder, collection.id, collection.documents);
    const payload = Buffer.from(this.encoder.view());
    assert(payload.length <= limits.TRANSACTION_SIZE_BYTES_MAX, 'planning bounds the record size');
    this.lastTsn = tsn;
    const logged = this.binlog.append(tsn, payload);
    logged.catch(() => undefined); // The applier handles it.
    const documentKeys: string[] = [];
    let claimKeys: string[] | undefined;
    for (const op of planned) {
      if (op.kind === 'write') documentKeys.push(this.remember(op, tsn));
      const entries = op.kind === 'write' ? op.entries : op.kind === 'entries' ? [op.entries] : undefined;
      if (entries) for (const { index, claims } of entries) for (const [prefix, holder] of claims ?? []) {
        const key = `${index.family}\u0000${prefix}`;
        this.uniqueClaims.set(key, { tsn, holder });
        (claimKeys ??= []).push(key);
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ tsn, payload, logged, documentKeys, claimKeys, resolve, reject, finished: false });
      this.kick();
    });
  }

  /** Appends an operation to the record being built, numbering new fields. REQUIRES: sequencing, in TSN order. */
  private encode(op: PlannedOperation, tsn: number): void {
    if (op.kind === 'create') {
      const definition = op.definition(tsn);
      this.hooks.onCreate(tsn, op.name, definition);
      encodeCreate(this.encoder, tsn, op.name, definition);
    } else if (op.kind === 'drop') {
      const { collection } = op;
      this.hooks.onDrop(collection);
      encodeDrop(this.encoder, { kind: 'drop', collectionId: collection.id, name: collection.name, familyNumbers: collection.familyNumbers(), fieldNames: [...collection.fields.keys()], indexNames: [...collection.indexes.keys()] });
    } else if (op.kind === 'index') {
      const definition = op.definition(tsn);
      op.collection.setIndex(op.name, definition);
      encodeIndex(this.encoder, op.collection.id, op.name, definition.familyNumber, JSON.stringify(definition));
    } else if (op.kind === 'dropIndex') {
      op.collection.setIndex(op.index.name, undefined);
      encodeDropIndex(this.encoder, op.collection.id, op.index.name, op.index.definition.familyNumber);
    } else if (op.kind === 'entries') {
      encodeEntries(this.encoder, op.collection.id, op.entries.index.definition.familyNumber, op.entries.deletes, op.entries.puts);
    } else {
      op.collection.documents += (op.deleted ? 0 : 1) - (op.wasLive ? 1 : 0);
      assert(op.collection.documents >= 0, 'a collection never counts fewer than no documents');
      fillWriteFields(op, this.writeFields);
      encodeWriteFields(this.encoder, op.action, op.collection.id, op.id, op.deleted, this.writeFields);
      if (op.entries) for (const e of op.entries) encodeEntries(this.encoder, op.collection.id, e.index.definition.familyNumber, e.deletes, e.puts);
    }
  }

  private remember(op: PlannedWrite, tsn: number): string {
    const key = documentKey(op.collection, op.id);
    this.overlay.set(key, { tsn, state: { revision: tsn, deleted: op.deleted, fieldNames: op.fieldNames, values: op.values } });
    return key;
  }

  private kick(): void {
    if (this.applying) return;
    this.applying = this.applyAll().finally(() => {
      this.applying = undefined;
      if (this.queue.length > 0 && !this.failure) this.kick();
    });
  }

  /** The applier: one transaction at a time, in TSN order, into the engine's write queue. */
  private async applyAll(): Promise<void> {
    while (this.queue.length > 0) {
      const pending = this.queue[0]!;
      try {
        await pending.logged;
        await this.apply(pending);
        this.queue.shift();
      } catch (error) {
        this.fail(error);
        for (const rest of this.queue.splice(0)) this.finish(rest, error);
        return;
      }
    }
  }

  private async apply(pending: Pending): Promise<void> {
    const { written } = await this.applier.apply(pending.tsn, pending.payload);
    this.lastWritten = written;
    written.then(
      () => this.finish(pending),
      (error: unknown) => {
        this.fail(error);
        this.finish(pending, error);
      },
    );
  }

  private finish(pending: Pending, error?: unknown): void {
    if (pending.finished) return; // A drop can fail after its write settled.
    pending.finished = true;
    for (const key of pending.documentKeys) if (this.overlay.get(key)?.tsn === pending.tsn) this.overlay.delete(key);
    if (pending.claimKeys) for (const key of pending.claimKeys) if (this.uniqueClaims.get(key)?.tsn === pending.tsn) this.uniqueClaims.delete(key);
    this.releaseSlot();
    if (error !== undefined) {
      pending.reject(error);
      return;
    }
    pending.resolve(pending.tsn);
    this.acknowledge(pending.tsn);
  }

  private acknowledge(acknowledged: number): void {
    this.acknowledgedAhead.add(acknowledged);
    let tsn = this.acknowledged.tsn;
    while (this.acknowledgedAhead.delete(tsn + 1)) tsn++;
    if (tsn > this.acknowledged.tsn) this.acknowledged.advance(tsn);
  }

  /** Enters the failed state: every later write is refused until the store is reopened. */
  fail(error: unknown): DocketError {
    if (!this.failure) {
      const detail = error instanceof Error ? error.message : String(error);
      this.failure = new DocketError(DocketErrorCode.READ_ONLY, `the store refuses writes until reopened after: ${detail}`, { cause: error });
    }
    return this.failure;
  }

  /** Waits until every admitted transaction is applied, failed or refused. */
  async drain(): Promise<void> {
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    while (this.applying) await this.applying;
    await this.lastWritten.catch(() => undefined);
  }
}

/** Checks, before anything changes, that the collections are live and their new fields fit. */
function checkPlan(planned: readonly PlannedOperation[]): void {
  const added = new Map<Collection, Set<string>>();
  for (const op of planned) {
    if (op.kind === 'create') continue;
    if (op.kind === 'entries' && op.collection.indexes.get(op.entries.index.name) !== op.entries.index) throw new DocketError(DocketErrorCode.INDEX_NOT_FOUND, `index ${op.entries.index.name} was dropped`);
    if (op.collection.dropped) throw new DocketError(DocketErrorCode.COLLECTION_NOT_FOUND, `collection ${op.collection.name} was dropped`);
    if (op.kind !== 'write') continue;
    let names = added.get(op.collection);
    if (!names) added.set(op.collection, (names = new Set()));
    for (const name of op.fieldNames) if (!op.collection.fields.has(name)) names.add(name);
  }
  for (const [collection, names] of added) {
    if (collection.fields.size + names.size > limits.FIELDS_PER_COLLECTION_MAX) {
      throw new DocketError(DocketErrorCode.COLLECTION_LIMIT, `collection ${collection.name} would have more than ${limits.FIELDS_PER_COLLECTION_MAX} distinct fields`);
    }
  }
}

/** The collections the writes of a transaction touch, each once. */
function countedCollections(planned: readonly PlannedOperation[]): Collection[] {
  const collections: Collection[] = [];
  for (const op of planned) if (op.kind === 'write' && !collections.includes(op.collection)) collections.push(op.collection);
  return collections;
}

/** Fills `fields` with a planned write's numbers, numbering new fields. REQUIRES: sequencing, in TSN order. */
function fillWriteFields(op: PlannedWrite, fields: WriteFields): void {
  const { collection } = op;
  fields.reset();
  const { fieldNames, putNames, putValues } = op;
  // A put writes every field it names: one lookup per field serves both lists.
  const putsAll = putNames === fieldNames;
  for (let i = 0; i < fieldNames.length; i++) {
    let info = collection.fields.get(fieldNames[i]!);
    if (!info) fields.assignments.push((info = collection.assign(fieldNames[i]!)));
    fields.fieldNumbers.push(info.fieldNumber);
    if (!putsAll) continue;
    fields.putFieldNumbers.push(info.fieldNumber);
    fields.putFamilyNumbers.push(info.familyNumber);
    fields.putValues.push(putValues[i]!);
  }
  if (!putsAll) for (let i = 0; i < putNames.length; i++) {
    const info = collection.fields.get(putNames[i]!)!; // A put's field is one of fieldNames.
    fields.putFieldNumbers.push(info.fieldNumber);
    fields.putFamilyNumbers.push(info.familyNumber);
    fields.putValues.push(putValues[i]!);
  }
  for (const name of op.deletes) {
    const info = collection.fields.get(name)!; // A deleted field was in the document.
    fields.deleteFieldNumbers.push(info.fieldNumber);
    fields.deleteFamilyNumbers.push(info.familyNumber);
  }
}
