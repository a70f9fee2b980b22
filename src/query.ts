// Queries: POST /collections/{c}/find, /explain and /count. A selector is parsed into a tree of
// field conditions under $and / $or, checked against the bounds of limits.ts; the planner picks
// the ready index whose leading fields the selector fixes ($eq, $in) and then bounds (a range)
// best, or the one that gives the asked sort, and turns the conditions into key ranges of its
// family (index-key.ts gives the byte order). Every key in range is tested against the whole
// selector, from the key alone when the selector names only indexed fields (covered), else on
// the document. Values compare by the total order of index-key.ts, across types (as CouchDB's
// Mango does): {"$gt": 5} matches every string too. A field a document lacks matches only
// $ne and {"$exists": false}. A path never steps into an array, and an array equals only an
// equal array (no multikey matching).

import { DocketError, DocketErrorCode } from './errors.js';
import { decodeEncoded, encodedValue, encodeJsonText, KeyBuilder, MISSING, skipEncoded, TAG_MISSING, valueAt } from './documents/index-key.js';
import { isPlainObject } from './documents/merge-patch.js';
import { checkFieldPath, type Index } from './indexes.js';
import * as limits from './limits.js';

/** A document as stored: its JSON text as UTF-8 bytes (a response splices them in as they are). */
export class StoredDoc {
  constructor(
    readonly id: string,
    readonly revision: number,
    readonly bytes: Buffer,
  ) {}

  get json(): string {
    return this.bytes.toString('utf8');
  }
}

/** A walk over keys: each step gives the next key at once while it can, else a promise. */
export interface KeyWalk {
  step(): { key: Buffer } | undefined | Promise<{ key: Buffer } | undefined>;
  close(): void;
}

/** What a query reads, all at one engine snapshot. */
export interface QueryReader {
  indexKeys(index: Index, options: { gt?: Buffer; gte?: Buffer; lt?: Buffer; lte?: Buffer; reverse?: boolean }): KeyWalk;
  headers(after: string | undefined): AsyncIterable<{ key: Buffer; value: Buffer }>;
  /** The documents of `ids` (undefined where there is none), read together; `headers` if already read. */
  read(ids: readonly string[], headers?: readonly Buffer[]): Promise<(StoredDoc | undefined)[]>;
  readonly documents: number;
}

/** Calls `visit` with every key of the walk until it returns false; awaits only where the walk must. */
async function eachKey(walk: KeyWalk, visit: (key: Buffer) => boolean): Promise<void> {
  try {
    for (;;) {
      let next = walk.step();
      if (next instanceof Promise) next = await next;
      if (next === undefined || !visit(next.key)) return;
    }
  } finally {
    walk.close();
  }
}

export interface ExecutionStats {
  keys_examined: number;
  documents_examined: number;
  results: number;
  elapsed_ms: number;
}

export interface FindResult {
  readonly documents: StoredDoc[];
  /** Resume after the last result (absent when the query is exhausted). */
  readonly bookmark: string | undefined;
  readonly index: string | null;
  /** Why a page ended early: `keys`, or for a scan `documents` or `time` (limit: it found `limit` results). */
  readonly stopped: 'limit' | 'end' | 'keys' | 'documents' | 'time';
  readonly stats: ExecutionStats;
}

export interface ExplainResult {
  readonly [key: string]: unknown;
}

export interface CountResult {
  readonly count: number;
  readonly groups?: { value?: unknown; missing?: true; count: number }[];
  readonly index: string | null;
  /** False when the count stopped at COUNT_KEYS_MAX (it is then a lower bound). */
  readonly complete: boolean;
  readonly documents_read: number;
}

type FieldOp = '$eq' | '$ne' | '$gt' | '$gte' | '$lt' | '$lte' | '$in' | '$exists';

type Node =
  | { readonly kind: 'field'; readonly path: string; readonly steps: readonly string[]; readonly op: FieldOp; readonly values: readonly Buffer[]; readonly exists?: boolean }
  | { readonly kind: 'and' | 'or'; readonly children: readonly Node[] };

const FIELD_OPS = new Set(['$eq', '$ne', '$gt', '$gte', '$lt', '$lte', '$in', '$exists']);
const KEYS: Record<string, ReadonlySet<string>> = {
  find: new Set(['selector', 'fields', 'sort', 'limit', 'bookmark', 'allow_scan', 'use_index']),
  explain: new Set(['selector', 'fields', 'sort', 'limit', 'bookmark', 'allow_scan', 'use_index', 'execution_stats']),
  count: new Set(['selector', 'group_by', 'allow_scan', 'use_index']),
};

const invalid = (message: string): DocketError => new DocketError(DocketErrorCode.QUERY_INVALID, message);

