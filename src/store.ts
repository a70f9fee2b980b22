// The document store: collections, document writes through the commit pipeline, reads at
// engine snapshots, recovery on open, and the epoch keeper that purges the binlog. This is
// the document layer's whole TypeScript API; routes/ calls it and nothing deeper.

import * as path from 'node:path';
import { Engine, LruCache, RealFileSystem, type EngineOptions, type EngineStats, type FileSystem, type RecoveryReport } from '../storage/index.js';
import { Binlog, BINLOG_SEGMENT_SIZE_BYTES_DEFAULT, type BinlogOpenReport, type BinlogStats, type SyncPolicy } from './binlog/binlog.js';
import { ChangeFeed, COLLECTION_ID, type Change, type ChangesOptions, type ChangesPage } from './changes.js';
import { defineCollection, loadCatalog, sameOptions, Collection, type CollectionDefinition, type CollectionOptions, type FieldInfo } from './catalog.js';
import { CommitPipeline, documentKey, type DocumentState, type LogPosition, type PlannedEntries, type PlannedOperation, type PlannedWrite } from './commit.js';
import { checkIndexName, Index, indexFamilyNumber, indexOptionsOf, sameIndex, type IndexDefinition } from './indexes.js';
import { KeyBuilder } from './documents/index-key.js';
import { Query, StoredDoc, type CountResult, type ExplainResult, type FindResult, type QueryReader } from './query.js';
import { DocketError, DocketErrorCode } from './errors.js';
import { assemble, assembleBytes } from './documents/assemble.js';
import { decodeHeader } from './documents/header.js';
import { CATALOG_FAMILY, familyName, fieldKey, fieldKeysOf, metaFamily, metaKey } from './documents/keys.js';
import { isPlainObject, mergePatch, setOwn } from './documents/merge-patch.js';
import { applyJsonPatch, JsonPatch } from './documents/json-patch.js';
import { checkCollectionName, checkId, documentFields, limit, type FieldList } from './documents/validate.js';
import { fieldsOf, JsonText, mergeFields, textOf } from './documents/json-text.js';
import { EpochKeeper, type EpochStats } from './epochs.js';
import { captureCheckpoint, refuseIncompleteCheckpoint, type CheckpointSource } from './checkpoint/checkpoint.js';
import * as limits from './limits.js';
import { ORIGIN, replay, type ReplayProgress, type ReplayReport } from './recovery.js';
import { followCatalog } from './replication/follow.js';

export type Durability = 'passive' | 'double' | 'naive';
export type { SyncPolicy };

export interface StoreOptions {
  readonly directory: string;
  readonly fileSystem?: FileSystem;
  /** Default `immediate`. */
  readonly sync?: SyncPolicy;
  /** Default `passive`. */
  readonly durability?: Durability;
  readonly binlogSegmentSizeBytes?: number;
  /** Engine tuning (memtable size, block cache...). */
  readonly engine?: Partial<Omit<EngineOptions, 'directory' | 'fileSystem' | 'wal' | 'flushBarrier' | 'onBackgroundError'>>;
  /** Bytes of whole documents kept in memory for reads (0: none). Default DOCUMENT_CACHE_BYTES_DEFAULT. */
  readonly documentCacheBytes?: number;
  /** Memory all memtables together hold before the largest is flushed. */
  readonly writeBufferBytes?: number;
  /** How often the epoch keeper runs; 0 turns the timer off (tests call maintainEpochs). */
  readonly epochCheckIntervalMs?: number;
  /** Binlog kept for recovery beyond which the families holding it are flushed on purpose. */
  readonly epochLagBytesMax?: number;
  /** Called as recovery replays the binlog: transactions replayed of those to replay. */
  readonly onReplayProgress?: ReplayProgress;
  /**
   * A standby's store: from the moment it opens it takes no write but its primary's records, so
   * an index build a restart would resume does not start (it would write transactions of its
   * own); promotion (takeWrites) starts them.
   */
  readonly standby?: boolean;
}

export interface WriteConditions {
  /** Only if the document's current revision is this. */
  readonly ifRevision?: number;
  /** Only if the document does not exist (put only). */
  readonly ifAbsent?: boolean;
  /**
   * Only if the document's current revision (undefined: absent) passes this check: for what the
   * two above cannot say, such as If-Match lists and `*`. It runs with the document locked, so
   * the check and the write are one step. NB: a document written earlier in the same batch has
   * revision -1 here (its TSN is not known yet).
   */
  readonly ifCurrent?: (revision: number | undefined) => boolean;
}

export interface WriteResult {
  readonly id: string;
  /** The document's new revision: the TSN of this write. */
  readonly revision: number;
  readonly tsn: number;
  /** A put that created the document (it was absent or deleted); false for replaces, patches, deletes. */
  readonly created: boolean;
}

export interface StoredDocument {
  readonly id: string;
  readonly revision: number;
  /** The document as stored, as JSON text (only the requested fields, if some were named). */
  readonly json: string;
}

export type BatchOperation =
  | ({ readonly op: 'put'; readonly collection: string; readonly id: string; readonly document: unknown } & WriteConditions)
  /** `patch`: a JSON Merge Patch (RFC 7396) as a value or JsonText, or a JsonPatch (RFC 6902). */
  | ({ readonly op: 'patch'; readonly collection: string; readonly id: string; readonly patch: unknown } & Pick<WriteConditions, 'ifRevision' | 'ifCurrent'>)
  | ({ readonly op: 'delete'; readonly collection: string; readonly id: string } & Pick<WriteConditions, 'ifRevision' | 'ifCurrent'>);

export interface ReadOptions {
  /** Only these top-level fields; only their column families are read. */
  readonly fields?: readonly string[];
}

export interface ListOptions extends ReadOptions {
  /** Ids strictly after this one (the `next` of the previous page). */
  readonly after?: string;
  readonly prefix?: string;
  readonly limit?: number;
}

export interface CollectionInfo {
  readonly name: string;
  readonly id: number;
  readonly schema?: Record<string, unknown>;
  readonly columns?: Record<string, string>;
  readonly fields: { name: string; family: string }[];
  readonly families: string[];
  /**
   * Documents, estimated from the entries of the collection's meta family: exact after a
   * full compaction, an overcount while overwrites and deletes are not yet compacted away.
   */
  /** Live documents, exact: kept in the same transactions as the documents. */
  readonly documents: number;
  readonly documentsEstimate: number;
}

export interface StoreStats {
  readonly tsn: number;
  readonly durability: Durability;
  readonly binlog: BinlogStats;
  readonly engine: EngineStats;
  readonly epochs: EpochStats | undefined;
  readonly documentCache: { hits: number; misses: number; hitRatio: number; usageBytes: number; capacityBytes: number; documents: number };
  /** Secondary indexes: how many, and those not ready (a build's progress, a failed build's reason). */
  readonly indexes: { count: number; notReady: Record<string, unknown>[] };
  readonly recovery: { replay: ReplayReport | undefined; binlog: BinlogOpenReport; engine: RecoveryReport };
}

const COLLECTION_LOCK_PREFIX = '\u0001collection\u0000';
/** Held by every writer of a collection with a unique index, from planning through sequencing. */
const UNIQUE_LOCK_PREFIX = '\u0001unique\u0000';
/** Planning saw an index change; the batch is planned again (at most this many times). */
const REPLANS_MAX = 16;

class Replan extends Error {}

export class DocumentStore {
  private closed = false;
  private readonly pipeline: CommitPipeline;
  private readonly epochs: EpochKeeper | undefined;
  private readonly feed: ChangeFeed;
  /** Whole-document JSON by `collectionId revision id` (see limits.DOCUMENT_CACHE_BYTES_DEFAULT). */
  private readonly documentCache: LruCache<string, string>;
  private readonly cacheCounts = { hits: 0, misses: 0 };
  /** Background index builds running. */
  private readonly builds = new Set<Promise<void>>();
  private readonly keyBuilder = new KeyBuilder();

