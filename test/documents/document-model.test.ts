// Model-based test of the document store: random command sequences (collections created,
// dropped and re-created; puts, merge patches and deletes with and without conditions; atomic
// batches; reads with field lists; paged lists; epoch maintenance; clean reopens; crashes;
// concurrent writes on overlapping ids) run against DocumentStore on a SimFileSystem and
// against a plain in-memory model (test/helpers/document-model.ts), and every result must agree.
//
// Under the default `immediate` sync every acknowledged write survives a crash, so the model
// does not change across one. Concurrent writes must be consistent with the serial order of
// their TSNs: the committed ones apply in that order, each refused one must be refused with the
// same code at some point of that order, and a list fired among them sees one point, whole.
// Bugs the property found are at the end, each with its failing assertion marked todo.
//
// DOCKET_DOC_MODEL_RUNS sets the number of runs (default 500), DOCKET_DOC_MODEL_SEED the seed
// (default 20261121; `random` for a fresh one). A failure prints the seed, the path, the shrunk
// command list and the command that replays it (DOCKET_DOC_MODEL_SEED, DOCKET_DOC_MODEL_PATH).
// DOCKET_DOC_MODEL_OPS sets the most commands per run (default 60), DOCKET_DOC_MODEL_STATS=1
// prints what the runs did, DOCKET_DOC_MODEL_RACE_DROPS=1 races drops with writes (see below).

import t from 'tap';
import fc from 'fast-check';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { DocumentStore, type BatchOperation, type StoredDocument, type WriteResult } from '../../src/store.js';
import {
  COLLECTION_EXISTS, COLLECTION_NOT_FOUND, CONFLICT, DocumentModel, objectOf, projectJson, sameOptions,
  type CollectionOptionsModel, type Json, type JsonObject, type ModelWrite,
} from '../helpers/document-model.js';
import { checkProperty, formatFailure, timeLimit } from '../helpers/model-check.js';

const RUNS = Number(process.env.DOCKET_DOC_MODEL_RUNS ?? 500);
const SEED_ENV = process.env.DOCKET_DOC_MODEL_SEED;
const PATH = process.env.DOCKET_DOC_MODEL_PATH;
/** Seconds of shrinking after a failure (0: report the first failing case as it is). */
const SHRINK_SECONDS = Number(process.env.DOCKET_DOC_MODEL_SHRINK_SECONDS ?? 60);
/** Most commands in one run (after the two creates that start it). */
const OPS_MAX = Number(process.env.DOCKET_DOC_MODEL_OPS ?? 60);
/**
 * Drops racing the concurrent writes and lists. Off by default until the todo assertions of the
 * tests on drops below pass (the store leaks the engine's DOCKET_ERR_STORAGE_FAMILY_NOT_FOUND,
 * and answers for documents of a dropped collection); DOCKET_DOC_MODEL_RACE_DROPS=1 turns them on.
 */
const RACE_DROPS = process.env.DOCKET_DOC_MODEL_RACE_DROPS !== '0';

const DIRECTORY = '/db';
const COLLECTIONS = ['c0', 'c1'] as const;
const LONG_ID = 'z'.repeat(300);
const FIELD_NAMES = ['title', 'body', 'tags', 'n', 'meta', 'ü', '__proto__', 'constructor'];
const NESTED_KEYS = ['x', 'y', 'é', '__proto__', 'constructor'];
const COLLECTION_OPTIONS: readonly CollectionOptionsModel[] = [
  {},
  { columns: { title: 'text', body: 'text' } },
  { fieldFamiliesMax: 1 },
  { columns: { title: 'text', body: 'text', n: 'small' }, fieldFamiliesMax: 1 },
];

/** Engine tuning per run: memtables small enough that flushes and compactions happen. */
interface Config {
  readonly memtableSizeBytes: number;
  readonly l0CompactionTriggerFiles: number;
}

const EXAMPLE_CONFIG: Config = { memtableSizeBytes: 4096, l0CompactionTriggerFiles: 4 };

function open(fileSystem: SimFileSystem, config: Config = EXAMPLE_CONFIG): Promise<DocumentStore> {
  return DocumentStore.open({
    directory: DIRECTORY,
    fileSystem,
    epochCheckIntervalMs: 0,
    binlogSegmentSizeBytes: 16 * 1024,
    engine: { ...config, autoCompaction: true, blockSizeBytes: 256, tableSizeBytesTarget: 1024, level1SizeBytes: 4096 },
  });
}

// ---- commands ----

/** How a condition's revision is chosen, against the model just before the command. */
type RevisionSpec = 'right' | 'stale' | 'zero' | 'next';

/** An id, or `{ live: k }`: the k-th (mod n) document the model holds now, or 'a' if none. */
type IdSpec = string | { readonly live: number };

type WriteCommand =
  | { readonly op: 'put'; readonly c: number; readonly id: IdSpec; readonly document: JsonObject; readonly ifAbsent?: true; readonly rev?: RevisionSpec }
  | { readonly op: 'patch'; readonly c: number; readonly id: IdSpec; readonly patch: JsonObject; readonly rev?: RevisionSpec }
  | { readonly op: 'delete'; readonly c: number; readonly id: IdSpec; readonly rev?: RevisionSpec };

