// Model-based test of secondary indexes and queries: random documents of mixed types (null,
// booleans, numbers, strings, arrays, nested objects, missing fields), random indexes (compound,
// ascending and descending, on top-level and dotted fields, created on empty and on full
// collections, so some build in the background while the writes go on), puts, merge patches
// that touch and do not touch indexed fields, deletes, atomic batches, clean reopens (which
// restart unfinished builds), crashes (the power fails between two commands, maybe during a
// background build: the store reopens on the disk's image under one of the simulated file
// layer's kinds of damage, and must hold every acknowledged write, its indexes exactly in step),
// and random queries. Every find is paged with a small limit and
// its bookmarks; the pages together must be exactly the in-memory filter of the model, in the
// order of the index the answer names (its fields, missing first, each ascending or descending,
// then the id), or in id order for a scan. Counts (with group_by on an indexed field) must be
// exact. At the end of every run auditIndexes must find every index in exact agreement with the
// documents. A refused query (no ready index) is asked again with allow_scan.
//
// DOCKET_QUERY_MODEL_RUNS (default 300), DOCKET_QUERY_MODEL_SEED (default 20261203).

import t from 'tap';
import fc from 'fast-check';
import { DAMAGES, SimFileSystem, type Damage } from '../../storage/sim-file-system.js';
import { DocumentStore } from '../../src/store.js';
import { compareJson } from '../helpers/json-order.js';
import { checkProperty } from '../helpers/model-check.js';

const RUNS = Number(process.env.DOCKET_QUERY_MODEL_RUNS ?? 300);
const SEED = Number(process.env.DOCKET_QUERY_MODEL_SEED ?? 20261203);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Doc = Record<string, Json>;
const FIELDS = ['a', 'b', 'c', 'n.x', 'n.y'] as const;
const IDS = ['d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9'];

const scalar: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, 1, -1, 2.5, -0.5, 10, 1e21, 'a', 'b', 'B', '', 'é', '\u{1F600}', 'a\u0000'),
  fc.integer({ min: -5, max: 5 }),
);
const value: fc.Arbitrary<Json> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 2 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.constantFrom('p', 'q'), scalar, { maxKeys: 2 }) },
);
const nested: fc.Arbitrary<Json> = fc.oneof({ weight: 4, arbitrary: fc.dictionary(fc.constantFrom('x', 'y'), value, { maxKeys: 2 }) }, { weight: 1, arbitrary: value });
const doc: fc.Arbitrary<Doc> = fc.record({ a: value, b: value, c: value, n: nested, z: value }, { requiredKeys: [] });

type IndexSpec = { fields: { field: string; desc: boolean }[] };
const indexSpec: fc.Arbitrary<IndexSpec> = fc
  .uniqueArray(fc.constantFrom(...FIELDS), { minLength: 1, maxLength: 3 })
  .chain((fields) => fc.tuple(...fields.map(() => fc.boolean())).map((desc) => ({ fields: fields.map((field, i) => ({ field, desc: desc[i]! })) })));

type Selector = Record<string, unknown>;
const condition: fc.Arbitrary<Selector> = fc.tuple(fc.constantFrom<string>(...FIELDS, 'z', 'n'), fc.oneof(
  value.map((v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? { $eq: v } : v)),
  fc.record({ op: fc.constantFrom('$eq', '$ne', '$gt', '$gte', '$lt', '$lte'), v: value }).map(({ op, v }) => ({ [op]: v })),
  fc.record({ lo: scalar, hi: scalar }).map(({ lo, hi }) => ({ $gte: lo, $lt: hi })),
  fc.array(scalar, { minLength: 1, maxLength: 3 }).map((vs) => ({ $in: vs })),
  fc.boolean().map((b) => ({ $exists: b })),
)).map(([field, cond]) => ({ [field]: cond }));
const selector: fc.Arbitrary<Selector> = fc.oneof(
  { weight: 3, arbitrary: condition },
  { weight: 2, arbitrary: fc.array(condition, { minLength: 2, maxLength: 3 }).map((cs) => Object.assign({}, ...cs) as Selector) },
  { weight: 1, arbitrary: fc.array(condition, { minLength: 1, maxLength: 3 }).map((cs) => ({ $or: cs })) },
  { weight: 1, arbitrary: fc.tuple(condition, fc.array(condition, { minLength: 1, maxLength: 2 })).map(([c, ors]) => ({ ...c, $or: ors })) },
  { weight: 1, arbitrary: fc.constant({}) },
);

