// The change feed: what each acknowledged transaction did, read straight from the binlog a page
// at a time. A page holds whole transactions in TSN order; a change names its collection, which
// the binlog's write records carry only as an id, so the feed keeps the ids' names.
//
// Invariant: a page shows only transactions at or below the commit pipeline's acknowledged
// watermark: every one of them was acknowledged to its writer, so it is logged as the sync
// policy promises (durable under `immediate`, written under `periodic`) and applied, so a
// client that reads a document after seeing its change sees that revision or a later one.
// NB: under `periodic` a power failure may lose acknowledged transactions (the sync interval's
// loss window), and their TSNs are then reused after recovery; a feed client that saw them has
// no way to tell. That is the policy's contract, not the feed's.

import assert from 'node:assert/strict';
import type { Binlog, BinlogRecord } from './binlog/binlog.js';
import { decodeTransaction, type WriteAction } from './documents/record.js';
import { DocketError, DocketErrorCode } from './errors.js';
import * as limits from './limits.js';
import type { Watermark } from './watermark.js';

/** The id of the collection a document change went to; a symbol, so it never reaches JSON. */
export const COLLECTION_ID: unique symbol = Symbol('collectionId');

export interface DocumentChange {
  readonly tsn: number;
  readonly collection: string;
  readonly id: string;
  readonly op: WriteAction;
  /** The document's revision after the change: the TSN. */
  readonly rev: number;
  /**
   * With `includeDocs`, on puts and patches: the document as stored when the page was read, as
   * JSON text (so at its latest revision, which is later than `rev` if it was written again),
   * or null if it has been deleted since (or its collection dropped). Deletions carry none.
   */
  readonly doc?: string | null;
  readonly [COLLECTION_ID]?: number;
}

export interface CollectionChange {
  readonly tsn: number;
  readonly collection: string;
  readonly op: 'create_collection' | 'drop_collection';
}

export type Change = DocumentChange | CollectionChange;

export interface ChangesPage {
  readonly changes: Change[];
  /** The highest TSN the page covers (changes filtered out included), or `since` if none. */
  readonly last: number;
}

export interface ChangesOptions {
  /** Changes wanted (default CHANGES_LIMIT_DEFAULT); a page never splits a transaction. */
  readonly limit?: number;
  /** Only changes to collections of this name (every collection ever so named). */
  readonly collection?: string;
  /** Each put and patch carries `doc`, the document as stored now (the store adds it). */
  readonly includeDocs?: boolean;
}

/** The longest setTimeout node keeps: longer ones fire at once. */
const TIMER_MS_MAX = 2 ** 31 - 1;

/** TSNs of the binlog already searched for drops, as one contiguous range; empty when through < from. */
interface SearchedRange {
  readonly fromTsn: number;
  readonly throughTsn: number;
}

export class ChangeFeed {
  /**
   * Collection id → name, for every collection heard of since open: live at open, created
   * since, or met in the binlog by a page or a search. Ids are TSNs, never reused, so an entry
   * never goes stale. It grows by one per collection created, a few dozen bytes each.
   */
  private readonly names = new Map<number, string>();
  /** Collections unknown at open were dropped before it: their drops are at or below this TSN. */
  private readonly openedTsn: number;
  private searched: SearchedRange = { fromTsn: 1, throughTsn: 0 };

  constructor(
    private readonly binlog: Binlog,
    private readonly acknowledged: Watermark,
    live: Iterable<{ readonly id: number; readonly name: string }>,
  ) {
    for (const { id, name } of live) this.names.set(id, name);
    this.openedTsn = binlog.lastTsn;
  }

  /** REQUIRES: called when a collection is created (at sequencing is early enough). */
  learn(id: number, name: string): void {
    this.names.set(id, name);
  }

  /**
   * The changes of acknowledged transactions after `since`: at least `limit` of them unless the
   * acknowledged log ends first or the call reached its scan bounds (limits.ts), and never part
   * of a transaction. CHANGES_PURGED if the binlog no longer holds TSN since + 1.
   */
  async page(since: number, options: ChangesOptions = {}): Promise<ChangesPage> {
    checkSince(since);
    const limit = checkLimit(options.limit ?? limits.CHANGES_LIMIT_DEFAULT);
    const throughTsn = this.acknowledged.tsn;
    this.checkHeld(since);
    if (since >= throughTsn) return { changes: [], last: since };
    const changes: Change[] = [];
    let last = since;
    let scannedBytes = 0;
    try {
      for await (const record of this.binlog.read(since + 1, { throughTsn })) {
        await this.collect(record, options.collection, changes);
        last = record.tsn;
        scannedBytes += record.sizeBytes;
        const full = changes.length >= limit || last - since >= limits.CHANGES_SCAN_TRANSACTIONS_MAX || scannedBytes >= limits.CHANGES_SCAN_BYTES_MAX;
        if (full) break;
      }
    } catch (error) {
      this.checkHeld(since, error); // A purge that overlapped the read.
      throw error;
    }
    return { changes, last };
  }