type Command =
  | { readonly op: 'create'; readonly c: number; readonly options: number }
  /** A drop, and sometimes a create of the same name with these options right after. */
  | { readonly op: 'drop'; readonly c: number; readonly recreate?: number }
  | { readonly op: 'write'; readonly write: WriteCommand }
  | { readonly op: 'batch'; readonly writes: readonly WriteCommand[] }
  | { readonly op: 'get'; readonly c: number; readonly id: string; readonly fields?: readonly string[] }
  | { readonly op: 'list'; readonly c: number; readonly limit?: number; readonly after?: string; readonly prefix?: string; readonly fields?: readonly string[] }
  | { readonly op: 'maintain' }
  | { readonly op: 'reopen' }
  | { readonly op: 'crash'; readonly seed: number }
  /**
   * Writes fired together (a group of one is a single call, a longer one an atomic batch), and
   * `readAfter` microtask turns later a list of each collection. A drop may race them too.
   */
  | { readonly op: 'concurrent'; readonly groups: readonly (readonly WriteCommand[] | { readonly drop: number })[]; readonly readAfter: number }
  | { readonly op: 'check' };

// ---- generators ----

// Mostly a few ids, so that writes meet documents that exist; now and then odd ones.
const racingIdArb = fc.constantFrom('a', 'b', 'c');
const idArb = fc.oneof(
  { weight: 10, arbitrary: racingIdArb },
  { weight: 3, arbitrary: fc.constantFrom('d', 'e') },
  // '😀' sorts before 'ｚ' in UTF-16 but after it in UTF-8, the order lists must follow.
  { weight: 2, arbitrary: fc.constantFrom('__proto__', 'constructor', 'ü/ä', 'ab', '😀', 'ｚ', LONG_ID) },
);
const collectionArb = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) });

// String values: unicode (astral, combining, line separators, quotes, NUL and a lone surrogate,
// which JSON.stringify escapes), and now and then long enough to fill a memtable quickly.
const charArb = fc.constantFrom('a', 'Z', ' ', 'ü', '€', '😀', 'e\u0301', '\u2028', '"', '\\', '\u0000', '\ud800', '/');
const stringArb = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: charArb, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.integer({ min: 100, max: 1500 }).map((n) => 'ŵ'.repeat(n)) },
);
const leafArb: fc.Arbitrary<Json> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: -1000, max: 1000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  stringArb,
);

/** JSON values nested at most `depth` more levels; objects use keys that may be `__proto__`. */
function valueArb(depth: number): fc.Arbitrary<Json> {
  if (depth === 0) return leafArb;
  const inner = valueArb(depth - 1);
  return fc.oneof(
    { weight: 4, arbitrary: leafArb },
    { weight: 1, arbitrary: fc.array(inner, { maxLength: 3 }) },
    { weight: 1, arbitrary: fc.uniqueArray(fc.tuple(fc.constantFrom(...NESTED_KEYS), inner), { maxLength: 3, selector: ([key]) => key }).map(objectOf) },
  );
}

const documentArb = fc.uniqueArray(fc.tuple(fc.constantFrom(...FIELD_NAMES), valueArb(2)), { maxLength: 5, selector: ([key]) => key }).map(objectOf);
// A patch: null removes a field; nested objects merge, and nulls inside them remove nested keys.
const patchArb = fc
  .uniqueArray(fc.tuple(fc.constantFrom(...FIELD_NAMES), fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 5, arbitrary: valueArb(2) })), {
    maxLength: 4,
    selector: ([key]) => key,
  })
  .map(objectOf);