type Command =
  | { kind: 'put'; id: string; doc: Doc }
  | { kind: 'patch'; id: string; patch: Doc }
  | { kind: 'delete'; id: string }
  | { kind: 'batch'; puts: { id: string; doc: Doc }[] }
  | { kind: 'index'; spec: IndexSpec; unique: false }
  | { kind: 'dropIndex'; k: number }
  | { kind: 'settle' }
  | { kind: 'reopen' }
  | { kind: 'crash'; damage: Damage; seed: number }
  | { kind: 'find'; selector: Selector; sort: boolean; limit: number; k: number }
  | { kind: 'count'; selector: Selector; groupBy: boolean; k: number };

const id = fc.constantFrom(...IDS);
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), id, doc }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('patch' as const), id, patch: fc.record({ a: fc.option(value), c: fc.option(value), z: value }, { requiredKeys: [] }) as fc.Arbitrary<Doc> }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), id }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('batch' as const), puts: fc.array(fc.record({ id, doc }), { minLength: 1, maxLength: 4 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('index' as const), spec: indexSpec, unique: fc.constant(false as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropIndex' as const), k: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'settle' as const }) },
  // A reopen or a crash costs ~0.3 s: each a third as often as the others of weight 1.
  { weight: 1, arbitrary: fc.oneof(fc.constant<Command>({ kind: 'reopen' }), fc.record({ kind: fc.constant('crash' as const), damage: fc.constantFrom(...DAMAGES), seed: fc.nat() }), fc.constant<Command>({ kind: 'settle' })) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('find' as const), selector, sort: fc.boolean(), limit: fc.integer({ min: 1, max: 4 }), k: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('count' as const), selector, groupBy: fc.boolean(), k: fc.nat() }) },
);

const scenario = fc.record({ initial: fc.array(indexSpec, { maxLength: 2 }), commands: fc.array(command, { minLength: 5, maxLength: 30 }) });

// ---- the model ----

const MISSING = Symbol('missing');
type Value = Json | typeof MISSING;

function at(document: Doc, path: string): Value {
  let node: Json | undefined = document;
  for (const step of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, step)) return MISSING;
    node = (node as Record<string, Json>)[step]!;
  }
  return node;
}

function compareValue(a: Value, b: Value): number {
  if (a === MISSING || b === MISSING) return a === b ? 0 : a === MISSING ? -1 : 1;
  return compareJson(a, b);
}

function matches(document: Doc, s: Selector): boolean {
  return Object.entries(s).every(([key, cond]) => {
    if (key === '$or') return (cond as Selector[]).some((part) => matches(document, part));
    if (key === '$and') return (cond as Selector[]).every((part) => matches(document, part));
    const v = at(document, key);
    const isOps = cond !== null && typeof cond === 'object' && !Array.isArray(cond) && Object.keys(cond).length > 0 && Object.keys(cond).every((k) => k.startsWith('$'));
    const ops: [string, unknown][] = isOps ? Object.entries(cond as object) : [['$eq', cond]];
    return ops.every(([op, x]) => {
      if (op === '$exists') return (v !== MISSING) === x;
      if (op === '$ne') return v === MISSING || compareJson(v, x) !== 0;
      if (v === MISSING) return false;
      if (op === '$in') return (x as Json[]).some((y) => compareJson(v, y) === 0);
      const c = compareJson(v, x);
      return op === '$eq' ? c === 0 : op === '$gt' ? c > 0 : op === '$gte' ? c >= 0 : op === '$lt' ? c < 0 : c <= 0;
    });
  });
}