  private constructor(
    private readonly engine: Engine,
    private readonly binlog: Binlog,
    private readonly catalog: Map<string, Collection>,
    families: Set<string>,
    position: LogPosition,
    readonly durability: Durability,
    private readonly replayReport: ReplayReport | undefined,
    epochs: { intervalMs: number; segmentSizeBytes: number; lagBytesMax: number },
    documentCacheBytes: number,
  ) {
    this.documentCache = new LruCache(documentCacheBytes);
    const hooks = {
      onCreate: (id: number, name: string, definition: string) => {
        this.catalog.set(name, new Collection(JSON.parse(definition) as CollectionDefinition));
        this.feed.learn(id, name);
      },
      onDrop: (collection: Collection) => {
        collection.dropped = true;
        this.catalog.delete(collection.name);
      },
    };
    this.pipeline = new CommitPipeline(engine, binlog, families, hooks, durability !== 'naive', position);
    this.feed = new ChangeFeed(binlog, this.pipeline.acknowledged, catalog.values());
    if (durability !== 'naive') this.epochs = new EpochKeeper(engine, binlog, epochs.segmentSizeBytes, epochs.lagBytesMax, epochs.intervalMs, (error) => this.pipeline.fail(error));
  }

  static async open(options: StoreOptions): Promise<DocumentStore> {
    const fileSystem = options.fileSystem ?? new RealFileSystem();
    const durability = options.durability ?? 'passive';
    await fileSystem.mkdir(options.directory);
    await fileSystem.syncDirectory(path.dirname(path.resolve(options.directory)));
    await refuseIncompleteCheckpoint(fileSystem, options.directory);
    const binlog = await Binlog.open({
      directory: path.join(options.directory, 'binlog'),
      fileSystem,
      sync: options.sync ?? { mode: 'immediate' },
      ...(options.binlogSegmentSizeBytes ? { segmentSizeBytes: options.binlogSegmentSizeBytes } : {}),
    });
    // Background failures (a flush or compaction that cannot write) stop writes at once.
    let failed: DocketError | undefined;
    let onFailure = (error: DocketError): void => void (failed ??= error);
    let engine: Engine | undefined;
    try {
      engine = await Engine.open({
        memtableSizeBytes: limits.MEMTABLE_SIZE_BYTES_DEFAULT,
        writeBufferBytes: options.writeBufferBytes ?? limits.WRITE_BUFFER_BYTES_DEFAULT,
        ...options.engine,
        directory: path.join(options.directory, 'engine'),
        fileSystem,
        wal: durability === 'double',
        // The binlog is the only source of truth: an engine WAL batch of a transaction the
        // binlog lost (synced after it under periodic, before a crash) is dropped, not replayed.
        ...(durability === 'double' ? { walReplayTagMax: binlog.lastTsn } : {}),
        ...(durability === 'naive' ? {} : { flushBarrier: (tag: number) => binlog.waitDurable(tag) }),
        onBackgroundError: (error) => onFailure(new DocketError(DocketErrorCode.READ_ONLY, error.message, { cause: error })),
      });
      const families = new Set(engine.listFamilies());
      const { position, report } = durability === 'naive' ? await openNaive(engine, binlog, families) : await replay(engine, binlog, families, options.onReplayProgress);
      const catalog = await loadCatalog(engine);
      const store = new DocumentStore(
        engine, binlog, catalog, families, position, durability, report,
        {
          intervalMs: options.epochCheckIntervalMs ?? limits.EPOCH_CHECK_INTERVAL_MS,
          segmentSizeBytes: options.binlogSegmentSizeBytes ?? BINLOG_SEGMENT_SIZE_BYTES_DEFAULT,
          lagBytesMax: options.epochLagBytesMax ?? limits.EPOCH_LAG_BYTES_MAX,
        },
        options.documentCacheBytes ?? limits.DOCUMENT_CACHE_BYTES_DEFAULT,
      );
      if (failed) store.pipeline.fail(failed);
      onFailure = (error) => void store.pipeline.fail(error);
      if (options.standby) store.pipeline.refuseWrites(new DocketError(DocketErrorCode.STANDBY_READ_ONLY, 'this server is a standby: send writes to its primary'));
      else store.resumeBuilds();
      return store;
    } catch (error) {
      await engine?.close().catch(() => undefined);
      await binlog.close().catch(() => undefined);
      throw error;
    }
  }

  // ---- collections ----

  async createCollection(name: string, options: CollectionOptions = {}): Promise<{ created: boolean; tsn: number }> {
    this.checkOpen();
    checkCollectionName(name);
    defineCollection(0, name, options); // Refuses a bad definition before anything is logged.
    let existing: Collection | undefined;
    const tsn = await this.pipeline.transact(
      [COLLECTION_LOCK_PREFIX + name],
      () => {
        existing = this.catalog.get(name);
        if (existing) {
          if (!sameOptions(existing.definition, options)) throw new DocketError(DocketErrorCode.COLLECTION_EXISTS, `collection ${name} exists with a different definition`);
          return undefined;
        }
        if (this.catalog.size >= limits.COLLECTIONS_MAX) throw new DocketError(DocketErrorCode.COLLECTION_LIMIT, `a store holds at most ${limits.COLLECTIONS_MAX} collections`);
        const reserving = reservedFamilies(defineCollection(0, name, options));
        const reserved = this.reservedFamilies();
        if (reserved + reserving > limits.FAMILIES_RESERVED_MAX) {
          throw new DocketError(DocketErrorCode.COLLECTION_LIMIT, `the collections would reserve ${reserved + reserving} column families, more than ${limits.FAMILIES_RESERVED_MAX} (each reserves 2 + fieldFamiliesMax)`);
        }
        return [{ kind: 'create', name, definition: (id) => JSON.stringify(defineCollection(id, name, options)) }];
      },
      (committed) => {
        const applied = committed.then(() => undefined);
        applied.catch(() => undefined); // Whoever waits on it sees the failure; the creator through committed.
        this.catalog.get(name)!.applied = applied;
      },
    );
    if (tsn !== undefined) return { created: true, tsn };
    await existing!.applied; // A create still in flight: answer once it can be used.
    return { created: false, tsn: existing!.id };
  }

  /** The column families the collections and their indexes reserve between them. */
  private reservedFamilies(): number {
    let reserved = 0;
    for (const collection of this.catalog.values()) reserved += reservedFamilies(collection.definition, collection.indexes.size);
    return reserved;
  }

  async dropCollection(name: string): Promise<{ tsn: number }> {
    this.checkOpen();
    const tsn = await this.pipeline.transact([COLLECTION_LOCK_PREFIX + name], () => [{ kind: 'drop', collection: this.collection(name) }]);
    return { tsn: tsn! };
  }

  listCollections(): CollectionInfo[] {
    this.checkOpen();
    return [...this.catalog.keys()].sort().map((name) => this.collectionInfo(name));
  }

  collectionInfo(name: string): CollectionInfo {
    this.checkOpen();
    const collection = this.collection(name);
    const { id, schema, columns } = collection.definition;
    const fields = [...collection.fields.values()].map((field) => ({ name: field.name, family: familyName(id, field.familyNumber) }));
    const meta = this.engine.familyStats(metaFamily(id));
    const documentsEstimate = meta ? meta.memtableEntries + meta.levels.reduce((sum, level) => sum + level.entries, 0) : 0;
    return { name, id, ...(schema ? { schema } : {}), ...(columns ? { columns } : {}), fields, families: collection.familyNumbers().map((n) => familyName(id, n)), documents: collection.documents, documentsEstimate };
  }

  private collection(name: string): Collection {
    const collection = this.catalog.get(name);
    if (!collection) throw new DocketError(DocketErrorCode.COLLECTION_NOT_FOUND, `no collection named ${JSON.stringify(name)}`);
    return collection;
  }