/** `arbitrary` one time in `oneIn`, else undefined. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
}

const revArb = sometimes(fc.constantFrom<RevisionSpec>('right', 'right', 'stale', 'zero', 'next'), 4);
// NB: no ifRevision 0 inside a batch until the bug in the todo test 'ifRevision 0 never matches...'
// is fixed: the store lets it match a document an earlier operation of the batch wrote.
const raceRevArb = sometimes(fc.constantFrom<RevisionSpec>('right', 'right', 'stale', 'next'), 4);
// Fewer conditions in batches, so that more of them commit (one failing operation refuses all).
const batchRevArb = sometimes(fc.constantFrom<RevisionSpec>('right', 'right', 'stale', 'next'), 8);
const fieldsArb = sometimes(fc.uniqueArray(fc.constantFrom(...FIELD_NAMES, 'absent'), { maxLength: 3 }), 3);

// Writes often pick a document that exists when they run, so that patches and deletes find one.
const liveIdArb: fc.Arbitrary<IdSpec> = fc.nat(9).map((live) => ({ live }));
const writeIdArb: fc.Arbitrary<IdSpec> = fc.oneof({ weight: 2, arbitrary: idArb }, { weight: 1, arbitrary: liveIdArb });

function writeArb(ids: fc.Arbitrary<IdSpec>, revisions = revArb): fc.Arbitrary<WriteCommand> {
  const base = { c: collectionArb, id: ids, rev: revisions };
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('put' as const), ...base, document: documentArb, ifAbsent: sometimes(fc.constant(true as const), 5) }) },
    { weight: 5, arbitrary: fc.record({ op: fc.constant('patch' as const), ...base, patch: patchArb }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), ...base }) },
  );
}

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('create' as const), c: fc.nat(1), options: fc.nat(COLLECTION_OPTIONS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drop' as const), c: collectionArb, recreate: fc.oneof({ weight: 3, arbitrary: fc.nat(COLLECTION_OPTIONS.length - 1) }, { weight: 1, arbitrary: fc.constant(undefined) }) }) },
  { weight: 12, arbitrary: fc.record({ op: fc.constant('write' as const), write: writeArb(writeIdArb) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('batch' as const), writes: fc.array(writeArb(fc.oneof(liveIdArb, racingIdArb), batchRevArb), { minLength: 1, maxLength: 4 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('get' as const), c: collectionArb, id: idArb, fields: fieldsArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('list' as const),
      c: collectionArb,
      limit: sometimes(fc.integer({ min: 1, max: 4 }), 2),
      after: sometimes(fc.oneof(idArb, fc.constantFrom('b0', 'ü')), 3),
      prefix: sometimes(fc.constantFrom('', 'a', 'c', 'ü', '_', 'z', 'q'), 3),
      fields: fieldsArb,
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'maintain' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('crash' as const), seed: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('concurrent' as const),
      readAfter: fc.nat(60),
      groups: fc.array(
        fc.oneof(
          { weight: 12, arbitrary: writeArb(racingIdArb).map((w): readonly WriteCommand[] => [w]) },
          { weight: 4, arbitrary: fc.array(writeArb(racingIdArb, raceRevArb), { minLength: 2, maxLength: 3 }) },
          ...(RACE_DROPS ? [{ weight: 1, arbitrary: fc.record({ drop: collectionArb }) }] : []),
        ),
        { minLength: 2, maxLength: 5 },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'check' as const }) },
);

interface Scenario {
  readonly config: Config;
  readonly commands: readonly Command[];
}

const configArb: fc.Arbitrary<Config> = fc.record({ memtableSizeBytes: fc.constantFrom(256, 1024, 4096), l0CompactionTriggerFiles: fc.constantFrom(2, 4) });

// Every run starts by creating both collections, so most commands find one.
const scenarioArb: fc.Arbitrary<Scenario> = fc
  .tuple(configArb, fc.nat(COLLECTION_OPTIONS.length - 1), fc.nat(COLLECTION_OPTIONS.length - 1), fc.array(commandArb, { maxLength: OPS_MAX, size: 'max' }))
  .map(([config, o0, o1, ops]) => ({ config, commands: [{ op: 'create', c: 0, options: o0 }, { op: 'create', c: 1, options: o1 }, ...ops] }));

// ---- helpers ----

/** What the runs did, summed (printed with DOCKET_DOC_MODEL_STATS=1). */
const totals = new Map<string, number>();
const count = (what: string, n = 1): void => void totals.set(what, (totals.get(what) ?? 0) + n);

class Mismatch extends Error {
  override name = 'Mismatch';
}