function mergePatch(target: Doc, patch: Doc): Doc {
  const out: Doc = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function indexOrder(spec: IndexSpec | undefined): (x: [string, Doc], y: [string, Doc]) => number {
  return ([ia, a], [ib, b]) => {
    for (const { field, desc } of spec?.fields ?? []) {
      const c = compareValue(at(a, field), at(b, field));
      if (c !== 0) return desc ? -c : c;
    }
    return ia < ib ? -1 : ia > ib ? 1 : 0;
  };
}

// ---- the run ----

function open(fileSystem: SimFileSystem): Promise<DocumentStore> {
  return DocumentStore.open({ directory: '/db', fileSystem, epochCheckIntervalMs: 0, engine: { memtableSizeBytes: 8192 } });
}

const body = (spec: IndexSpec) => ({ fields: spec.fields.map(({ field, desc }) => (desc ? { [field]: 'desc' } : field)) });

// One store for every run (opening one costs ~0.3 s here); each run has a collection of its own,
// dropped at its end, and a reopen reopens the shared store.
const shared = { fileSystem: new SimFileSystem(), store: undefined as DocumentStore | undefined, runs: 0, crashes: 0 };

async function runScenario({ initial, commands }: { initial: IndexSpec[]; commands: Command[] }): Promise<void> {
  // A run that crashes starts on a disk of its own: the image a crash makes copies the whole
  // disk, and the shared one holds the binlog of every run before (no epochs here to purge it).
  if (commands.some((c) => c.kind === 'crash')) {
    await shared.store?.close();
    shared.fileSystem = new SimFileSystem();
    shared.store = undefined;
  }
  shared.store ??= await open(shared.fileSystem);
  let store = shared.store;
  const collection = `r${shared.runs++}`;
  try {
    await store.createCollection(collection);
    const model = new Map<string, Doc>();
    const specs = new Map<string, IndexSpec>();
    let made = 0;
    const define = async (spec: IndexSpec): Promise<void> => {
      const name = `i${made++}`;
      await store.createIndex(collection, name, body(spec));
      specs.set(name, spec);
    };
    for (const spec of initial) await define(spec);
    const expectFind = async (s: Selector, sort: { field: string; desc: boolean }[] | undefined, limit: number, useIndex?: string): Promise<void> => {
      const query = { selector: s, limit, ...(sort ? { sort: sort.map(({ field, desc }) => ({ [field]: desc ? 'desc' : 'asc' })) } : {}), ...(useIndex ? { use_index: useIndex } : {}) };
      let allowScan = false;
      const pages: string[] = [];
      let index: string | null = null;
      let bookmark: string | undefined;
      for (let page = 0; page < 100; page++) {
        let result;
        try {
          result = await store.find(collection, { ...query, ...(allowScan ? { allow_scan: true } : {}), ...(bookmark ? { bookmark } : {}) });
        } catch (error) {
          if ((error as { code?: string }).code !== 'DOCKET_ERR_QUERY_NO_INDEX' || allowScan || sort) throw error;
          allowScan = true;
          page--;
          continue;
        }
        index = result.index;
        pages.push(...result.documents.map((d) => d.id));
        for (const d of result.documents) if (JSON.stringify(JSON.parse(d.json)) !== JSON.stringify(model.get(d.id))) throw new Error(`document ${d.id} is ${d.json}, the model has ${JSON.stringify(model.get(d.id))}`);
        bookmark = result.bookmark;
        if (!bookmark) break;
      }
      const used = index === null ? undefined : specs.get(index);
      const expected = [...model].filter(([, d]) => matches(d, s)).sort(indexOrder(used)).map(([i]) => i);
      // A sort against the index's direction is its reverse scan: the whole order reversed, ids too.
      if (sort && used && sort[0]!.desc !== used.fields[0]!.desc) expected.reverse();
      if (JSON.stringify(pages) !== JSON.stringify(expected)) throw new Error(`find ${JSON.stringify(query)} via ${index}: got ${JSON.stringify(pages)}, expected ${JSON.stringify(expected)}`);
    };
    for (const c of commands) {
      if (c.kind === 'put') {
        await store.put(collection, c.id, c.doc);
        model.set(c.id, c.doc);
      } else if (c.kind === 'patch') {
        const current = model.get(c.id);
        if (!current) continue;
        await store.patch(collection, c.id, c.patch);
        model.set(c.id, mergePatch(current, c.patch));
      } else if (c.kind === 'delete') {
        if (!model.has(c.id)) continue;
        await store.delete(collection, c.id);
        model.delete(c.id);
      } else if (c.kind === 'batch') {
        await store.batch(c.puts.map((p) => ({ op: 'put' as const, collection, id: p.id, document: p.doc })));
        for (const p of c.puts) model.set(p.id, p.doc);
      } else if (c.kind === 'index') {
        if (specs.size < 4) await define(c.spec);
      } else if (c.kind === 'dropIndex') {
        const names = [...specs.keys()];
        if (names.length === 0) continue;
        const name = names[c.k % names.length]!;
        await store.dropIndex(collection, name);
        specs.delete(name);
      } else if (c.kind === 'settle') {
        await store.indexBuildsIdle();
      } else if (c.kind === 'reopen') {
        await store.close();
        store = shared.store = await open(shared.fileSystem);
      } else if (c.kind === 'crash') {
        // Every write was acknowledged (synced: sync immediate), so the model stands as it is.
        // The crashed store's close fails at its first file operation; it is called so that
        // the store lets go of what it holds (a store left open keeps its whole disk alive).
        shared.fileSystem.crashNow();
        shared.crashes++;
        await store.close().catch(() => undefined);
        shared.fileSystem = shared.fileSystem.image(c.seed, c.damage);
        store = shared.store = await open(shared.fileSystem);
      } else if (c.kind === 'find') {
        const names = [...specs.keys()];
        // A sort on a random index's fields (the one it must use), or none.
        const name = names.length > 0 ? names[c.k % names.length] : undefined;
        const spec = name ? specs.get(name) : undefined;
        if (c.sort && spec && store.indexInfo(collection, name!)['state'] === 'ready') {
          const reverse = c.k % 2 === 1;
          await expectFind(c.selector, spec.fields.map(({ field, desc }) => ({ field, desc: desc !== reverse })), c.limit, name);
        } else await expectFind(c.selector, undefined, c.limit);
      } else {
        const names = [...specs.keys()].filter((n) => store.indexInfo(collection, n)['state'] === 'ready');
        const groupBy = c.groupBy && names.length > 0 ? specs.get(names[c.k % names.length]!)!.fields[0]!.field : undefined;
        let result;
        try {
          result = await store.count(collection, { selector: c.selector, ...(groupBy ? { group_by: groupBy } : {}) });
        } catch (error) {
          if ((error as { code?: string }).code !== 'DOCKET_ERR_QUERY_NO_INDEX' || groupBy) throw error;
          result = await store.count(collection, { selector: c.selector, allow_scan: true });
        }
        const matching = [...model.values()].filter((d) => matches(d, c.selector));
        if (result.count !== matching.length || !result.complete) throw new Error(`count ${JSON.stringify(c.selector)}: ${result.count}, expected ${matching.length}`);
        if (groupBy) {
          const groups = new Map<string, { v: Value; count: number }>();
          for (const d of matching) {
            const v = at(d, groupBy);
            const key = v === MISSING ? 'missing' : JSON.stringify(v);
            const g = groups.get(key);
            if (g) g.count++;
            else groups.set(key, { v, count: 1 });
          }
          const expected = [...groups.values()].sort((x, y) => compareValue(x.v, y.v)).map(({ v, count }) => (v === MISSING ? { missing: true, count } : { value: v, count }));
          if (JSON.stringify(result.groups) !== JSON.stringify(expected)) throw new Error(`count by ${groupBy}: ${JSON.stringify(result.groups)}, expected ${JSON.stringify(expected)}`);
        }
      }
    }
    await store.indexBuildsIdle();
    const audit = await store.auditIndexes();
    if (audit.length > 0) throw new Error(`indexes disagree with documents: ${JSON.stringify(audit)}`);
    for (const name of specs.keys()) if (store.indexInfo(collection, name)['state'] !== 'ready') throw new Error(`index ${name} is ${String(store.indexInfo(collection, name)['state'])} after the builds`);
  } finally {
    await shared.store.indexBuildsIdle();
    await shared.store.dropCollection(collection).catch(() => undefined);
  }
}

t.test(`indexes and queries agree with an in-memory model (${RUNS} runs)`, async (t) => {
  const failure = await checkProperty({ arbitrary: scenario, run: runScenario, numRuns: RUNS, seed: SEED, shrinkSeconds: 60 });
  if (failure) t.fail(`seed ${failure.seed} path ${failure.path}: ${failure.error}\n${JSON.stringify(failure.counterexample)}`);
  else t.pass(`${RUNS} runs, ${shared.crashes} crashes recovered`);
  await shared.store?.close();
});