  // ---- indexes (indexes.ts) ----

  /**
   * Defines an index (idempotent: the same definition again changes nothing). On a collection
   * holding documents it starts `building`: writes keep it from its TSN on, and a background
   * build indexes the documents already there, then marks it `ready`.
   */
  async createIndex(collectionName: string, name: string, body: unknown): Promise<{ created: boolean; tsn: number; index: Record<string, unknown> }> {
    this.checkOpen();
    const collection = this.collection(collectionName);
    checkIndexName(name);
    const options = indexOptionsOf(body);
    await collection.applied;
    let existing: Index | undefined;
    const tsn = await this.pipeline.transact(this.catalogKeys(collection), () => {
      if (collection.dropped) throw new DocketError(DocketErrorCode.COLLECTION_NOT_FOUND, `collection ${collection.name} was dropped`);
      existing = collection.indexes.get(name);
      if (existing) {
        if (!sameIndex(existing.definition, options)) throw new DocketError(DocketErrorCode.INDEX_EXISTS, `index ${name} of ${collection.name} exists with a different definition`);
        return undefined;
      }
      if (collection.indexes.size >= limits.INDEXES_PER_COLLECTION_MAX) throw new DocketError(DocketErrorCode.COLLECTION_LIMIT, `a collection has at most ${limits.INDEXES_PER_COLLECTION_MAX} indexes`);
      if (this.reservedFamilies() + 1 > limits.FAMILIES_RESERVED_MAX) throw new DocketError(DocketErrorCode.COLLECTION_LIMIT, `the collections would reserve more than ${limits.FAMILIES_RESERVED_MAX} column families`);
      // No live document as of the last sequenced write: nothing to build.
      const state = collection.documents === 0 ? 'ready' : 'building';
      return [{ kind: 'index', collection, name, definition: (tsn) => ({ name, fields: options.fields, unique: options.unique, familyNumber: indexFamilyNumber(tsn), state }) }];
    });
    if (tsn === undefined) return { created: false, tsn: existing!.definition.familyNumber - indexFamilyNumber(0), index: existing!.info(collection.documents) };
    const index = collection.indexes.get(name)!;
    if (index.definition.state === 'building' && index.definition.familyNumber === indexFamilyNumber(tsn)) this.startBuild(collection, index);
    return { created: true, tsn, index: index.info(collection.documents) };
  }

  async dropIndex(collectionName: string, name: string): Promise<{ tsn: number }> {
    this.checkOpen();
    const collection = this.collection(collectionName);
    const tsn = await this.pipeline.transact(this.catalogKeys(collection), () => [{ kind: 'dropIndex', collection, index: this.index(collection, name) }]);
    return { tsn: tsn! };
  }

  listIndexes(collectionName: string): Record<string, unknown>[] {
    this.checkOpen();
    const collection = this.collection(collectionName);
    return [...collection.indexes.values()].sort((a, b) => (a.name < b.name ? -1 : 1)).map((index) => index.info(collection.documents));
  }

  indexInfo(collectionName: string, name: string): Record<string, unknown> {
    this.checkOpen();
    const collection = this.collection(collectionName);
    return this.index(collection, name).info(collection.documents);
  }

  /** The locks a change to a collection's indexes holds: its name, and its unique indexes' values. */
  private catalogKeys(collection: Collection): string[] {
    return [COLLECTION_LOCK_PREFIX + collection.name, UNIQUE_LOCK_PREFIX + collection.id];
  }

  private index(collection: Collection, name: string): Index {
    const index = collection.indexes.get(name);
    if (!index) throw new DocketError(DocketErrorCode.INDEX_NOT_FOUND, `collection ${collection.name} has no index ${JSON.stringify(name)}`);
    return index;
  }

  /** Waits for every background build running now (tests and the CLI use it). */
  async indexBuildsIdle(): Promise<void> {
    while (this.builds.size > 0) await Promise.allSettled([...this.builds]);
  }

  /** Starts again every build a close, a crash or (on a standby) promotion left to do, from the first document. */
  private resumeBuilds(): void {
    for (const collection of this.catalog.values()) for (const index of collection.indexes.values()) if (index.definition.state === 'building') this.startBuild(collection, index);
  }

  private startBuild(collection: Collection, index: Index): void {
    const build = this.build(collection, index).catch(() => undefined); // A closed store or a dropped index or collection ends it; a restart begins it again.
    this.builds.add(build);
    void build.finally(() => this.builds.delete(build));
  }

  /**
   * A background build: the collection's documents in id order, INDEX_BUILD_CHUNK_DOCUMENTS at a
   * time, each chunk one transaction through the commit pipeline with the chunk's documents
   * locked, putting each live document's key as its latest sequenced state has it (writes keep
   * the index themselves since its TSN). Then one transaction marks it ready. A unique conflict
   * or an oversized key marks it failed instead.
   */
  private async build(collection: Collection, index: Index): Promise<void> {
    const createdTsn = index.definition.familyNumber - indexFamilyNumber(0);
    // Every write sequenced before the index is in the engine before the walk starts.
    while (this.pipeline.acknowledged.tsn < createdTsn) if (!(await this.pipeline.acknowledged.wait(this.pipeline.acknowledged.tsn, 1000)) && this.closed) return;
    let after: string | undefined;
    for (;;) {
      if (this.closed || collection.indexes.get(index.name) !== index) return;
      const ids: string[] = [];
      for await (const { key } of this.engine.iterator(metaFamily(collection.id), { ...(after !== undefined ? { gt: metaKey(after) } : {}), limit: limits.INDEX_BUILD_CHUNK_DOCUMENTS })) ids.push(key.toString('utf8'));
      if (ids.length === 0) return void (await this.setIndexState(collection, index, 'ready'));
      try {
        await this.buildStep(collection, index, ids);
      } catch (error) {
        if (error instanceof DocketError && (error.code === DocketErrorCode.INDEX_UNIQUE_CONFLICT || error.code === DocketErrorCode.INDEX_KEY_TOO_LARGE)) {
          return void (await this.setIndexState(collection, index, 'failed', error.message));
        }
        throw error;
      }
      index.buildScanned += ids.length;
      after = ids[ids.length - 1];
    }
  }

  private async buildStep(collection: Collection, index: Index, ids: readonly string[]): Promise<void> {
    for (let attempt = 1; attempt <= REPLANS_MAX; attempt++) {
      const epoch = collection.indexEpoch;
      try {
        await this.pipeline.transact([...ids.map((id) => documentKey(collection, id)), UNIQUE_LOCK_PREFIX + collection.id], async () => {
          if (collection.dropped || collection.indexes.get(index.name) !== index) throw new Replan();
          const puts: Buffer[] = [];
          const claims = new Map<string, string | null>();
          const unique: [string, string | null][] = [];
          const only = new Set(index.paths.map((p) => p.top));
          for (const id of ids) {
            let state = await this.currentState(collection, id);
            if (!state || state.deleted) continue;
            state = await this.withValues(collection, id, state, only);
            const key = index.keyOf(id, state.fieldNames, state.values, this.keyBuilder);
            if (index.definition.unique && index.complete(key)) {
              const prefix = key.subarray(0, key.length - Buffer.byteLength(id, 'utf8'));
              const holder = await this.uniqueHolder(index, prefix, claims);
              if (holder !== null && holder !== id) throw uniqueConflict(collection, index, id, holder);
              claims.set(`${index.family}\u0000${prefix.toString('hex')}`, id);
              unique.push([prefix.toString('hex'), id]);
            }
            puts.push(key);
          }
          if (collection.indexEpoch !== epoch) throw new Replan();
          return puts.length > 0 ? [{ kind: 'entries', collection, entries: { index, deletes: [], puts, ...(index.definition.unique ? { claims: unique } : {}) } }] : undefined;
        });
        return;
      } catch (error) {
        if (!(error instanceof Replan)) throw error;
        if (collection.dropped || collection.indexes.get(index.name) !== index) return;
      }
    }
  }