function expectEqual(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Mismatch(`${what}:\n  store: ${a}\n  model: ${e}`);
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code.startsWith('DOCKET_ERR_')) return code;
  throw new Mismatch(`an uncoded error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}

/** Runs `work`, expecting it to fail with `code`; returns nothing if it does. */
async function expectError(work: () => Promise<unknown>, code: string, what: string): Promise<void> {
  let result: unknown;
  try {
    result = await work();
  } catch (error) {
    expectEqual(codeOf(error), code, `${what}: error code`);
    count(`refused ${code} (${what.split(' ')[0]})`);
    return;
  }
  throw new Mismatch(`${what}: the store answered ${JSON.stringify(result)}, the model expects ${code}`);
}

/** No command takes anywhere near this on the simulated disk: past it, the store hangs. */
const COMMAND_TIMEOUT_MS = 20_000;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  return timeLimit(work, ms, () => new Mismatch(`no progress for ${ms} ms: the store hangs`));
}

function toOperation(write: ModelWrite): BatchOperation {
  const conditions = { ...(write.ifRevision !== undefined && { ifRevision: write.ifRevision }) };
  if (write.op === 'put') return { op: 'put', collection: write.collection, id: write.id, document: write.document, ...conditions, ...(write.ifAbsent && { ifAbsent: true }) };
  if (write.op === 'patch') return { op: 'patch', collection: write.collection, id: write.id, patch: write.patch, ...conditions };
  return { op: 'delete', collection: write.collection, id: write.id, ...conditions };
}

/** One write through put/patch/delete (not batch), so each entry point is exercised. */
function single(store: DocumentStore, write: ModelWrite): Promise<WriteResult> {
  const conditions = { ...(write.ifRevision !== undefined && { ifRevision: write.ifRevision }) };
  if (write.op === 'put') return store.put(write.collection, write.id, write.document, { ...conditions, ...(write.ifAbsent && { ifAbsent: true }) });
  if (write.op === 'patch') return store.patch(write.collection, write.id, write.patch, conditions);
  return store.delete(write.collection, write.id, conditions);
}

/** One of the things a concurrent command fires: a transaction of writes, or a drop. */
type Racer = { readonly writes: ModelWrite[] } | { readonly drop: string };

interface Committed {
  readonly racer: Racer;
  readonly results: WriteResult[] | { tsn: number };
}

const tsnOf = (results: WriteResult[] | { tsn: number }): number => (Array.isArray(results) ? results[0]!.tsn : results.tsn);

function showRacer(racer: Racer): string {
  return 'drop' in racer ? `drop ${racer.drop}` : JSON.stringify(racer.writes.map(toOperation));
}

/** What the model says a racer does at a point of the order: 'commit' or the error code. */
function outcomeOf(state: DocumentModel, racer: Racer): string {
  if ('drop' in racer) return state.collections.has(racer.drop) ? 'commit' : COLLECTION_NOT_FOUND;
  const outcome = state.plan(racer.writes);
  return 'error' in outcome ? outcome.error : 'commit';
}

function showStored(document: StoredDocument | undefined): unknown {
  return document && { id: document.id, revision: document.revision, json: document.json };
}

// ---- the runner ----

class Runner {
  fs = new SimFileSystem();
  store!: DocumentStore;
  model = new DocumentModel();
  /** What the last command did, for the failure message. */
  notes: string[] = [];
  private reopens = 0;

  constructor(readonly config: Config) {}

  async start(): Promise<void> {
    this.store = await open(this.fs, this.config);
  }

  /** A command's write with its condition resolved against the model as it is now. */
  resolve(write: WriteCommand): ModelWrite {
    const collection = COLLECTIONS[write.c]!;
    const id = typeof write.id === 'string' ? write.id : this.liveId(collection, write.id.live);
    const current = this.model.collections.get(collection)?.documents.get(id);
    const base = { collection, id };
    let ifRevision: number | undefined;
    if (write.rev === 'right') ifRevision = current?.revision ?? this.model.tsn;
    else if (write.rev === 'stale') ifRevision = current ? current.revision - 1 : 1;
    else if (write.rev === 'zero') ifRevision = 0;
    else if (write.rev === 'next') ifRevision = this.model.tsn + 1;
    const conditions = ifRevision === undefined ? {} : { ifRevision };
    if (write.op === 'put') return { op: 'put', ...base, document: write.document, ...conditions, ...(write.ifAbsent && { ifAbsent: true }) };
    if (write.op === 'patch') return { op: 'patch', ...base, patch: write.patch, ...conditions };
    return { op: 'delete', ...base, ...conditions };
  }

  private liveId(collection: string, k: number): string {
    const ids = this.model.collections.has(collection) ? this.model.ids(collection) : [];
    return ids.length === 0 ? 'a' : ids[k % ids.length]!;
  }

  /** Whether the binlog has been purged (its first record is past TSN 1). */
  private countPurge(when: string): void {
    if (this.store.stats().binlog.firstTsn > 1) count(`binlog found purged ${when}`);
  }

  async run(command: Command): Promise<void> {
    switch (command.op) {
      case 'create':
        return this.create(COLLECTIONS[command.c]!, COLLECTION_OPTIONS[command.options]!);
      case 'drop':
        await this.drop(COLLECTIONS[command.c]!);
        if (command.recreate !== undefined) await this.create(COLLECTIONS[command.c]!, COLLECTION_OPTIONS[command.recreate]!);
        return;
      case 'write':
        return this.transaction([this.resolve(command.write)], (writes) => single(this.store, writes[0]!).then((result) => [result]));
      case 'batch':
        return this.transaction(command.writes.map((write) => this.resolve(write)), (writes) => this.store.batch(writes.map(toOperation)));
      case 'get':
        return this.get(COLLECTIONS[command.c]!, command.id, command.fields);
      case 'list':
        return this.list(COLLECTIONS[command.c]!, command);
      case 'maintain':
        await this.store.maintainEpochs();
        return this.countPurge('after maintainEpochs');
      case 'reopen':
        // Every other clean reopen closes without flushing, so replay after a clean close is
        // tested as well as a flushed close.
        await this.store.close({ flush: this.reopens++ % 2 === 0 });
        this.store = await open(this.fs, this.config);
        count('records replayed after a reopen', this.store.stats().recovery.replay?.records ?? 0);
        return this.checkAll('after a clean reopen');
      case 'crash':
        return this.crash(command.seed);
      case 'concurrent':
        return this.concurrent(
          command.groups.map((group) => ('drop' in group ? { drop: COLLECTIONS[group.drop]! } : { writes: group.map((write) => this.resolve(write)) })),
          command.readAfter,
        );
      case 'check':
        return this.checkAll('at a check');
    }
  }

  private async create(name: string, options: CollectionOptionsModel): Promise<void> {
    const existing = this.model.collections.get(name);
    if (existing && !sameOptions(existing.options, options)) return expectError(() => this.store.createCollection(name, options), COLLECTION_EXISTS, `create ${name}`);
    const result = await this.store.createCollection(name, options);
    if (existing) {
      expectEqual(result, { created: false, tsn: existing.id }, `create ${name} again with the same options`);
      return;
    }
    expectEqual(result, { created: true, tsn: this.model.tsn + 1 }, `create ${name}`);
    this.model.create(name, options, result.tsn);
    count('collections created');
    // A new or re-created collection is empty.
    expectEqual((await this.store.list(name)).documents.map(showStored), [], `list of the new collection ${name}`);
  }

  private async drop(name: string): Promise<void> {
    if (!this.model.collections.has(name)) return expectError(() => this.store.dropCollection(name), COLLECTION_NOT_FOUND, `drop ${name}`);
    const result = await this.store.dropCollection(name);
    expectEqual(result, { tsn: this.model.tsn + 1 }, `drop ${name}`);
    this.model.drop(name, result.tsn);
    count('collections dropped');
    await expectError(() => this.store.get(name, 'a'), COLLECTION_NOT_FOUND, `get from the dropped ${name}`);
  }

  /** One transaction: the model's error exactly, or a result per write at the next TSN. */
  private async transaction(writes: ModelWrite[], call: (writes: ModelWrite[]) => Promise<WriteResult[]>): Promise<void> {
    const outcome = this.model.plan(writes);
    const what = `${writes.length > 1 ? 'batch' : writes[0]!.op} ${JSON.stringify(writes.map(toOperation))}`;
    if ('error' in outcome) return expectError(() => call(writes), outcome.error, what);
    const results = await call(writes);
    const tsn = this.model.tsn + 1;
    expectEqual(results, outcome.changes.map((change) => ({ id: change.id, revision: tsn, tsn, created: change.created === true })), `${what}: results`);
    this.model.apply(outcome.changes, tsn);
    count(`committed ${writes.length > 1 ? 'batch' : writes[0]!.op}${writes.some((w) => w.ifRevision !== undefined) ? ' ifRevision' : ''}`);
    if (new Set(writes.map((w) => `${w.collection}/${w.id}`)).size < writes.length) count('committed batch writing one document twice');
    // Every write of the transaction reads back as the model has it.
    for (const { collection, id } of writes) await this.get(collection, id, undefined);
  }

  private async get(collection: string, id: string, fields: readonly string[] | undefined): Promise<void> {
    const what = `get ${collection}/${id}${fields ? ` fields ${JSON.stringify(fields)}` : ''}`;
    const model = this.model.collections.get(collection);
    if (!model) return expectError(() => this.store.get(collection, id, fields ? { fields } : {}), COLLECTION_NOT_FOUND, what);
    const stored = await this.store.get(collection, id, fields ? { fields } : {});
    const expected = model.documents.get(id);
    expectEqual(showStored(stored), expected && { id, revision: expected.revision, json: projectJson(expected.document, fields) }, what);
    count(expected ? 'get found' : 'get absent');
  }

  /** A list call, then every following page through `next`, each page exactly the model's. */
  private async list(collection: string, options: { limit?: number; after?: string; prefix?: string; fields?: readonly string[] }): Promise<void> {
    const request = {
      ...(options.limit !== undefined && { limit: options.limit }),
      ...(options.after !== undefined && { after: options.after }),
      ...(options.prefix !== undefined && { prefix: options.prefix }),
      ...(options.fields !== undefined && { fields: options.fields }),
    };
    if (!this.model.collections.has(collection)) return expectError(() => this.store.list(collection, request), COLLECTION_NOT_FOUND, `list ${collection}`);
    let page = request;
    for (let pages = 0; ; pages++) {
      if (pages > 20) throw new Mismatch(`list ${collection} ${JSON.stringify(request)}: more than 20 pages`);
      const actual = await this.store.list(collection, page);
      const expected = this.model.page(collection, page);
      expectEqual({ documents: actual.documents.map(showStored), next: actual.next }, expected, `list ${collection} ${JSON.stringify(page)}`);
      count('list pages');
      if (actual.next === undefined) return;
      page = { ...page, after: actual.next };
    }
  }

  /** Power lost with nothing in flight: under `immediate` sync, everything acknowledged is kept. */
  private async crash(seed: number): Promise<void> {
    const image = this.fs.image(seed, 'drop-unsynced');
    // The old store is abandoned, not closed; its file system refuses all further work.
    this.fs.crashNow();
    this.fs = image;
    this.store = await open(image, this.config);
    count('records replayed after a crash', this.store.stats().recovery.replay?.records ?? 0);
    await this.checkAll('after a crash');
  }

  /**
   * Writes (and drops) fired together. The committed ones must have the next TSNs, densely, and
   * apply in TSN order; each refused one must be refused with the same code at some point of
   * that order; a list fired while they run sees some point of it, whole.
   */
  private async concurrent(racers: Racer[], readAfter: number): Promise<void> {
    const calls = racers.map((racer) => this.fire(racer));
    for (let turn = 0; turn < readAfter; turn++) await Promise.resolve();
    const reads = COLLECTIONS.filter((name) => this.model.collections.has(name)).map((name) => this.readPage(name));
    const settled = await Promise.allSettled(calls);
    const committed: Committed[] = [];
    const refused: { racer: Racer; code: string }[] = [];
    settled.forEach((s, i) => (s.status === 'fulfilled' ? committed.push({ racer: racers[i]!, results: s.value }) : refused.push({ racer: racers[i]!, code: codeOf(s.reason) })));
    const states = this.commitInTsnOrder(committed);
    for (const { racer, code } of refused) {
      const codes = states.map((state) => outcomeOf(state, racer));
      if (!codes.includes(code)) throw new Mismatch(`${showRacer(racer)} was refused with ${code}, but at each point of the TSN order the model says ${JSON.stringify(codes)}`);
    }
    for (const [name, page] of await Promise.all(reads)) {
      const points = states.map((state) => (state.collections.has(name) ? JSON.stringify(state.page(name, { limit: 1000 })) : COLLECTION_NOT_FOUND));
      const seen = points.indexOf(page);
      if (seen < 0) throw new Mismatch(`a list of ${name} during the writes saw ${page}, which no point of the TSN order left:\n${points.join('\n')}`);
      count(seen === 0 ? 'concurrent list saw none of the writes' : seen === states.length - 1 ? 'concurrent list saw all the writes' : 'concurrent list saw some of the writes');
    }
    count('concurrent committed', committed.length);
    count('concurrent refused', refused.length);
    this.notes.push(`concurrent: ${committed.length} committed, ${refused.length} refused`);
    for (const collection of COLLECTIONS) if (this.model.collections.has(collection)) for (const id of ['a', 'b', 'c']) await this.get(collection, id, undefined);
  }

  /** Applies the committed racers to the model in TSN order; returns the model at each point. */
  private commitInTsnOrder(committed: Committed[]): DocumentModel[] {
    committed.sort((a, b) => tsnOf(a.results) - tsnOf(b.results));
    expectEqual(committed.map((c) => tsnOf(c.results)), committed.map((_, i) => this.model.tsn + 1 + i), 'TSNs of the concurrent writes that committed');
    const states = [this.model.copy()];
    for (const { racer, results } of committed) {
      const tsn = tsnOf(results);
      if ('drop' in racer) {
        if (!this.model.collections.has(racer.drop)) throw new Mismatch(`drop ${racer.drop} committed at TSN ${tsn}, but the collection was gone by then`);
        expectEqual(results, { tsn }, `result of drop ${racer.drop}`);
        this.model.drop(racer.drop, tsn);
      } else {
        const outcome = this.model.plan(racer.writes);
        if ('error' in outcome) throw new Mismatch(`${showRacer(racer)} committed at TSN ${tsn}, but after the writes before it the model refuses it with ${outcome.error}`);
        expectEqual(results, outcome.changes.map((change) => ({ id: change.id, revision: tsn, tsn, created: change.created === true })), `results of ${showRacer(racer)}`);
        this.model.apply(outcome.changes, tsn);
      }
      states.push(this.model.copy());
    }
    return states;
  }

  private fire(racer: Racer): Promise<WriteResult[] | { tsn: number }> {
    if ('drop' in racer) return this.store.dropCollection(racer.drop);
    const { writes } = racer;
    return writes.length === 1 ? single(this.store, writes[0]!).then((result) => [result]) : this.store.batch(writes.map(toOperation));
  }

  /** A whole collection as JSON text, or the error code a list got. */
  private readPage(name: string): Promise<[string, string]> {
    return this.store.list(name, { limit: 1000 }).then(
      (page) => [name, JSON.stringify({ documents: page.documents.map(showStored), next: page.next })],
      (error: unknown) => [name, codeOf(error)],
    );
  }

  /** The whole state: collections, every document by list and by get, and the last TSN. */
  async checkAll(when: string): Promise<void> {
    expectEqual(this.store.lastTsn, this.model.tsn, `${when}: last TSN`);
    expectEqual(this.store.listCollections().map((c) => c.name), [...this.model.collections.keys()].sort(), `${when}: collections`);
    for (const [name, collection] of this.model.collections) {
      expectEqual(this.store.collectionInfo(name).id, collection.id, `${when}: id of ${name}`);
      const listed = await this.store.list(name, { limit: 1000 });
      expectEqual({ documents: listed.documents.map(showStored), next: listed.next }, this.model.page(name, { limit: 1000 }), `${when}: everything in ${name}`);
      for (const document of listed.documents) JSON.parse(document.json);
      for (const id of ['a', 'b', '__proto__', LONG_ID]) await this.get(name, id, undefined);
    }
    count('full checks');
  }

  async finish(): Promise<void> {
    await this.checkAll('at the end');
    const { engine, epochs, binlog } = this.store.stats();
    count('engine flushes (since the last open)', engine.flushes);
    count('engine compactions (since the last open)', engine.compactions);
    count('binlog segments purged (since the last open)', epochs?.segmentsPurged ?? 0);
    this.countPurge('at the end');
    count('binlog segments at the end', binlog.segments);
    await this.store.close();
  }

  abandon(): void {
    this.fs.crashNow();
  }
}

async function runScenario({ config, commands }: Scenario): Promise<void> {
  const runner = new Runner(config);
  for (const command of commands) count(`command ${command.op}`);
  try {
    await runner.start();
    for (const [index, command] of commands.entries()) {
      runner.notes = [];
      try {
        await withTimeout(runner.run(command), COMMAND_TIMEOUT_MS);
        expectEqual(runner.store.lastTsn, runner.model.tsn, 'last TSN');
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        throw new Error(`command ${index} ${JSON.stringify(command)} failed${runner.notes.length ? ` (${runner.notes.join('; ')})` : ''}:\n${message}`, { cause: error });
      }
    }
    try {
      await withTimeout(runner.finish(), COMMAND_TIMEOUT_MS);
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      throw new Error(`the final check after all ${commands.length} commands failed:\n${message}`, { cause: error });
    }
  } catch (error) {
    runner.abandon();
    throw error;
  }
}

/** Runs the property; on failure, one message with the seed, the replay command and the commands. */
async function checkModel(numRuns: number, seed: number, path?: string): Promise<string | undefined> {
  const failure = await checkProperty({ arbitrary: scenarioArb, run: runScenario, numRuns, seed, path, shrinkSeconds: SHRINK_SECONDS });
  if (!failure) return undefined;
  const scenario = failure.counterexample;
  return formatFailure(
    'the document store disagrees with the model',
    failure,
    { envPrefix: 'DOCKET_DOC_MODEL', keepEnv: ['DOCKET_DOC_MODEL_OPS', 'DOCKET_DOC_MODEL_RACE_DROPS'], testFile: 'test/documents/document-model.test.ts' },
    [`config: ${JSON.stringify(scenario?.config)}`, 'commands:', ...(scenario?.commands ?? []).map((command, index) => `  ${index}: ${JSON.stringify(command)}`)],
  );
}

// ---- examples ----

async function fresh(): Promise<DocumentStore> {
  const store = await open(new SimFileSystem());
  await store.createCollection('posts');
  return store;
}

t.test('a replace removes the fields the new version lacks', async (t) => {
  const store = await fresh();
  await store.put('posts', 'p', { title: 'first', body: 'text', tags: ['a'] });
  await store.put('posts', 'p', { body: 'second' });
  t.equal((await store.get('posts', 'p'))!.json, '{"body":"second"}');
  t.equal((await store.get('posts', 'p', { fields: ['title', 'tags'] }))!.json, '{}', 'the old fields are not readable by name either');
  await store.close();
});

t.test('a merge patch writes only the header and the fields it changes', async (t) => {
  const store = await fresh();
  const body = 'x'.repeat(2000);
  await store.put('posts', 'p', { title: 'old', body, n: 1 });
  const userBytes = (): number => store.stats().engine.bytesWritten.user;
  let before = userBytes();
  await store.patch('posts', 'p', { n: 2, title: null });
  const patchBytes = userBytes() - before;
  before = userBytes();
  await store.put('posts', 'p', { body, n: 2 });
  const putBytes = userBytes() - before;
  t.ok(putBytes > body.length, `a put of the same document writes the body again (${putBytes} bytes)`);
  t.ok(patchBytes < 64, `the patch wrote ${patchBytes} bytes: the header, one field and one delete, not the body`);
  before = userBytes();
  await store.patch('posts', 'p', { n: 2, body });
  t.ok(userBytes() - before < 32, 'a patch that changes no value writes only the header');
  t.equal((await store.get('posts', 'p'))!.json, `{"body":"${body}","n":2}`);
  await store.close();
});

t.test('__proto__ is stored as data and pollutes nothing', async (t) => {
  const prototypeNames = Object.getOwnPropertyNames(Object.prototype).sort();
  const store = await fresh();
  const document = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"n":1}') as unknown;
  await store.put('posts', '__proto__', document);
  await store.patch('posts', '__proto__', JSON.parse('{"__proto__":{"deeper":{"__proto__":{"polluted":true}}},"constructor":null}'));
  const stored = (await store.get('posts', '__proto__'))!;
  t.equal(stored.json, '{"__proto__":{"polluted":true,"deeper":{"__proto__":{"polluted":true}}},"n":1}');
  const parsed = JSON.parse(stored.json) as Record<string, unknown>;
  t.ok(Object.hasOwn(parsed, '__proto__'), '__proto__ reads back as an own field');
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype has no new property');
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeNames);
  t.same((await store.list('posts')).documents.map((d) => d.id), ['__proto__']);
  await store.close();
});

t.test('revision is the TSN of the last write, and a refused write takes no TSN', async (t) => {
  const store = await open(new SimFileSystem());
  t.same(await store.createCollection('posts'), { created: true, tsn: 1 });
  t.same(await store.put('posts', 'a', { n: 1 }), { id: 'a', revision: 2, tsn: 2, created: true });
  t.same(await store.put('posts', 'b', { n: 1 }), { id: 'b', revision: 3, tsn: 3, created: true });
  t.same(await store.put('posts', 'b', { n: 1 }, { ifRevision: 3 }), { id: 'b', revision: 4, tsn: 4, created: false }, 'a replace does not create');
  await t.rejects(store.put('posts', 'a', { n: 2 }, { ifRevision: 3 }), { code: 'DOCKET_ERR_DOCUMENT_CONFLICT' });
  await t.rejects(store.patch('posts', 'zz', { n: 2 }), { code: 'DOCKET_ERR_DOCUMENT_NOT_FOUND' });
  t.same(await store.patch('posts', 'a', { n: 2 }, { ifRevision: 2 }), { id: 'a', revision: 5, tsn: 5, created: false });
  t.equal((await store.get('posts', 'a'))!.revision, 5);
  t.equal((await store.get('posts', 'b'))!.revision, 4, 'a document no later write touched keeps its revision');
  t.equal(store.lastTsn, 5);
  await store.close();
});

t.test('a batch whose precondition fails changes nothing', async (t) => {
  const store = await fresh();
  await store.put('posts', 'a', { n: 1 });
  const ops: BatchOperation[] = [
    { op: 'put', collection: 'posts', id: 'b', document: { n: 2 } },
    { op: 'patch', collection: 'posts', id: 'a', patch: { n: 3 } },
    { op: 'delete', collection: 'posts', id: 'c' },
  ];
  await t.rejects(store.batch(ops), { code: 'DOCKET_ERR_DOCUMENT_NOT_FOUND' });
  t.same((await store.list('posts')).documents.map((d) => d.json), ['{"n":1}']);
  t.equal(store.lastTsn, 2);
  await store.close();
});

// ---- bugs the property found, each a regression test now ----

const codeOrValue = (r: PromiseSettledResult<unknown>): string => (r.status === 'fulfilled' ? 'ok' : String((r.reason as { code?: unknown }).code));

// Found by the property (seed 20261121): the store plans a document written earlier in the same
// batch at revision 0 (store.ts plan(): local.set(key, { revision: 0, ... })), so ifRevision 0,
// which no stored document ever has, matches it and the batch commits.

t.test('ifRevision 0 never matches, not even a document written earlier in the same batch', async (t) => {
  const store = await fresh();
  const [batch] = await Promise.allSettled([
    store.batch([
      { op: 'put', collection: 'posts', id: 'a', document: { n: 1 } },
      { op: 'put', collection: 'posts', id: 'a', document: { n: 2 }, ifRevision: 0 },
    ]),
  ]);
  t.equal(codeOrValue(batch!), CONFLICT, 'the batch is refused');
  t.equal(await store.get('posts', 'a'), undefined, 'the refused batch wrote nothing');
  await store.close();
});

// Found by the property with DOCKET_DOC_MODEL_RACE_DROPS=1: an operation checks its collection
// when called, then waits for its locks; if the collection is dropped meanwhile, planning reads
// families the drop has already removed, and the engine's error escapes (checkPlan's `dropped`
// check comes only after planning). The same holds for a list that outlives the drop, and a
// batch planned after the drop answers for its other documents instead of the collection.

t.test('a write waiting for its lock while its collection is dropped is refused with COLLECTION_NOT_FOUND', async (t) => {
  const store = await fresh();
  const results = await Promise.allSettled([store.dropCollection('posts'), store.put('posts', 'c', {}), store.put('posts', 'c', {}), store.put('posts', 'c', {})]);
  t.same(results.map(codeOrValue), ['ok', COLLECTION_NOT_FOUND, COLLECTION_NOT_FOUND, COLLECTION_NOT_FOUND], 'no DOCKET_ERR_STORAGE_FAMILY_NOT_FOUND');
  await store.close();
});

t.test('a list that started before its collection was dropped does not fail with a storage error', async (t) => {
  const store = await open(new SimFileSystem(), { memtableSizeBytes: 1024, l0CompactionTriggerFiles: 4 });
  await store.createCollection('posts');
  for (let i = 0; i < 200; i++) await store.put('posts', `k${i}`, { x: i, y: 'y'.repeat(50) });
  const [list, drop] = await Promise.allSettled([store.list('posts', { limit: 1000 }), store.dropCollection('posts')]);
  t.equal(codeOrValue(drop!), 'ok');
  t.ok(['ok', COLLECTION_NOT_FOUND].includes(codeOrValue(list!)), `the list gives its snapshot or COLLECTION_NOT_FOUND, got ${codeOrValue(list!)}`);
  await store.close();
});

t.test('a batch racing the drop of one of its collections is refused with COLLECTION_NOT_FOUND, not a conflict', async (t) => {
  const store = await open(new SimFileSystem());
  await store.createCollection('c0');
  await store.createCollection('c1');
  await store.put('c0', 'a', {});
  const { revision } = await store.put('c1', 'b', {});
  const [remove, drop, batch] = await Promise.allSettled([
    store.delete('c1', 'b'),
    store.dropCollection('c0'),
    store.batch([
      { op: 'put', collection: 'c0', id: 'a', document: {} },
      { op: 'put', collection: 'c1', id: 'b', document: {}, ifRevision: revision },
    ]),
  ]);
  t.same([codeOrValue(remove!), codeOrValue(drop!)], ['ok', 'ok']);
  // Before the drop the batch would commit; after it, c0 is gone. A conflict fits no serial order.
  t.equal(codeOrValue(batch!), COLLECTION_NOT_FOUND, 'the batch is refused for its dropped collection');
  await store.close();
});

// Found while writing this test (not by the property, which awaits every write before close); fixed:
// writes called just before close() are neither finished nor refused as closed. The first
// fails appending to the closed binlog, which turns the pipeline read-only; the rest reach the
// closed engine. Nothing was acknowledged, so nothing was lost; the codes were the bug.

t.test('writes called before close() either commit or are refused with DOCKET_ERR_CLOSED', async (t) => {
  const fs = new SimFileSystem();
  const store = await open(fs);
  await store.createCollection('posts');
  const writes = [store.put('posts', 'a', { n: 1 }), store.put('posts', 'a', { n: 2 }), store.patch('posts', 'a', { m: 1 })];
  const closed = store.close();
  const results = await Promise.allSettled(writes);
  await closed;
  t.same(results.map(codeOrValue).filter((code) => code !== 'ok' && code !== 'DOCKET_ERR_CLOSED'), [], 'no other code');
  const reopened = await open(fs);
  const committed = results.filter((r) => r.status === 'fulfilled').length;
  t.equal(reopened.lastTsn, 1 + committed, 'every write acknowledged before the close is there after it');
  await reopened.close();
});

t.test('the document store agrees with an in-memory model across writes, reads, lists, reopens, crashes and races', async (t) => {
  // A fixed seed by default, so CI is repeatable; DOCKET_DOC_MODEL_SEED=random hunts afresh.
  const seed = SEED_ENV === 'random' ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : SEED_ENV !== undefined ? Number(SEED_ENV) : 20261121;
  const started = Date.now();
  const failure = await checkModel(RUNS, seed, PATH);
  if (failure) {
    const [title, ...details] = failure.split('\n');
    t.fail(title!, { details });
  } else t.pass(`${RUNS} runs agree (seed ${seed}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  if (process.env.DOCKET_DOC_MODEL_STATS === '1') t.comment(JSON.stringify(Object.fromEntries([...totals].sort()), null, 1));
});