  /** Resolves true once a transaction after `since` is acknowledged; false on timeout, abort or close. */
  waitFor(since: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    assert(Number.isSafeInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= TIMER_MS_MAX, `a wait of ${timeoutMs} ms`);
    return this.acknowledged.wait(since, timeoutMs, signal);
  }

  /** CHANGES_PURGED unless the binlog still holds every TSN after `since`. */
  private checkHeld(since: number, cause?: unknown): void {
    const firstTsn = this.binlog.firstTsn;
    if (since >= firstTsn - 1) return;
    const message = `changes after TSN ${since} were purged; the oldest TSN available is ${firstTsn} (ask for since=${firstTsn - 1} or later)`;
    throw new DocketError(DocketErrorCode.CHANGES_PURGED, message, cause === undefined ? undefined : { cause });
  }

  /** Appends the changes of one transaction that pass the filter. */
  private async collect(record: BinlogRecord, collection: string | undefined, changes: Change[]): Promise<void> {
    const tsn = record.tsn;
    for (const op of decodeTransaction(record.payload).ops) {
      let change: Change;
      // Bookkeeping in the same transaction, not a change: counts, index definitions and entries.
      if (op.kind === 'count' || op.kind === 'index' || op.kind === 'dropIndex' || op.kind === 'entries') continue;
      if (op.kind === 'write') {
        change = { tsn, collection: await this.nameOf(op.collectionId, tsn), id: op.id, op: op.action, rev: tsn, [COLLECTION_ID]: op.collectionId };
      } else {
        this.learn(op.collectionId, op.name);
        change = { tsn, collection: op.name, op: op.kind === 'create' ? 'create_collection' : 'drop_collection' };
      }
      if (collection === undefined || change.collection === collection) changes.push(change);
    }
  }

  /** The name of the collection a write at `tsn` went to. */
  private async nameOf(collectionId: number, tsn: number): Promise<string> {
    const known = this.names.get(collectionId);
    if (known !== undefined) return known;
    await this.searchForDrop(collectionId, tsn);
    const found = this.names.get(collectionId);
    if (found !== undefined) return found;
    const message = `binlog: TSN ${tsn} writes to collection id ${collectionId}, which is not in the catalog and neither created before it nor dropped after it in the log`;
    throw new DocketError(DocketErrorCode.BINLOG_CORRUPTION, message);
  }

  /**
   * A collection unknown here was created and dropped before this store opened, its create
   * since purged; its drop, after the write at `tsn`, carries its name. Reads ahead for it,
   * learning every name met, and remembers what it searched, so that no TSN is searched twice
   * while the searches stay contiguous: in all, about one pass over the log held at open.
   */
  private async searchForDrop(collectionId: number, tsn: number): Promise<void> {
    const before = this.searched;
    const known = tsn + 1 >= before.fromTsn && tsn + 1 <= before.throughTsn + 1;
    const fromTsn = known ? before.throughTsn + 1 : tsn + 1;
    let throughTsn = fromTsn - 1;
    if (fromTsn <= this.openedTsn) {
      for await (const record of this.binlog.read(fromTsn, { throughTsn: this.openedTsn })) {
        for (const op of decodeTransaction(record.payload).ops) if (op.kind === 'create' || op.kind === 'drop') this.learn(op.collectionId, op.name);
        throughTsn = record.tsn;
        if (this.names.has(collectionId)) break;
      }
    }
    const read = known ? { fromTsn: before.fromTsn, throughTsn } : { fromTsn, throughTsn };
    this.searched = joinRanges(this.searched, read);
  }
}

/** Both ranges as one if they touch, else the longer: forgetting a searched range is safe, inventing one is not. */
function joinRanges(a: SearchedRange, b: SearchedRange): SearchedRange {
  const touch = a.fromTsn <= b.throughTsn + 1 && b.fromTsn <= a.throughTsn + 1;
  const empty = (range: SearchedRange): boolean => range.throughTsn < range.fromTsn;
  if (touch && !empty(a) && !empty(b)) return { fromTsn: Math.min(a.fromTsn, b.fromTsn), throughTsn: Math.max(a.throughTsn, b.throughTsn) };
  return b.throughTsn - b.fromTsn > a.throughTsn - a.fromTsn ? b : a;
}

function checkSince(since: number): void {
  if (Number.isSafeInteger(since) && since >= 0) return;
  throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `since must be a TSN (an integer of at least 0), got ${String(since)}`);
}

function checkLimit(limit: number): number {
  if (Number.isInteger(limit) && limit >= 1 && limit <= limits.CHANGES_LIMIT_MAX) return limit;
  throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `limit must be 1..${limits.CHANGES_LIMIT_MAX}, got ${String(limit)}`);
}
