// A seeded workload for crash tests of the document layer, and the checker that holds a
// recovered store against it. Every transaction carries a marker document ("m<write>") that no
// later write touches, so the recovered store tells exactly which transactions survived and
// their TSNs (a document's revision is its TSN). The checker then demands:
//   - the surviving TSNs are exactly 1..R (a prefix of history, no holes);
//   - every acknowledged transaction survived (under `immediate`), or at least every one the
//     binlog had made durable (under `periodic`);
//   - the whole recovered state equals a model that applies the surviving transactions in TSN
//     order (so no transaction is partial, and replace/patch/delete translated right).

import { mergePatch } from '../../src/documents/merge-patch.js';
import type { BatchOperation, DocumentStore, StoreOptions } from '../../src/store.js';
import { mulberry32 } from '../../storage/sim-file-system.js';

export const MAIN = 'main';
export const SIDE = 'side';
const SHARED_IDS = ['s0', 's1', 's2', 's3', 's4', 's5'];
const FIELDS = ['title', 'body', 'score', 'tags', 'author', 'meta', 'flag', 'count', 'note', 'extra', 'deep', 'last'];

export const STORE_OPTIONS: Omit<StoreOptions, 'fileSystem' | 'directory'> = {
  binlogSegmentSizeBytes: 8 * 1024,
  epochCheckIntervalMs: 0,
  epochLagBytesMax: 16 * 1024,
  engine: { memtableSizeBytes: 4 * 1024, l0CompactionTriggerFiles: 2, l0SlowdownTriggerFiles: 8, l0StopTriggerFiles: 12, level1SizeBytes: 16 * 1024, tableSizeBytesTarget: 8 * 1024 },
};

/** One step: a transaction (batch), or a collection change done alone with writers paused. */
export type Step = { kind: 'batch'; write: number; ops: BatchOperation[] } | { kind: 'create-side' } | { kind: 'drop-side' } | { kind: 'epochs' };

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function document(random: Random, write: number, big: boolean): Record<string, unknown> {
  const doc: Record<string, unknown> = { w: write };
  for (const name of FIELDS) {
    if (random() < 0.45) continue;
    const roll = random();
    doc[name] = roll < 0.3 ? `${name}-${write}-${'x'.repeat(Math.floor(random() * (big ? 400 : 40)))}` : roll < 0.6 ? Math.floor(random() * 1000) : { a: write, b: [1, 'two', { c: null }], d: random() < 0.5 ? 'ü€😀' : null };
  }
  return doc;
}

function patch(random: Random, write: number): Record<string, unknown> {
  const body: Record<string, unknown> = { w: write };
  for (const name of FIELDS) {
    const roll = random();
    if (roll < 0.7) continue;
    body[name] = roll < 0.8 ? null : roll < 0.9 ? { a: write, d: null, e: 'patched' } : `p${write}`;
  }
  return body;
}

/** Steps of a workload: groups of concurrent batches, with collection changes between. */
export function workload(seed: number, batches: number): Step[][] {
  const random = mulberry32(seed);
  const groups: Step[][] = [[{ kind: 'create-side' }]];
  let sideExists = true;
  let write = 0;
  while (write < batches) {
    const group: Step[] = [];
    const width = 1 + Math.floor(random() * 4);
    for (let i = 0; i < width && write < batches; i++) group.push(batchStep(random, ++write, sideExists));
    groups.push(group);
    const roll = random();
    if (roll < 0.08) groups.push([{ kind: sideExists ? 'drop-side' : 'create-side' }]), (sideExists = !sideExists);
    else if (roll < 0.3) groups.push([{ kind: 'epochs' }]);
  }
  // Flush the laggards, then purge what they held back.
  groups.push([{ kind: 'epochs' }], [{ kind: 'epochs' }]);
  return groups;
}