interface Bound {
  readonly key: Buffer;
  readonly inclusive: boolean;
}

interface Range {
  readonly lower: Bound | undefined;
  readonly upper: Bound | undefined;
}

interface Plan {
  readonly index: Index;
  readonly ranges: Range[];
  readonly reverse: boolean;
  readonly covered: boolean;
  /** Whether every key in the ranges matches: the selector is exactly what the ranges say (then no key is tested). */
  readonly exact: boolean;
  readonly score: number;
}

/** Per path, what the top-level conjunction says of it. */
interface Constraint {
  points?: Buffer[];
  lower?: Bound;
  upper?: Bound;
}

export class Query {
  private clauses = 0;
  readonly root: Node;
  readonly paths: Set<string> = new Set();
  readonly sort: { field: string; desc: boolean }[] = [];
  readonly fields: string[] | undefined;
  readonly limit: number;
  readonly bookmark: { index: string | null; key: Buffer } | undefined;
  readonly allowScan: boolean;
  readonly useIndex: string | undefined;
  readonly executionStats: boolean;
  readonly groupBy: string | undefined;
  private readonly constraints = new Map<string, Constraint>();

  private constructor(
    body: Record<string, unknown>,
    readonly kind: 'find' | 'explain' | 'count',
    private readonly indexes: readonly Index[],
  ) {
    const selector = body['selector'] ?? {};
    if (!isPlainObject(selector)) throw invalid('selector must be a JSON object');
    this.root = this.parseSelector(selector, 1);
    this.collectConstraints(this.root);
    const { sort, fields, limit, bookmark, allow_scan: allowScan, use_index: useIndex, execution_stats: stats, group_by: groupBy } = body;
    if (sort !== undefined) {
      if (!Array.isArray(sort) || sort.length > limits.INDEX_FIELDS_MAX) throw invalid(`sort is an array of at most ${limits.INDEX_FIELDS_MAX} field names or {name: "asc" | "desc"}`);
      for (const entry of sort) {
        let field: unknown = entry;
        let order: unknown = 'asc';
        if (isPlainObject(entry) && Object.keys(entry).length === 1) [[field, order]] = Object.entries(entry);
        if (typeof field !== 'string' || (order !== 'asc' && order !== 'desc')) throw invalid('a sort entry is a field name or {name: "asc" | "desc"}');
        checkFieldPath(field, invalid);
        this.sort.push({ field, desc: order === 'desc' });
      }
    }
    if (fields !== undefined) {
      if (!Array.isArray(fields) || fields.length > limits.FIELDS_PER_DOCUMENT_MAX || fields.some((f) => typeof f !== 'string')) throw invalid(`fields is an array of at most ${limits.FIELDS_PER_DOCUMENT_MAX} top-level field names`);
      this.fields = [...new Set(fields as string[])];
    }
    if (limit !== undefined && !(Number.isInteger(limit) && (limit as number) >= 1 && (limit as number) <= limits.FIND_LIMIT_MAX)) throw invalid(`limit must be an integer 1..${limits.FIND_LIMIT_MAX}`);
    this.limit = (limit as number | undefined) ?? limits.FIND_LIMIT_DEFAULT;
    if (bookmark !== undefined) this.bookmark = parseBookmark(bookmark);
    if (allowScan !== undefined && typeof allowScan !== 'boolean') throw invalid('allow_scan must be true or false');
    this.allowScan = allowScan === true;
    if (useIndex !== undefined && typeof useIndex !== 'string') throw invalid('use_index must be an index name');
    this.useIndex = useIndex as string | undefined;
    if (stats !== undefined && typeof stats !== 'boolean') throw invalid('execution_stats must be true or false');
    this.executionStats = stats === true;
    if (groupBy !== undefined) {
      if (typeof groupBy !== 'string') throw invalid('group_by must be a field name (one field of an index)');
      checkFieldPath(groupBy, invalid);
      this.groupBy = groupBy;
    }
  }

  static parse(body: unknown, kind: 'find' | 'explain' | 'count', indexes: readonly Index[]): Query {
    if (!isPlainObject(body)) throw invalid(`a ${kind} body is a JSON object`);
    for (const key of Object.keys(body)) if (!KEYS[kind]!.has(key)) throw invalid(`unknown key ${JSON.stringify(key)} in a ${kind} body; it takes ${[...KEYS[kind]!].join(', ')}`);
    return new Query(body as Record<string, unknown>, kind, indexes);
  }

  // ---- parsing ----