  /** Logs an index's new state (ready or failed), if it is still the index the build began. */
  private async setIndexState(collection: Collection, index: Index, state: 'ready' | 'failed', error?: string): Promise<void> {
    await this.pipeline.transact(this.catalogKeys(collection), () => {
      if (collection.dropped || collection.indexes.get(index.name) !== index) return undefined;
      const definition: IndexDefinition = { ...index.definition, state, ...(error ? { error } : {}) };
      return [{ kind: 'index', collection, name: index.name, definition: () => definition }];
    });
  }

  /**
   * Walks every maintained index and the documents of its collection at one snapshot and lists
   * where they disagree: keys a live document should have and its index lacks, and keys the index
   * holds that no live document has. Empty when every index is exact (the crash sweeps assert it).
   * An index still building may lack keys; it is listed with its state.
   */
  async auditIndexes(): Promise<{ collection: string; index: string; state: string; missing: string[]; extra: string[] }[]> {
    this.checkOpen();
    const report: { collection: string; index: string; state: string; missing: string[]; extra: string[] }[] = [];
    for (const collection of this.catalog.values()) {
      if (collection.maintained.length === 0) continue;
      await collection.applied;
      const snapshot = this.engine.snapshot();
      try {
        const expected = new Map<Index, Set<string>>(collection.maintained.map((index) => [index, new Set<string>()]));
        for await (const { key, value } of this.engine.iterator(metaFamily(collection.id), { snapshot })) {
          const id = key.toString('utf8');
          const doc = await this.assembleAt(collection, id, value, undefined, snapshot);
          if (!doc) continue;
          const fields = fieldsOf(new JsonText(Buffer.from(doc.json, 'utf8')));
          for (const [index, keys] of expected) keys.add(index.keyOf(id, fields.names, fields.values, this.keyBuilder).toString('hex'));
        }
        for (const [index, keys] of expected) {
          const extra: string[] = [];
          for await (const { key } of this.engine.iterator(index.family, { snapshot })) {
            const hex = key.toString('hex');
            if (!keys.delete(hex)) extra.push(hex);
          }
          const missing = [...keys];
          if (missing.length > 0 || extra.length > 0) report.push({ collection: collection.name, index: index.name, state: index.definition.state, missing, extra });
        }
      } finally {
        snapshot.release();
      }
    }
    return report;
  }

  // ---- queries (query.ts) ----

  /** POST /collections/{c}/find. */
  find(collectionName: string, body: unknown): Promise<FindResult> {
    return this.runQuery(collectionName, body, 'find', (query, reader) => query.find(reader));
  }

  explain(collectionName: string, body: unknown): Promise<ExplainResult> {
    return this.runQuery(collectionName, body, 'explain', (query, reader) => query.explain(reader));
  }

  count(collectionName: string, body: unknown): Promise<CountResult> {
    return this.runQuery(collectionName, body, 'count', (query, reader) => query.count(reader));
  }

  /** Parses the query, then runs it on a reader at one snapshot, released however it ends. */
  private async runQuery<T>(collectionName: string, body: unknown, kind: 'find' | 'explain' | 'count', run: (query: Query, reader: QueryReader) => Promise<T>): Promise<T> {
    const { query, reader } = await this.queryOn(collectionName, body, kind);
    try {
      return await run(query, reader);
    } finally {
      reader.release();
    }
  }

  private async queryOn(collectionName: string, body: unknown, kind: 'find' | 'explain' | 'count'): Promise<{ query: Query; reader: QueryReader & { release(): void } }> {
    this.checkOpen();
    const collection = this.collection(collectionName);
    const query = Query.parse(body, kind, [...collection.indexes.values()]);
    await collection.applied;
    const snapshot = this.engine.snapshot();
    const reader = {
      indexKeys: (index: Index, options: { gt?: Buffer; gte?: Buffer; lt?: Buffer; lte?: Buffer; reverse?: boolean }) => this.engine.iterator(index.family, { ...options, snapshot }),
      headers: (after: string | undefined) => this.engine.iterator(metaFamily(collection.id), { ...(after !== undefined ? { gt: metaKey(after) } : {}), snapshot }),
      read: (ids: readonly string[], headers?: readonly Buffer[]) => this.readDocumentsAt(collection, ids, headers, snapshot),
      documents: collection.documents,
      release: () => snapshot.release(),
    };
    return { query, reader };
  }

  /**
   * Documents as stored, as UTF-8 bytes, at one snapshot, for a query: their headers in one
   * engine read, then every field of those not in the document cache in another, each document
   * assembled into one buffer. They go through the document cache as GET's do.
   */
  private async readDocumentsAt(collection: Collection, ids: readonly string[], headerBytes: readonly Buffer[] | undefined, snapshot: { lsn: number; release(): void }): Promise<(StoredDoc | undefined)[]> {
    // In id order, every family's keys are asked for in key order (a document's fields are
    // numbered in the order they first came, which is mostly its own): the engine sorts them
    // per family, and a sorted run costs it one comparison a key.
    const order = ids.map((_, i) => i).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
    const meta = metaFamily(collection.id);
    const sortedHeaders = headerBytes ? order.map((i) => headerBytes[i]) : await this.engine.getMany(order.map((i) => ({ family: meta, key: metaKey(ids[i]!) })), { snapshot });
    const found: (StoredDoc | undefined)[] = new Array<StoredDoc | undefined>(ids.length).fill(undefined);
    const requests: { family: string; key: Buffer }[] = [];
    const reads: { at: number; revision: number; fields: FieldInfo[]; slots: number[] }[] = [];
    for (let j = 0; j < order.length; j++) {
      const bytes = sortedHeaders[j];
      if (bytes === undefined) continue;
      const header = decodeHeader(bytes);
      if (header.deleted) continue;
      const at = order[j]!;
      const id = ids[at]!;
      const cached = this.documentCache.get(`${collection.id} ${header.revision} ${id}`);
      if (cached !== undefined) {
        this.cacheCounts.hits++;
        found[at] = new StoredDoc(id, header.revision, Buffer.from(cached, 'utf8'));
        continue;
      }
      const numbers = header.fieldNumbers;
      const fields = numbers.map((n) => collection.fieldsByNumber.get(n) ?? fieldInfoMissing(collection, n));
      // Asked for in field-number order (which is key order within a family), answered in the
      // document's: `byNumber` is the one, its inverse places each answer.
      const byNumber = numbers.map((_, i) => i);
      if (!ascending(numbers)) byNumber.sort((a, b) => numbers[a]! - numbers[b]!);
      const keys = fieldKeysOf(id, numbers, byNumber);
      const first = requests.length;
      const slots = new Array<number>(numbers.length);
      for (let k = 0; k < byNumber.length; k++) {
        slots[byNumber[k]!] = first + k;
        requests.push({ family: familyName(collection.id, fields[byNumber[k]!]!.familyNumber), key: keys[k]! });
      }
      reads.push({ at, revision: header.revision, fields, slots });
    }
    const values = requests.length === 0 ? [] : await this.engine.getMany(requests, { snapshot });
    for (const { at, revision, fields, slots } of reads) {
      const id = ids[at]!;
      const bytes = assembleBytes(fields, values, slots, (name) => required(undefined, collection, id, name));
      found[at] = new StoredDoc(id, revision, bytes);
      const cacheKey = `${collection.id} ${revision} ${id}`;
      const json = bytes.toString('utf8');
      this.cacheCounts.misses++;
      this.documentCache.set(cacheKey, json, 2 * (json.length + cacheKey.length) + limits.DOCUMENT_CACHE_SLOT_OVERHEAD_BYTES);
    }
    return found;
  }

  // ---- writes ----