function batchStep(random: Random, write: number, sideExists: boolean): Step {
  const ops: BatchOperation[] = [{ op: 'put', collection: MAIN, id: `m${write}`, document: document(random, write, false) }];
  const big = random() < 0.15;
  for (let i = 0; big && i < 10; i++) ops.push({ op: 'put', collection: MAIN, id: `b${write}-${i}`, document: document(random, write, true) });
  const touched = new Set<string>();
  for (let i = Math.floor(random() * 4); i > 0; i--) {
    const collection = sideExists && random() < 0.3 ? SIDE : MAIN;
    const id = pick(random, SHARED_IDS);
    if (touched.has(`${collection}/${id}`)) continue;
    touched.add(`${collection}/${id}`);
    const roll = random();
    if (roll < 0.5) ops.push({ op: 'put', collection, id, document: document(random, write, false) });
    else if (roll < 0.8) ops.push({ op: 'patch', collection, id, patch: patch(random, write) });
    else ops.push({ op: 'delete', collection, id });
  }
  return { kind: 'batch', write, ops };
}

export interface RunResult {
  /** TSN of every acknowledged transaction, by write number (collection changes: by -index). */
  readonly acknowledged: Map<number, number>;
  /** TSNs of collection changes, known because they run alone: tsn → the change. */
  readonly changes: Map<number, 'create-side' | 'drop-side'>;
  /** The binlog's durable TSN when the run ended (crashed or not). */
  readonly durableTsn: number;
  readonly crashed: boolean;
}

/**
 * Runs the workload until it ends or the first error (a simulated crash, usually).
 * `beforeGroup` is called before each group starts, with the transactions acknowledged so far.
 */
export async function run(store: DocumentStore, groups: Step[][], setup: () => Promise<void>, errors: unknown[] = [], beforeGroup?: (index: number, acknowledged: ReadonlyMap<number, number>) => void): Promise<RunResult> {
  const acknowledged = new Map<number, number>();
  const changes = new Map<number, 'create-side' | 'drop-side'>();
  let crashed = false;
  try {
    await setup();
    for (const [index, group] of groups.entries()) {
      beforeGroup?.(index, acknowledged);
      const outcomes = await Promise.allSettled(group.map((step) => runStep(store, step, acknowledged, changes)));
      for (const outcome of outcomes) if (outcome.status === 'rejected') errors.push(outcome.reason);
      const failure = outcomes.find((outcome) => outcome.status === 'rejected' && !isExpected(outcome.reason));
      if (failure) throw (failure as PromiseRejectedResult).reason;
    }
  } catch (error) {
    if (!errors.includes(error)) errors.push(error);
    crashed = true;
  }
  let durableTsn = 0;
  try {
    durableTsn = store.stats().binlog.durableTsn;
  } catch {
    durableTsn = 0;
  }
  return { acknowledged, changes, durableTsn, crashed };
}

/** A refused precondition (the shared document was deleted by another writer) is part of the workload. */
function isExpected(error: unknown): boolean {
  return (error as { code?: string }).code === 'DOCKET_ERR_DOCUMENT_NOT_FOUND';
}

async function runStep(store: DocumentStore, step: Step, acknowledged: Map<number, number>, changes: Map<number, 'create-side' | 'drop-side'>): Promise<void> {
  if (step.kind === 'epochs') {
    await store.maintainEpochs();
    return;
  }
  if (step.kind === 'batch') {
    const [result] = await store.batch(step.ops);
    acknowledged.set(step.write, result!.tsn);
    return;
  }
  // Alone: its TSN is the next one, whether or not it is acknowledged.
  changes.set(store.lastTsn + 1, step.kind);
  if (step.kind === 'create-side') await store.createCollection(SIDE);
  else await store.dropCollection(SIDE);
}

type State = Map<string, Map<string, unknown>>;