  private parseSelector(selector: Record<string, unknown>, depth: number): Node {
    if (depth > limits.QUERY_DEPTH_MAX) throw invalid(`a selector nests at most ${limits.QUERY_DEPTH_MAX} deep`);
    const children: Node[] = [];
    for (const [key, value] of Object.entries(selector)) {
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(value) || value.length === 0) throw invalid(`${key} takes a non-empty array of selectors`);
        const parts = value.map((part) => {
          if (!isPlainObject(part)) throw invalid(`${key} takes an array of selector objects`);
          return this.parseSelector(part, depth + 1);
        });
        children.push({ kind: key === '$and' ? 'and' : 'or', children: parts });
      } else if (key.startsWith('$')) {
        throw invalid(`unknown operator ${JSON.stringify(key)} where a field or $and / $or goes`);
      } else {
        checkFieldPath(key, invalid);
        children.push(...this.parseField(key, value, depth + 1));
      }
    }
    return children.length === 1 ? children[0]! : { kind: 'and', children };
  }

  private parseField(path: string, condition: unknown, depth: number): Node[] {
    if (depth > limits.QUERY_DEPTH_MAX) throw invalid(`a selector nests at most ${limits.QUERY_DEPTH_MAX} deep`);
    const steps = path.split('.');
    this.paths.add(path);
    const operators = isPlainObject(condition) ? Object.keys(condition) : [];
    const isOperators = operators.length > 0 && operators.every((k) => k.startsWith('$'));
    if (operators.some((k) => k.startsWith('$')) && !isOperators) throw invalid(`field ${JSON.stringify(path)}: an object mixes operators and members`);
    if (!isOperators) return [this.clause({ kind: 'field', path, steps, op: '$eq', values: [literal(condition, path)] })];
    return Object.entries(condition as Record<string, unknown>).map(([op, value]) => {
      if (!FIELD_OPS.has(op)) throw invalid(`unknown operator ${JSON.stringify(op)} on field ${JSON.stringify(path)}; the field operators are ${[...FIELD_OPS].join(', ')}`);
      if (op === '$exists') {
        if (typeof value !== 'boolean') throw invalid(`$exists on ${JSON.stringify(path)} takes true or false`);
        return this.clause({ kind: 'field', path, steps, op: '$exists', values: [], exists: value });
      }
      if (op === '$in') {
        if (!Array.isArray(value)) throw invalid(`$in on ${JSON.stringify(path)} takes an array`);
        if (value.length > limits.QUERY_IN_VALUES_MAX) throw invalid(`$in takes at most ${limits.QUERY_IN_VALUES_MAX} values, got ${value.length}`);
        const values = [...new Map(value.map((v) => literal(v, path)).map((b) => [b.toString('hex'), b])).values()].sort(Buffer.compare);
        return this.clause({ kind: 'field', path, steps, op: '$in', values });
      }
      return this.clause({ kind: 'field', path, steps, op: op as FieldOp, values: [literal(value, path)] });
    });
  }

  private clause(node: Node): Node {
    if (++this.clauses > limits.QUERY_CLAUSES_MAX) throw invalid(`a selector has at most ${limits.QUERY_CLAUSES_MAX} field conditions`);
    return node;
  }

  /** What the top-level conjunction fixes or bounds, per path (what an index range can use). */
  private collectConstraints(node: Node): void {
    if (node.kind === 'and') {
      for (const child of node.children) this.collectConstraints(child);
      return;
    }
    if (node.kind !== 'field') return;
    let c = this.constraints.get(node.path);
    if (!c) this.constraints.set(node.path, (c = {}));
    const v = node.values[0]!;
    const tighter = (a: Bound | undefined, b: Bound, sign: number): Bound => {
      if (!a) return b;
      const order = Buffer.compare(b.key, a.key) * sign;
      return order > 0 || (order === 0 && !b.inclusive) ? b : a;
    };
    if (node.op === '$eq') c.points = c.points ?? [v];
    else if (node.op === '$in') c.points = c.points ?? [...node.values];
    else if (node.op === '$gt' || node.op === '$gte') c.lower = tighter(c.lower, { key: v, inclusive: node.op === '$gte' }, 1);
    else if (node.op === '$lt' || node.op === '$lte') c.upper = tighter(c.upper, { key: v, inclusive: node.op === '$lte' }, -1);
    else if (node.op === '$exists' && node.exists) c.lower = tighter(c.lower, { key: Buffer.of(TAG_MISSING), inclusive: false }, 1);
  }

  // ---- planning ----

  /** The best plan over ready indexes, or undefined (then a scan, if allowed). */
  private plan(): Plan | undefined {
    let best: Plan | undefined;
    const candidates = this.useIndex !== undefined ? this.indexes.filter((i) => i.name === this.useIndex) : this.indexes;
    if (this.useIndex !== undefined && candidates.length === 0) throw invalid(`use_index: no index ${JSON.stringify(this.useIndex)}`);
    for (const index of candidates) {
      if (!index.ready) continue;
      const plan = this.planFor(index);
      if (!plan) continue;
      if (!best || plan.score > best.score || (plan.score === best.score && plan.covered && !best.covered)) best = plan;
    }
    return best;
  }

  private planFor(index: Index): Plan | undefined {
    const fields = index.definition.fields;
    let prefixes: Buffer[] = [Buffer.alloc(0)];
    let eq = 0;
    let rangeAt = -1;
    for (let i = 0; i < fields.length; i++) {
      const c = this.constraints.get(fields[i]!.field);
      const desc = index.paths[i]!.desc;
      if (c?.points && prefixes.length * c.points.length <= limits.QUERY_IN_VALUES_MAX) {
        const next: Buffer[] = [];
        const points = desc ? [...c.points].reverse() : c.points;
        for (const p of prefixes) for (const point of points) next.push(Buffer.concat([p, desc ? invert(point) : point]));
        prefixes = next;
        eq++;
        continue;
      }
      if (c && (c.lower || c.upper)) rangeAt = i;
      break;
    }
    const covered = [...this.paths].every((path) => fields.some((f) => f.field === path));
    // The order the scan gives is the index's, and a field fixed to one value does not move it:
    // the sort, less such fields, must be the index's fields less them, from the first on,
    // all one way (a forward scan) or all the other (a reverse scan).
    let reverse = false;
    if (this.sort.length > 0) {
      const fixed = new Set(fields.slice(0, eq).map((f) => f.field).filter((f) => this.constraints.get(f)?.points?.length === 1));
      const sort = this.sort.filter((s) => !fixed.has(s.field));
      const order = index.paths.map((p, i) => ({ field: fields[i]!.field, desc: p.desc })).filter((f) => !fixed.has(f.field));
      if (sort.length > 0) {
        if (order.length < sort.length || sort.some((s, j) => order[j]!.field !== s.field)) return undefined;
        const same = sort.every((s, j) => s.desc === order[j]!.desc);
        const opposite = sort.every((s, j) => s.desc !== order[j]!.desc);
        if (!same && !opposite) return undefined;
        reverse = opposite;
      }
    }
    if (this.kind === 'count' && this.groupBy !== undefined && !fields.some((f) => f.field === this.groupBy)) return undefined;
    const score = eq * 2 + (rangeAt >= 0 ? 1 : 0);
    // An index that narrows nothing serves only an ordered scan (a sort), a count it covers, or a count by one of its fields.
    if (score === 0 && this.sort.length === 0 && !(this.kind === 'count' && (covered || this.groupBy !== undefined))) return undefined;
    const ranges: Range[] = [];
    for (const p of prefixes) {
      if (rangeAt < 0) {
        const after = p.length === 0 ? undefined : successorBound(p);
        ranges.push(p.length === 0 ? { lower: undefined, upper: undefined } : { lower: { key: p, inclusive: true }, upper: after ? { key: after.key, inclusive: false } : undefined });
        continue;
      }
      const c = this.constraints.get(fields[rangeAt]!.field)!;
      const desc = index.paths[rangeAt]!.desc;
      // A descending field's bytes are inverted: the value's lower bound bounds the bytes from above.
      const lo = desc ? c.upper : c.lower;
      const hi = desc ? c.lower : c.upper;
      const lower: Bound | undefined = lo
        ? lo.inclusive
          ? { key: Buffer.concat([p, desc ? invert(lo.key) : lo.key]), inclusive: true }
          : successorBound(Buffer.concat([p, desc ? invert(lo.key) : lo.key]))
        : p.length > 0
          ? { key: p, inclusive: true }
          : undefined;
      const upper: Bound | undefined = hi
        ? hi.inclusive
          ? successorBound(Buffer.concat([p, desc ? invert(hi.key) : hi.key]))
          : { key: Buffer.concat([p, desc ? invert(hi.key) : hi.key]), inclusive: false }
        : p.length > 0
          ? successorBound(p)
          : undefined;
      if (lower && upper && Buffer.compare(lower.key, upper.key) >= 0) continue; // empty
      ranges.push({ lower, upper: upper ? { key: upper.key, inclusive: false } : undefined });
    }
    return { index, ranges, reverse, covered, exact: this.exactFor(index, eq, rangeAt), score };
  }

  /**
   * Whether the ranges of a plan say all the selector says: it is a conjunction of conditions
   * each of which went into them, one $eq or $in on each of the first `eq` fields, and bounds
   * on the field at `rangeAt` that include a lower one (keys of documents lacking the field
   * sort below every value, so only a lower bound leaves them out).
   */
  private exactFor(index: Index, eq: number, rangeAt: number): boolean {
    const fields = index.definition.fields;
    const nodes: Extract<Node, { kind: 'field' }>[] = [];
    const flatten = (node: Node): boolean => {
      if (node.kind === 'field') return nodes.push(node) > 0;
      return node.kind === 'and' && node.children.every(flatten);
    };
    if (!flatten(this.root)) return false;
    const seen = new Set<string>();
    for (const node of nodes) {
      const at = fields.findIndex((f) => f.field === node.path);
      if (at < 0) return false;
      if (at < eq) {
        if ((node.op !== '$eq' && node.op !== '$in') || seen.has(node.path)) return false;
        seen.add(node.path);
      } else if (at !== rangeAt || !(node.op === '$gt' || node.op === '$gte' || node.op === '$lt' || node.op === '$lte' || (node.op === '$exists' && node.exists === true))) {
        return false;
      }
    }
    return rangeAt < 0 || this.constraints.get(fields[rangeAt]!.field)?.lower !== undefined;
  }

  /** The index a refused query would use: the fields it fixes, then the one it bounds, then the sort. */
  private suggestion(): string[] {
    const fields: string[] = [];
    for (const [path, c] of this.constraints) if (c.points) fields.push(path);
    for (const [path, c] of this.constraints) if (!c.points && (c.lower || c.upper) && fields.length < limits.INDEX_FIELDS_MAX) {
      fields.push(path);
      break;
    }
    for (const s of this.sort) if (!fields.includes(s.field)) fields.push(s.field);
    if (this.groupBy !== undefined && !fields.includes(this.groupBy)) fields.push(this.groupBy);
    return fields.slice(0, limits.INDEX_FIELDS_MAX);
  }

  private refuse(): never {
    const building = this.indexes.filter((i) => !i.ready).map((i) => i.name);
    const fields = this.suggestion();
    const would = fields.length > 0 ? `an index on ${JSON.stringify(fields)} would serve it (PUT .../indexes/{name} {"fields": ${JSON.stringify(fields)}})` : 'the selector bounds no field an index could serve';
    const pending = building.length > 0 ? `; not ready yet: ${building.join(', ')}` : '';
    if (this.sort.length > 0 && this.allowScan) throw new DocketError(DocketErrorCode.QUERY_NO_INDEX, `no ready index gives this sort (a scan cannot sort): ${would}${pending}`);
    throw new DocketError(DocketErrorCode.QUERY_NO_INDEX, `no ready index serves this query: ${would}${pending}; or set allow_scan: true to scan the collection (bounded by limit, ${limits.QUERY_SCAN_DOCUMENTS_MAX} documents and ${limits.QUERY_SCAN_MS_MAX} ms)`);
  }

  // ---- matching ----

  /** Whether a document (its JSON text) matches. */
  matchesDocument(doc: Buffer): boolean {
    const cache = new Map<string, Buffer | undefined>();
    return this.evaluate(this.root, (node) => {
      if (cache.has(node.path)) return cache.get(node.path);
      const range = valueAt(doc, 0, doc.length, node.steps);
      let encoded: Buffer | undefined;
      if (range) {
        const out = new KeyBuilder();
        encodeJsonText(out, doc, range[0], range[1]);
        encoded = out.take();
      }
      cache.set(node.path, encoded);
      return encoded;
    });
  }

  /** Whether an index key matches (REQUIRES: covered: every path is one of the index's fields). */
  private matchesKey(index: Index, key: Buffer): boolean {
    const parts = components(index, key);
    return this.evaluate(this.root, (node) => parts[index.definition.fields.findIndex((f) => f.field === node.path)]);
  }

  private evaluate(node: Node, valueOf: (node: Extract<Node, { kind: 'field' }>) => Buffer | undefined): boolean {
    if (node.kind !== 'field') return node.kind === 'and' ? node.children.every((child) => this.evaluate(child, valueOf)) : node.children.some((child) => this.evaluate(child, valueOf));
    const v = valueOf(node);
    const x = node.values[0];
    switch (node.op) {
      case '$exists':
        return (v !== undefined) === node.exists;
      case '$ne':
        return v === undefined || !v.equals(x!);
      case '$in':
        return v !== undefined && node.values.some((value) => value.equals(v));
    }
    if (v === undefined) return false;
    const order = Buffer.compare(v, x!);
    if (node.op === '$eq') return order === 0;
    if (node.op === '$gt') return order > 0;
    if (node.op === '$gte') return order >= 0;
    if (node.op === '$lt') return order < 0;
    return order <= 0;
  }

  // ---- running ----

  async find(reader: QueryReader): Promise<FindResult> {
    const plan = this.plan();
    if (!plan && !this.allowScan) this.refuse();
    if (!plan && this.sort.length > 0) this.refuse();
    if (this.bookmark && this.bookmark.index !== (plan ? plan.index.name : null)) throw invalid('the bookmark is of another query plan (another index); start again without it');
    return plan ? this.findByIndex(reader, plan) : this.findByScan(reader);
  }

  private async findByIndex(reader: QueryReader, plan: Plan): Promise<FindResult> {
    const started = Date.now();
    const stats: ExecutionStats = { keys_examined: 0, documents_examined: 0, results: 0, elapsed_ms: 0 };
    const documents: StoredDoc[] = [];
    let lastKey: Buffer | undefined;
    let stopped: FindResult['stopped'] = 'end';
    const test = plan.covered && !plan.exact;
    // Keys whose documents are still to read: read together once there are as many as results
    // still wanted (so no document past the last result is read, and the keys examined are
    // those a key-by-key walk examines).
    const pending: Buffer[] = [];
    const readPending = async (): Promise<void> => {
      const docs = await reader.read(pending.map((key) => key.toString('utf8', plan.index.idStart(key))));
      pending.length = 0;
      for (const doc of docs) {
        stats.documents_examined++;
        if (!doc) continue; // REQUIRES nothing: the snapshot holds the document the key names.
        if (!plan.covered && !this.matchesDocument(doc.bytes)) continue;
        documents.push(this.project(doc));
      }
    };
    const ranges = plan.reverse ? [...plan.ranges].reverse() : plan.ranges;
    for (const range of ranges) {
      const options = this.resumed(range, plan.reverse);
      if (!options) continue;
      const walk = reader.indexKeys(plan.index, { ...options, reverse: plan.reverse });
      try {
        for (;;) {
          let next = walk.step();
          if (next instanceof Promise) next = await next;
          if (next === undefined) break;
          if (stats.keys_examined >= limits.QUERY_KEYS_EXAMINED_MAX) {
            stopped = 'keys';
            break;
          }
          stats.keys_examined++;
          const key = next.key;
          lastKey = key;
          if (test && !this.matchesKey(plan.index, key)) continue;
          pending.push(key);
          if (pending.length < this.limit - documents.length) continue;
          await readPending();
          if (documents.length === this.limit) {
            stopped = 'limit';
            break;
          }
        }
      } finally {
        walk.close();
      }
      if (stopped !== 'end') break;
    }
    if (pending.length > 0) await readPending();
    stats.results = documents.length;
    stats.elapsed_ms = Date.now() - started;
    const bookmark = stopped === 'end' || lastKey === undefined ? undefined : encodeBookmark(plan.index.name, lastKey);
    return { documents, bookmark, index: plan.index.name, stopped, stats };
  }

  /** A range's iterator bounds, after the bookmark's key; undefined if the bookmark is past it. */
  private resumed(range: Range, reverse: boolean): { gt?: Buffer; gte?: Buffer; lt?: Buffer; lte?: Buffer } | undefined {
    let lower = range.lower;
    let upper = range.upper;
    const mark = this.bookmark?.key;
    if (mark && !reverse && (!lower || Buffer.compare(mark, lower.key) >= 0)) lower = { key: mark, inclusive: false };
    if (mark && reverse && (!upper || Buffer.compare(mark, upper.key) < 0)) upper = { key: mark, inclusive: false };
    if (lower && upper && Buffer.compare(lower.key, upper.key) >= 0 && !(lower.inclusive && upper.inclusive && lower.key.equals(upper.key))) return undefined;
    return {
      ...(lower ? (lower.inclusive ? { gte: lower.key } : { gt: lower.key }) : {}),
      ...(upper ? (upper.inclusive ? { lte: upper.key } : { lt: upper.key }) : {}),
    };
  }

  private async findByScan(reader: QueryReader): Promise<FindResult> {
    const started = Date.now();
    const stats: ExecutionStats = { keys_examined: 0, documents_examined: 0, results: 0, elapsed_ms: 0 };
    const documents: StoredDoc[] = [];
    let lastId: string | undefined;
    let stopped: FindResult['stopped'] = 'end';
    const after = this.bookmark ? this.bookmark.key.toString('utf8') : undefined;
    for await (const { key, value } of reader.headers(after)) {
      if (stats.documents_examined >= limits.QUERY_SCAN_DOCUMENTS_MAX) {
        stopped = 'documents';
        break;
      }
      if (Date.now() - started >= limits.QUERY_SCAN_MS_MAX) {
        stopped = 'time';
        break;
      }
      const id = key.toString('utf8');
      lastId = id;
      const [doc] = await reader.read([id], [value]);
      if (!doc) continue;
      stats.documents_examined++;
      if (!this.matchesDocument(doc.bytes)) continue;
      documents.push(this.project(doc));
      if (documents.length === this.limit) {
        stopped = 'limit';
        break;
      }
    }
    stats.results = documents.length;
    stats.elapsed_ms = Date.now() - started;
    const bookmark = stopped === 'end' || lastId === undefined ? undefined : encodeBookmark(null, Buffer.from(lastId, 'utf8'));
    return { documents, bookmark, index: null, stopped, stats };
  }

  private project(doc: StoredDoc): StoredDoc {
    if (!this.fields) return doc;
    const bytes = doc.bytes;
    let json = '{';
    for (const name of this.fields) {
      const range = valueAt(bytes, 0, bytes.length, [name]);
      if (!range) continue;
      json += `${json.length > 1 ? ',' : ''}${JSON.stringify(name)}:${bytes.toString('utf8', range[0], range[1])}`;
    }
    return new StoredDoc(doc.id, doc.revision, Buffer.from(json + '}', 'utf8'));
  }

  async explain(reader: QueryReader): Promise<ExplainResult> {
    const plan = this.plan();
    const hex = (b: Bound | undefined): string | undefined => b?.key.toString('hex');
    const base: Record<string, unknown> = plan
      ? {
          index: { name: plan.index.name, fields: plan.index.definition.fields, unique: plan.index.definition.unique },
          scan: false,
          direction: plan.reverse ? 'reverse' : 'forward',
          covered: plan.covered,
          ranges: plan.ranges.map((r) => ({ ...(r.lower ? { [r.lower.inclusive ? 'gte' : 'gt']: hex(r.lower) } : {}), ...(r.upper ? { [r.upper.inclusive ? 'lte' : 'lt']: hex(r.upper) } : {}) })),
        }
      : { index: null, scan: true, allowed: this.allowScan && this.sort.length === 0, ...(this.allowScan && this.sort.length === 0 ? {} : { refused: this.refusal() }) };
    // The estimate walks at most ESTIMATE_KEYS keys of the ranges.
    let keys = 0;
    if (plan) {
      for (const range of plan.ranges) {
        const options = this.resumed(range, false);
        if (options) await eachKey(reader.indexKeys(plan.index, options), () => ++keys < ESTIMATE_KEYS);
        if (keys >= ESTIMATE_KEYS) break;
      }
    }
    const estimated = plan
      ? { keys, documents: keys, exact: keys < ESTIMATE_KEYS, ...(plan.covered ? { note: 'covered: documents are read only for the results' } : {}) }
      : { keys: 0, documents: reader.documents, exact: true };
    base['estimated'] = estimated;
    base['limit'] = this.limit;
    if (this.executionStats && (plan || this.allowScan)) {
      const result = await this.find(reader);
      base['execution_stats'] = result.stats;
      base['stopped'] = result.stopped;
    }
    return base;
  }

  private refusal(): string {
    try {
      this.refuse();
    } catch (error) {
      return (error as Error).message;
    }
  }

  async count(reader: QueryReader): Promise<CountResult> {
    if (this.paths.size === 0 && this.groupBy === undefined) return { count: reader.documents, index: null, complete: true, documents_read: 0 };
    const plan = this.plan();
    if (!plan) {
      if (this.groupBy !== undefined || !this.allowScan) this.refuse();
      const found = await this.countByScan(reader);
      return found;
    }
    const index = plan.index;
    const groupAt = this.groupBy === undefined ? -1 : index.definition.fields.findIndex((f) => f.field === this.groupBy);
    const groupDesc = groupAt >= 0 && index.paths[groupAt]!.desc;
    // Groups by the group field's encoded bytes as they are in the key (inverted if descending).
    // Keys of one group are mostly adjacent: each key's part is compared in place with the last
    // group's, and only a new group makes a string and a map lookup.
    const groups = new Map<string, { raw: Buffer; count: number }>();
    let last: { raw: Buffer; count: number } | undefined;
    let count = 0;
    let keys = 0;
    let documentsRead = 0;
    let complete = true;
    const test = plan.covered && !plan.exact;
    // A count that reads documents checks (and reads) key by key; one from keys alone never awaits
    // per key while the walk is in cached blocks.
    const counted = (key: Buffer): void => {
      count++;
      if (groupAt < 0) return;
      let start = 0;
      for (let i = 0; i < groupAt; i++) start = skipEncoded(key, start, index.paths[i]!.desc);
      const end = skipEncoded(key, start, groupDesc);
      if (last !== undefined && key.compare(last.raw, 0, last.raw.length, start, end) === 0) {
        last.count++;
        return;
      }
      const name = key.toString('latin1', start, end);
      last = groups.get(name);
      if (last !== undefined) last.count++;
      else {
        if (groups.size >= limits.COUNT_GROUPS_MAX) throw invalid(`group_by ${this.groupBy} has more than ${limits.COUNT_GROUPS_MAX} values; narrow the selector`);
        groups.set(name, (last = { raw: Buffer.from(key.subarray(start, end)), count: 1 }));
      }
    };
    const visit = (key: Buffer): boolean => {
      if (++keys > limits.COUNT_KEYS_MAX) {
        complete = false;
        return false;
      }
      if (!test || this.matchesKey(index, key)) counted(key);
      return true;
    };
    for (const range of plan.ranges) {
      const options = this.resumed(range, false);
      if (!options) continue;
      if (plan.covered) {
        await eachKey(reader.indexKeys(index, options), visit);
      } else {
        const walk = reader.indexKeys(index, options);
        try {
          for (;;) {
            let next = walk.step();
            if (next instanceof Promise) next = await next;
            if (next === undefined) break;
            const key = next.key;
            if (++keys > limits.COUNT_KEYS_MAX) {
              complete = false;
              break;
            }
            documentsRead++;
            const [doc] = await reader.read([key.toString('utf8', index.idStart(key))]);
            if (doc && this.matchesDocument(doc.bytes)) counted(key);
          }
        } finally {
          walk.close();
        }
      }
      if (!complete) break;
    }
    const result: CountResult = { count, index: index.name, complete, documents_read: documentsRead };
    if (groupAt < 0) return result;
    const parts = [...groups.values()].map(({ raw, count }) => ({ part: groupDesc ? invert(raw) : raw, count }));
    parts.sort((a, b) => Buffer.compare(a.part, b.part)); // Missing (0x01) sorts first.
    return { ...result, groups: parts.map(({ part, count }) => (part[0] === TAG_MISSING ? { missing: true as const, count } : { value: decodeEncoded(part, 0, false).value, count })) };
  }

  private async countByScan(reader: QueryReader): Promise<CountResult> {
    const started = Date.now();
    let count = 0;
    let read = 0;
    let complete = true;
    for await (const { key, value } of reader.headers(undefined)) {
      if (read >= limits.QUERY_SCAN_DOCUMENTS_MAX || Date.now() - started >= limits.QUERY_SCAN_MS_MAX) {
        complete = false;
        break;
      }
      const [doc] = await reader.read([key.toString('utf8')], [value]);
      if (!doc) continue;
      read++;
      if (this.matchesDocument(doc.bytes)) count++;
    }
    return { count, index: null, complete, documents_read: read };
  }
}