  async put(collection: string, id: string, document: unknown, conditions: WriteConditions = {}): Promise<WriteResult> {
    return (await this.batch([{ op: 'put', collection, id, document, ...conditions }]))[0]!;
  }

  async patch(collection: string, id: string, patch: unknown, conditions: Pick<WriteConditions, 'ifRevision' | 'ifCurrent'> = {}): Promise<WriteResult> {
    return (await this.batch([{ op: 'patch', collection, id, patch, ...conditions }]))[0]!;
  }

  async delete(collection: string, id: string, conditions: Pick<WriteConditions, 'ifRevision' | 'ifCurrent'> = {}): Promise<WriteResult> {
    return (await this.batch([{ op: 'delete', collection, id, ...conditions }]))[0]!;
  }

  /** Writes several documents as one transaction: all or nothing, one TSN. */
  async batch(operations: readonly (BatchOperation | CheckedPut)[]): Promise<WriteResult[]> {
    this.checkOpen();
    if (operations.length === 0) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, 'a batch needs at least one operation');
    if (operations.length > limits.BATCH_OPERATIONS_MAX) throw limit(`a batch holds at most ${limits.BATCH_OPERATIONS_MAX} operations`);
    const checked = operations.map((operation) => (operation instanceof CheckedPut ? operation.checked : this.check(operation)));
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.batchOnce(checked);
      } catch (error) {
        if (!(error instanceof Replan) || attempt >= REPLANS_MAX) throw error instanceof Replan ? new DocketError(DocketErrorCode.UNAVAILABLE, 'the collection\'s indexes kept changing while the write was planned; retry') : error;
      }
    }
  }

  private async batchOnce(checked: readonly Checked[]): Promise<WriteResult[]> {
    const collections = [...new Set(checked.map((c) => c.collection))];
    // The index epochs before the locks: an index defined meanwhile makes the plan start again.
    const epochs = collections.map((c) => c.indexEpoch);
    const keys = checked.map(({ collection, operation }) => documentKey(collection, operation.id));
    for (const collection of collections) if (collection.hasUniqueIndex) keys.push(UNIQUE_LOCK_PREFIX + collection.id);
    let created: boolean[] = [];
    const tsn = await this.pipeline.transact(keys, async () => {
      for (const collection of collections) await collection.applied;
      checkLive(checked);
      const { planned, created: creates, sizeBytes } = await this.plan(checked).catch((error: unknown) => {
        checkLive(checked); // A drop sequenced while planning: the plan read dropped families.
        throw error;
      });
      created = creates;
      if (sizeBytes > limits.TRANSACTION_SIZE_BYTES_MAX) throw limit(`a transaction is at most ${limits.TRANSACTION_SIZE_BYTES_MAX} bytes`);
      if (collections.some((c, i) => c.indexEpoch !== epochs[i])) throw new Replan();
      return planned;
    });
    return checked.map(({ operation }, i) => ({ id: operation.id, revision: tsn!, tsn: tsn!, created: created[i]! }));
  }

  /**
   * Runs the checks a put runs before it is sequenced (the collection exists; the id; the
   * document's shape and limits; the collection's JSON Schema) and throws the same coded
   * errors, writing nothing. Returns the checked put, which batch() takes without checking it
   * again, with an upper bound on the bytes it adds to a transaction record (not counting the
   * deletes of a replaced document's old fields, 24 bytes each at most). Bulk loads use it to
   * refuse bad lines one by one and batch only good ones.
   */
  checkPut(collection: string, id: string, document: unknown, fields?: FieldList): CheckedPut {
    this.checkOpen();
    // `fields`: the document's, when the caller has scanned its text already (bulk lines).
    const operation = { op: 'put' as const, collection, id, document };
    const checked = fields === undefined ? this.check(operation) : { collection: this.target(collection, id), operation, fields };
    this.validate(checked.collection, document);
    const sizeBytes = writeBytesBound(id, checked.fields!.names, checked.fields!.values, checked.fields!.names.length);
    return new CheckedPut({ collection: checked.collection, operation, fields: checked.fields, validated: true, sizeBytes }, sizeBytes);
  }

  /** Checks what needs no state: names, ids, the document's shape and limits. */
  private check(operation: BatchOperation): Checked {
    const collection = this.target(operation.collection, operation.id);
    const { ifRevision } = operation;
    if (ifRevision !== undefined && !(Number.isSafeInteger(ifRevision) && ifRevision >= 0)) {
      throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `ifRevision must be a revision (a TSN, an integer), got ${String(ifRevision)}`);
    }
    if (operation.op === 'put') {
      const { document } = operation;
      return { collection, operation, fields: document instanceof JsonText ? fieldsOf(document) : documentFields(document) };
    }
    if (operation.op === 'patch' && operation.patch instanceof JsonPatch) return { collection, operation, fields: undefined };
    const notObject = 'a merge patch must be a JSON object';
    if (operation.op === 'patch' && operation.patch instanceof JsonText) return { collection, operation, fields: fieldsOf(operation.patch, notObject) };
    if (operation.op === 'patch' && !isPlainObject(operation.patch)) throw new DocketError(DocketErrorCode.DOCUMENT_INVALID, notObject);
    return { collection, operation, fields: undefined };
  }

  /** The collection a write names, with its id checked. */
  private target(collection: string, id: string): Collection {
    const target = this.collection(collection);
    checkId(id);
    return target;
  }

  /** The transaction's writes, whether each created its document, and an upper bound on its record's bytes. */
  private async plan(checked: readonly Checked[]): Promise<{ planned: PlannedOperation[]; created: boolean[]; sizeBytes: number }> {
    const local = new Map<string, DocumentState | undefined>();
    const planned: PlannedWrite[] = [];
    const created: boolean[] = [];
    let sizeBytes = 16;
    let claims: Map<string, string | null> | undefined;
    for (const item of checked) {
      const key = documentKey(item.collection, item.operation.id);
      let state = local.has(key) ? local.get(key) : await this.currentState(item.collection, item.operation.id);
      let write = await this.planOne(item, state);
      if (item.collection.maintained.length > 0) {
        // The old values the indexes read, so the record can say which keys go.
        if (state && !state.deleted) state = await this.withValues(item.collection, item.operation.id, state, indexedFields(item.collection));
        const entries = await this.indexEntries(item.collection, item.operation.id, state, write, (claims ??= new Map()));
        if (entries.length > 0) write = { ...write, entries };
      }
      // A checked put's bound was taken when it was checked; a replaced document's deletes add to it.
      sizeBytes += item.sizeBytes !== undefined && write.action === 'put' ? item.sizeBytes + write.deletes.length * 24 : writeBytesBound(write.id, write.putNames, write.putValues, write.fieldNames.length + write.deletes.length);
      for (const e of write.entries ?? []) for (const key of [...e.deletes, ...e.puts]) sizeBytes += key.length + 24;
      // Its revision is this batch's TSN, not known yet: no condition can name it.
      local.set(key, { revision: -1, deleted: write.deleted, fieldNames: write.fieldNames, values: write.values });
      planned.push(write);
      created.push(item.operation.op === 'put' && (state === undefined || state.deleted));
    }
    return { planned, created, sizeBytes };
  }

  private async planOne({ collection, operation, fields, validated }: Checked, state: DocumentState | undefined): Promise<PlannedWrite> {
    const live = state !== undefined && !state.deleted;
    const { id } = operation;
    if (operation.ifRevision !== undefined && (!live || state.revision !== operation.ifRevision)) {
      throw new DocketError(DocketErrorCode.DOCUMENT_CONFLICT, `document ${JSON.stringify(id)} is at revision ${live ? state.revision : 'none (absent)'}, not ${operation.ifRevision}`);
    }
    if (operation.ifCurrent && !operation.ifCurrent(live ? state.revision : undefined)) {
      throw new DocketError(DocketErrorCode.DOCUMENT_CONFLICT, `a precondition failed: document ${JSON.stringify(id)} is at revision ${live ? state.revision : 'none (absent)'}`);
    }
    // Object literals of one shape, not spreads: a spread per document cost ~9 us of the bulk
    // path's event loop (V8 clones spread sources through a slow path).
    if (operation.op === 'put') {
      if (operation.ifAbsent && live) throw new DocketError(DocketErrorCode.DOCUMENT_CONFLICT, `document ${JSON.stringify(id)} exists (revision ${state.revision})`);
      if (!validated) this.validate(collection, operation.document);
      const { names, values } = fields!;
      const deletes = live && state.fieldNames.length > 0 ? removed(state.fieldNames, names) : NONE;
      return { kind: 'write', action: 'put', collection, id, wasLive: live, deleted: false, fieldNames: names, values, putNames: names, putValues: values, deletes };
    }
    if (!live) throw new DocketError(DocketErrorCode.DOCUMENT_NOT_FOUND, `no document ${JSON.stringify(id)} in ${collection.name}`);
    if (operation.op === 'delete') return { kind: 'write', action: 'delete', collection, id, wasLive: live, deleted: true, fieldNames: NONE, values: NONE, putNames: NONE, putValues: NONE, deletes: state.fieldNames };
    const current = await this.withValues(collection, id, state);
    const next = replacement(current.fieldNames, this.patched(collection, current, operation.patch, fields));
    // Only the fields whose text changed are written.
    const before = new Map(current.fieldNames.map((name, i) => [name, current.values[i]!]));
    const putNames: string[] = [];
    const putValues: Buffer[] = [];
    next.fieldNames.forEach((name, i) => {
      if (before.get(name)?.equals(next.values[i]!)) return;
      putNames.push(name);
      putValues.push(next.values[i]!);
    });
    return { kind: 'write', action: 'patch', collection, id, wasLive: live, deleted: false, fieldNames: next.fieldNames, values: next.values, putNames, putValues, deletes: next.deletes };
  }

  /**
   * The index keys a write changes: per maintained index whose key for the document moves, the
   * old key deleted and the new one put; a unique index's new values checked against the batch
   * (`claims`), the pipeline's unapplied writes and the engine.
   * REQUIRES: `state` holds the values of the indexed fields; the collection's unique lock is held if it has a unique index.
   */
  private async indexEntries(collection: Collection, id: string, state: DocumentState | undefined, write: PlannedWrite, claims: Map<string, string | null>): Promise<PlannedEntries[]> {
    const entries: PlannedEntries[] = [];
    const out = this.keyBuilder;
    for (const index of collection.maintained) {
      const oldKey = state && !state.deleted ? index.keyOf(id, state.fieldNames, state.values, out) : undefined;
      const newKey = write.deleted ? undefined : index.keyOf(id, write.fieldNames, write.values, out);
      if (oldKey === newKey || (oldKey && newKey && oldKey.equals(newKey))) continue;
      // A unique index constrains documents that hold its fields: one lacking some field (a `missing` value) never conflicts.
      let unique: [string, string | null][] | undefined;
      if (index.definition.unique) {
        const idBytes = Buffer.byteLength(id, 'utf8');
        unique = [];
        if (oldKey && index.complete(oldKey)) unique.push([oldKey.toString('hex', 0, oldKey.length - idBytes), null]);
        if (newKey && index.complete(newKey)) {
          const prefix = newKey.subarray(0, newKey.length - idBytes);
          const holder = await this.uniqueHolder(index, prefix, claims);
          if (holder !== null && holder !== id) throw uniqueConflict(collection, index, id, holder);
          unique.push([prefix.toString('hex'), id]);
        }
        for (const [prefix, holder] of unique) claims.set(`${index.family}\u0000${prefix}`, holder);
      }
      entries.push({ index, deletes: oldKey ? [oldKey] : [], puts: newKey ? [newKey] : [], ...(unique ? { claims: unique } : {}) });
    }
    return entries;
  }

  /** Who holds a unique index's values: this batch, else the pipeline's unapplied writes, else the engine. */
  private async uniqueHolder(index: Index, prefix: Buffer, claims: Map<string, string | null>): Promise<string | null> {
    const hex = prefix.toString('hex');
    const local = claims.get(`${index.family}\u0000${hex}`);
    if (local !== undefined) return local;
    const pending = this.pipeline.pendingClaim(index.family, hex);
    if (pending !== undefined) return pending;
    for await (const { key } of this.engine.iterator(index.family, { prefix, limit: 1 })) return key.toString('utf8', prefix.length);
    return null;
  }

  /** The fields a patch leaves, checked against the schema. */
  private patched(collection: Collection, current: DocumentState, patch: unknown, patchFields: FieldList | undefined): FieldList {
    const values = current.values as readonly Buffer[]; // withValues filled every one.
    if (patch instanceof JsonPatch) {
      // Only the top-level members the patch names are parsed; the others keep their bytes.
      const result = applyJsonPatch(current.fieldNames, values, patch);
      if (collection.validate) this.validate(collection, JSON.parse(textOf(result)));
      return result;
    }
    if (patch instanceof JsonText) {
      const merged = mergeFields(current.fieldNames, values, patchFields!);
      if (collection.validate) this.validate(collection, JSON.parse(textOf(merged)));
      return merged;
    }
    const document = mergePatch(parseFields(current), patch);
    this.validate(collection, document);
    return documentFields(document);
  }

  /** Holds a document (a value, or JSON text parsed only when the collection has a schema) to the schema. */
  private validate(collection: Collection, document: unknown): void {
    if (!collection.validate) return;
    if (collection.validate(document instanceof JsonText ? document.value() : document)) return;
    const detail = (collection.validate.errors ?? []).slice(0, 3).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`).join('; ');
    throw new DocketError(DocketErrorCode.DOCUMENT_SCHEMA, `the document does not satisfy the schema of ${collection.name}: ${detail}`);
  }

  /** The latest sequenced state: the pipeline's if a write is in flight, else the engine's. */
  private async currentState(collection: Collection, id: string): Promise<DocumentState | undefined> {
    const pending = this.pipeline.pendingState(documentKey(collection, id));
    if (pending) return pending;
    const bytes = await this.engine.get(metaFamily(collection.id), metaKey(id));
    if (!bytes) return undefined;
    const header = decodeHeader(bytes);
    return { revision: header.revision, deleted: header.deleted, fieldNames: header.fieldNumbers.map((n) => fieldNameOf(collection, n)), values: [] };
  }

  /** The state with every field's value, or those of `only` (those not in flight come from the engine). */
  private async withValues(collection: Collection, id: string, state: DocumentState, only?: ReadonlySet<string>): Promise<DocumentState> {
    const wanted = (name: string, i: number): boolean => state.values[i] === undefined && (only === undefined || only.has(name));
    const missing = state.fieldNames.filter(wanted);
    if (missing.length === 0) return state;
    const read = await this.engine.getMany(missing.map((name) => fieldLocation(collection, id, name)));
    let next = 0;
    const values = state.fieldNames.map((name, i) => (wanted(name, i) ? required(read[next++], collection, id, name) : state.values[i]));
    return { ...state, values };
  }

  // ---- reads ----

  async get(collection: string, id: string, options: ReadOptions = {}): Promise<StoredDocument | undefined> {
    this.checkOpen();
    const target = this.collection(collection);
    checkId(id);
    await target.applied;
    const snapshot = this.engine.snapshot();
    try {
      const bytes = await this.engine.get(metaFamily(target.id), metaKey(id), { snapshot });
      return bytes ? await this.assembleAt(target, id, bytes, options.fields, snapshot) : undefined;
    } catch (error) {
      throw droppedWhileReading(target, error);
    } finally {
      snapshot.release();
    }
  }

  async list(collection: string, options: ListOptions = {}): Promise<{ documents: StoredDocument[]; next: string | undefined }> {
    this.checkOpen();
    const target = this.collection(collection);
    const wanted = options.limit ?? limits.LIST_LIMIT_DEFAULT;
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > limits.LIST_LIMIT_MAX) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `limit must be 1..${limits.LIST_LIMIT_MAX}`);
    if (options.after !== undefined) checkId(options.after);
    await target.applied;
    const snapshot = this.engine.snapshot();
    const documents: StoredDocument[] = [];
    let more = false;
    try {
      const range = { ...(options.after !== undefined ? { gt: metaKey(options.after) } : {}), ...(options.prefix ? { prefix: metaKey(options.prefix) } : {}) };
      for await (const { key, value } of this.engine.iterator(metaFamily(target.id), { ...range, snapshot })) {
        if (documents.length === wanted) {
          more = !decodeHeader(value).deleted;
          if (more) break;
          continue;
        }
        const document = await this.assembleAt(target, key.toString('utf8'), value, options.fields, snapshot);
        if (document) documents.push(document);
      }
    } catch (error) {
      throw droppedWhileReading(target, error);
    } finally {
      snapshot.release();
    }
    return { documents, next: more ? documents[documents.length - 1]!.id : undefined };
  }

  private async assembleAt(collection: Collection, id: string, headerBytes: Buffer, fields: readonly string[] | undefined, snapshot: { lsn: number; release(): void }): Promise<StoredDocument | undefined> {
    const header = decodeHeader(headerBytes);
    if (header.deleted) return undefined;
    const cacheKey = fields ? undefined : `${collection.id} ${header.revision} ${id}`;
    const cached = cacheKey === undefined ? undefined : this.documentCache.get(cacheKey);
    if (cached !== undefined) {
      this.cacheCounts.hits++;
      return { id, revision: header.revision, json: cached };
    }
    let names = header.fieldNumbers.map((n) => fieldNameOf(collection, n));
    if (fields) names = names.filter((name) => fields.includes(name));
    const values = await this.engine.getMany(names.map((name) => fieldLocation(collection, id, name)), { snapshot });
    const json = assemble(names.map((name, i) => [name, required(values[i], collection, id, name)]));
    if (cacheKey !== undefined) {
      this.cacheCounts.misses++;
      this.documentCache.set(cacheKey, json, 2 * (json.length + cacheKey.length) + limits.DOCUMENT_CACHE_SLOT_OVERHEAD_BYTES);
    }
    return { id, revision: header.revision, json };
  }

  // ---- the change feed (changes.ts) ----

  /** Acknowledged changes after TSN `since`, whole transactions, in TSN order. */
  async changes(since: number, options: ChangesOptions = {}): Promise<ChangesPage> {
    this.checkOpen();
    const page = await this.feed.page(since, options);
    if (!options.includeDocs) return page;
    // Each document read once a page, as it is now (CouchDB's include_docs reads the same way).
    const docs = new Map<string, Promise<string | null>>();
    const changes: Change[] = [];
    let docBytes = 0;
    for (const change of page.changes) {
      // Past the bound, the page ends where a transaction does; `last` is the one before.
      const previous = changes.at(-1);
      if (docBytes >= limits.CHANGES_DOCS_BYTES_MAX && previous !== undefined && previous.tsn !== change.tsn) return { changes, last: previous.tsn };
      if (!('id' in change) || change.op === 'delete') {
        changes.push(change);
        continue;
      }
      const collectionId = change[COLLECTION_ID]!;
      const key = `${collectionId} ${change.id}`;
      let doc = docs.get(key);
      if (doc === undefined) docs.set(key, (doc = this.documentNow(collectionId, change.collection, change.id)));
      const text = await doc;
      docBytes += text?.length ?? 0;
      changes.push({ ...change, doc: text });
    }
    return { ...page, changes };
  }

  /** The document's JSON as stored now, if the collection with that id still holds it; null otherwise. */
  private async documentNow(collectionId: number, collection: string, id: string): Promise<string | null> {
    const target = this.catalog.get(collection);
    if (!target || target.id !== collectionId || target.dropped) return null;
    try {
      return (await this.get(collection, id))?.json ?? null;
    } catch (error) {
      if (error instanceof DocketError && error.code === DocketErrorCode.COLLECTION_NOT_FOUND) return null; // Dropped meanwhile.
      throw error;
    }
  }

  /** The last acknowledged TSN: where `since=now` starts the change feed. */
  get changesEnd(): number {
    return this.pipeline.acknowledged.tsn;
  }

  /** Resolves true once a transaction after `since` is acknowledged; false on timeout, abort or close. */
  waitForChanges(since: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.feed.waitFor(since, timeoutMs, signal);
  }

  // ---- replication (replication/: the primary's source reads the binlog; a standby appends and replays) ----

  /** The binlog, for the replication source to read and watch. */
  get replicationLog(): Binlog {
    return this.binlog;
  }

  /** A standby refuses every write with `refusal`; undefined takes writes again (promotion). */
  refuseWrites(refusal: DocketError | undefined): void {
    this.pipeline.refuseWrites(refusal);
  }

  /** Standby: appends a shipped record (see CommitPipeline.appendShipped). */
  appendShipped(tsn: number, payload: Buffer): Promise<void> {
    this.checkOpen();
    return this.pipeline.appendShipped(tsn, payload);
  }

  /** Standby: replays a shipped record through the applier, keeping the catalog in step. */
  replayShipped(tsn: number, payload: Buffer): Promise<void> {
    this.checkOpen();
    const applied = (): Promise<void> => this.pipeline.acknowledged.wait(tsn - 1, 2 ** 31 - 1).then(() => undefined);
    return this.pipeline.replayShipped(tsn, payload, (outline, batch, bytes) => followCatalog(this.catalog, this.feed, applied, outline, batch, bytes));
  }

  /** The last transaction replayed (standby) or acknowledged (primary): what reads see. */
  get replayedTsn(): number {
    return this.pipeline.acknowledged.tsn;
  }

  /** The last TSN handed to the applier (a standby's replay stage). */
  get appliedTsn(): number {
    return this.pipeline.appliedTsn;
  }

  /** Resolves true once `tsn` is acknowledged or replayed; false on timeout, abort or close. */
  waitReplayed(tsn: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.pipeline.acknowledged.wait(tsn - 1, timeoutMs, signal);
  }

  /** Promotion: once everything appended is replayed, reloads the catalog and takes writes. */
  async takeWrites(): Promise<void> {
    this.checkOpen();
    await this.pipeline.drain();
    const fresh = await loadCatalog(this.engine);
    this.catalog.clear();
    for (const [name, collection] of fresh) this.catalog.set(name, collection);
    this.pipeline.refuseWrites(undefined);
    this.resumeBuilds(); // The old primary's unfinished builds are this primary's now.
  }

  /** Keeps binlog records from `retainFrom()` on through purges (standbys still need them). */
  retainBinlog(retainFrom: (() => number) | undefined): void {
    if (this.epochs) this.epochs.retainFrom = retainFrom;
  }

  // ---- the rest ----

  /** Purges the binlog below the global epoch and flushes families that hold it back. */
  async maintainEpochs(): Promise<EpochStats | undefined> {
    this.checkOpen();
    return this.epochs?.run();
  }

  get lastTsn(): number {
    return this.pipeline.tsn;
  }

  /**
   * Captures a consistent checkpoint while writes go on (src/checkpoint/): the engine's tables
   * and manifest at one instant and the binlog after its global epoch, through a durable TSN no
   * earlier than any write acknowledged before the call. Its files stay in place until release;
   * write it with writeCheckpoint or streamCheckpoint. `flush` first flushes every memtable
   * (and advances idle families' flags), so the copy holds almost no binlog and opens at once.
   */
  async checkpoint(options: { flush?: boolean } = {}): Promise<CheckpointSource> {
    this.checkOpen();
    if (this.durability === 'naive') throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, 'a store in naive durability has no flush flags and cannot be checkpointed');
    if (options.flush) await this.engine.flush();
    return captureCheckpoint(this.engine, this.binlog);
  }

  stats(): StoreStats {
    this.checkOpen();
    return {
      tsn: this.pipeline.tsn,
      durability: this.durability,
      binlog: this.binlog.stats(),
      engine: this.engine.stats(),
      epochs: this.epochs?.stats(),
      documentCache: this.documentCacheStats(),
      indexes: this.indexStats(),
      recovery: { replay: this.replayReport, binlog: this.binlog.openReport, engine: this.engine.recoveryReport },
    };
  }

  private indexStats(): StoreStats['indexes'] {
    let count = 0;
    const notReady: Record<string, unknown>[] = [];
    for (const collection of this.catalog.values()) {
      count += collection.indexes.size;
      for (const index of collection.indexes.values()) if (!index.ready) notReady.push({ collection: collection.name, ...index.info(collection.documents) });
    }
    return { count, notReady };
  }

  private documentCacheStats(): StoreStats['documentCache'] {
    const { hits, misses } = this.cacheCounts;
    const cache = this.documentCache;
    return { hits, misses, hitRatio: hits + misses === 0 ? 0 : hits / (hits + misses), usageBytes: cache.usage, capacityBytes: cache.capacity, documents: cache.size };
  }

  /** Finishes what is in flight, syncs the binlog, closes the engine. */
  /**
   * Stops taking writes, finishes those in flight, and closes. By default every memtable is
   * flushed first, so the next open replays nothing (a store closed with a full set of
   * memtables replays up to EPOCH_LAG_BYTES_MAX of binlog: measured ~16 s for 100,000
   * comments). A failed store closes without flushing.
   */
  async close(options: { flush?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.epochs?.stop();
    this.pipeline.close();
    await this.indexBuildsIdle();
    await this.pipeline.drain();
    this.pipeline.acknowledged.close();
    await this.epochs?.idle();
    if (options.flush ?? true) await this.engine.flush().catch(() => undefined); // Replay covers what it could not.
    await this.binlog.close().catch(() => undefined);
    await this.engine.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new DocketError(DocketErrorCode.CLOSED, 'the store is closed');
  }
}

interface Checked {
  readonly collection: Collection;
  readonly operation: BatchOperation;
  /** A put's fields as JSON text, or a patch's when it came as text. */
  readonly fields: FieldList | undefined;
  /** A put already held to the collection's schema (by checkPut). */
  readonly validated?: boolean;
  /** checkPut's bound on the put's bytes in a record (its fields written, none deleted). */
  readonly sizeBytes?: number;
}

/**
 * A put that checkPut has checked: batch() takes it as it is, without checking and serialising
 * the document again. It stays valid only for the collection object it was checked against: a
 * drop sequenced since refuses it (COLLECTION_NOT_FOUND), as for any operation.
 */
export class CheckedPut {
  /** @internal Only checkPut makes these. */
  constructor(
    readonly checked: Checked,
    /** An upper bound on the bytes it adds to a transaction record (see checkPut). */
    readonly sizeBytes: number,
  ) {}

  get id(): string {
    return this.checked.operation.id;
  }
}

/** COLLECTION_NOT_FOUND if a collection of the batch has been dropped (its drop is sequenced). */
function checkLive(checked: readonly Checked[]): void {
  const dropped = checked.find(({ collection }) => collection.dropped);
  if (dropped) throw new DocketError(DocketErrorCode.COLLECTION_NOT_FOUND, `collection ${dropped.collection.name} was dropped`);
}

/** The column families a collection may come to use: meta, overflow, its field families and one per index. */
function reservedFamilies(definition: CollectionDefinition, indexes = 0): number {
  return 2 + definition.fieldFamiliesMax + indexes;
}

/** The top-level fields the collection's maintained indexes read. */
function indexedFields(collection: Collection): Set<string> {
  return new Set(collection.maintained.flatMap((index) => index.paths.map((p) => p.top)));
}

function uniqueConflict(collection: Collection, index: Index, id: string, holder: string): DocketError {
  return new DocketError(DocketErrorCode.INDEX_UNIQUE_CONFLICT, `document ${JSON.stringify(id)}: unique index ${index.name} of ${collection.name} already holds these values for document ${JSON.stringify(holder)}`);
}

/** A read that raced its collection's drop saw its families vanish: say what happened. */
function droppedWhileReading(collection: Collection, error: unknown): unknown {
  if (!collection.dropped) return error;
  return new DocketError(DocketErrorCode.COLLECTION_NOT_FOUND, `collection ${collection.name} was dropped`, { cause: error });
}

/** What replacing a document whose fields were `old` with `fields` writes. */
/** An empty list no one changes (the planned write's lists are read only). */
const NONE: readonly never[] = Object.freeze([]);

function replacement(old: readonly string[], fields: FieldList): { fieldNames: readonly string[]; values: readonly Buffer[]; deletes: readonly string[] } {
  const { names, values } = fields;
  return { fieldNames: names, values, deletes: old.length === 0 ? NONE : removed(old, names) };
}

/** The names of `old` that `names` lacks. */
function removed(old: readonly string[], names: readonly string[]): string[] {
  const kept = new Set(names);
  return old.filter((name) => !kept.has(name));
}

function parseFields(state: DocumentState): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  state.fieldNames.forEach((name, i) => setOwn(document, name, JSON.parse(state.values[i]!.toString('utf8'))));
  return document;
}

function fieldNameOf(collection: Collection, fieldNumber: number): string {
  const field = collection.fieldsByNumber.get(fieldNumber);
  if (!field) throw new DocketError(DocketErrorCode.RECOVERY_MISMATCH, `collection ${collection.name} has no field number ${fieldNumber} in its catalog`);
  return field.name;
}

function ascending(numbers: readonly number[]): boolean {
  for (let i = 1; i < numbers.length; i++) if (numbers[i]! <= numbers[i - 1]!) return false;
  return true;
}

function fieldInfoMissing(collection: Collection, fieldNumber: number): never {
  throw new DocketError(DocketErrorCode.RECOVERY_MISMATCH, `collection ${collection.name} has no field number ${fieldNumber} in its catalog`);
}

function fieldLocation(collection: Collection, id: string, name: string): { family: string; key: Buffer } {
  const field = collection.fields.get(name)!;
  return { family: familyName(collection.id, field.familyNumber), key: fieldKey(id, field.fieldNumber) };
}

function required(value: Buffer | undefined, collection: Collection, id: string, name: string): Buffer {
  if (value === undefined) throw new DocketError(DocketErrorCode.RECOVERY_MISMATCH, `document ${JSON.stringify(id)} in ${collection.name} lists field ${JSON.stringify(name)} but it is not stored`);
  return value;
}

/** An upper bound on one write's part of a transaction record. */
function writeBytesBound(id: string, putNames: readonly string[], putValues: readonly Buffer[], fieldCount: number): number {
  let bytes = 3 * id.length + 64 + fieldCount * 24;
  for (let i = 0; i < putNames.length; i++) bytes += putValues[i]!.length + 3 * putNames[i]!.length + 48;
  return bytes;
}

/** Naive mode: no flags, no replay; the engine keeps what it flushed and nothing else. */
async function openNaive(engine: Engine, binlog: Binlog, families: Set<string>): Promise<{ position: LogPosition; report: undefined }> {
  if (!families.has(CATALOG_FAMILY)) {
    await engine.createFamily(CATALOG_FAMILY);
    families.add(CATALOG_FAMILY);
  }
  const lsn = engine.lastLsnAssigned;
  return { position: binlog.lastTsn === 0 && lsn === 0 ? ORIGIN : { tsn: binlog.lastTsn, lsnFirst: lsn + 1, lsnLast: lsn }, report: undefined };
}