/** The recovered store against the workload; a description of the first problem, or undefined. */
export async function verify(store: DocumentStore, groups: Step[][], result: RunResult, setupTsns: number, durableRequired: number): Promise<string | undefined> {
  const batches = new Map<number, BatchOperation[]>();
  for (const group of groups) for (const step of group) if (step.kind === 'batch') batches.set(step.write, step.ops);
  const recovered = await readAll(store);
  // Each collection's exact count, recovered from the log like the documents, matches them.
  for (const [name, docs] of recovered) {
    const { documents } = store.collectionInfo(name);
    if (documents !== docs.size) return `collection ${name} counts ${documents} documents but holds ${docs.size}`;
  }
  // Which transactions survived, and their TSNs.
  const tsnOf = new Map<number, number>();
  for (const [id, json] of recovered.get(MAIN) ?? new Map<string, { revision: number; json: string }>()) {
    if (id.startsWith('m')) tsnOf.set(Number(id.slice(1)), json.revision);
  }
  const history = new Map<number, { write: number } | { change: 'create-side' | 'drop-side' }>();
  for (const [write, tsn] of tsnOf) history.set(tsn, { write });
  // The store continues after the last transaction its binlog kept: that is the history's end.
  const last = store.lastTsn;
  for (const [tsn, change] of result.changes) if (tsn <= last) history.set(tsn, { change });
  for (let tsn = setupTsns + 1; tsn <= last; tsn++) if (!history.has(tsn)) return `TSN ${tsn} left no trace but TSN ${last} survived (not a prefix)`;
  for (const tsn of history.keys()) if (tsn > last) return `TSN ${tsn} survived beyond the binlog's end ${last}`;
  for (const [write, tsn] of result.acknowledged) {
    if (tsn <= durableRequired && tsnOf.get(write) !== tsn) return `acknowledged write ${write} (TSN ${tsn}) was lost (durable through ${durableRequired})`;
  }
  const expected = model(history, batches, last, setupTsns);
  return compare(expected, recovered);
}

function model(history: Map<number, { write: number } | { change: 'create-side' | 'drop-side' }>, batches: Map<number, BatchOperation[]>, last: number, setupTsns: number): State {
  // The setup's first transaction creates the main collection (the rest define its indexes).
  const state: State = last >= 1 ? new Map([[MAIN, new Map()]]) : new Map();
  for (let tsn = setupTsns + 1; tsn <= last; tsn++) {
    const entry = history.get(tsn)!;
    if ('change' in entry) {
      if (entry.change === 'create-side') state.set(SIDE, new Map());
      else state.delete(SIDE);
      continue;
    }
    for (const op of batches.get(entry.write)!) {
      const docs = state.get(op.collection)!;
      if (op.op === 'put') docs.set(op.id, { revision: tsn, doc: op.document });
      else if (op.op === 'delete') docs.delete(op.id);
      else docs.set(op.id, { revision: tsn, doc: mergePatch((docs.get(op.id) as { doc: unknown } | undefined)?.doc, op.patch) });
    }
  }
  return state;
}

async function readAll(store: DocumentStore): Promise<Map<string, Map<string, { revision: number; json: string }>>> {
  const all = new Map<string, Map<string, { revision: number; json: string }>>();
  for (const { name } of store.listCollections()) {
    const docs = new Map<string, { revision: number; json: string }>();
    let after: string | undefined;
    do {
      const page = await store.list(name, { limit: 1000, ...(after ? { after } : {}) });
      for (const doc of page.documents) docs.set(doc.id, { revision: doc.revision, json: doc.json });
      after = page.next;
    } while (after);
    all.set(name, docs);
  }
  return all;
}

function compare(expected: State, recovered: Map<string, Map<string, { revision: number; json: string }>>): string | undefined {
  const names = (m: Map<string, unknown>) => [...m.keys()].sort().join(',');
  if (names(expected) !== names(recovered)) return `collections ${names(recovered)}, expected ${names(expected)}`;
  for (const [collection, docs] of expected) {
    const got = recovered.get(collection)!;
    if (names(docs) !== names(got)) return `${collection} holds [${names(got)}], expected [${names(docs)}]`;
    for (const [id, value] of docs) {
      const { revision, doc } = value as { revision: number; doc: unknown };
      const actual = got.get(id)!;
      if (actual.revision !== revision) return `${collection}/${id} at revision ${actual.revision}, expected ${revision}`;
      if (actual.json !== JSON.stringify(doc)) return `${collection}/${id} is ${actual.json}, expected ${JSON.stringify(doc)}`;
    }
  }
  return undefined;
}