const ESTIMATE_KEYS = 1000;

function literal(value: unknown, path: string): Buffer {
  try {
    return encodedValue(value);
  } catch {
    throw invalid(`field ${JSON.stringify(path)}: a value must be JSON`);
  }
}

function invert(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = 0xff - bytes[i]!;
  return out;
}

/**
 * The least key above every key that starts with `prefix` (an exclusive upper bound, or an
 * inclusive lower bound past them), or undefined if there is none (all 0xFF).
 */
function successorBound(prefix: Buffer): Bound | undefined {
  let end = prefix.length;
  while (end > 0 && prefix[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const key = Buffer.from(prefix.subarray(0, end));
  key[end - 1]!++;
  return { key, inclusive: true };
}

/** A key's field encodings, un-inverted; undefined for a field the document lacks. */
function components(index: Index, key: Buffer): (Buffer | undefined)[] {
  const parts: (Buffer | undefined)[] = [];
  let at = 0;
  for (const { desc } of index.paths) {
    const end = skipEncoded(key, at, desc);
    const raw = key.subarray(at, end);
    const part = desc ? invert(raw) : raw;
    parts.push(part[0] === TAG_MISSING ? undefined : part);
    at = end;
  }
  return parts;
}

function encodeBookmark(index: string | null, key: Buffer): string {
  return Buffer.from(JSON.stringify({ i: index, k: key.toString('base64') })).toString('base64url');
}

function parseBookmark(bookmark: unknown): { index: string | null; key: Buffer } {
  if (typeof bookmark !== 'string' || bookmark.length > 4 * limits.INDEX_KEY_SIZE_BYTES_MAX) throw invalid('bookmark must be the bookmark of an earlier page');
  try {
    const parsed = JSON.parse(Buffer.from(bookmark, 'base64url').toString('utf8')) as { i?: unknown; k?: unknown };
    if ((parsed.i !== null && typeof parsed.i !== 'string') || typeof parsed.k !== 'string') throw new Error('shape');
    return { index: parsed.i, key: Buffer.from(parsed.k, 'base64') };
  } catch {
    throw invalid('bookmark must be the bookmark of an earlier page');
  }
}

export { MISSING };
