// JSON Patch (RFC 6902) on a document's top-level fields (src/documents/json-patch.ts): RFC 6902's
// own examples, the error classes (400 malformed, 409 cannot apply, 409 test failed), and a
// fast-check property against a small reference implementation written here on JSON.parse
// values: on random documents and patches both succeed with the same document or both fail
// with the same class of error, and every top-level field the patch does not name keeps its
// exact bytes.

import t from 'tap';
import fc from 'fast-check';
import { applyJsonPatch, canonical, checkJsonPatch, type JsonPatch } from '../../src/documents/json-patch.js';
import { fieldsOf, JsonText, textOf } from '../../src/documents/json-text.js';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import * as limits from '../../src/limits.js';

/** Fixed so CI is repeatable; DOCKET_JSON_PATCH_SEED=random hunts afresh, a number replays. */
const SEED_ENV = process.env.DOCKET_JSON_PATCH_SEED;
const SEED = SEED_ENV === 'random' ? Date.now() | 0 : SEED_ENV !== undefined ? Number(SEED_ENV) : 6902;

function patchOf(patch: unknown): JsonPatch {
  return checkJsonPatch(JSON.stringify(patch));
}

/** The document text after the patch (the text of the resulting field list). */
function apply(document: string, patch: unknown): string {
  const fields = fieldsOf(new JsonText(Buffer.from(document)));
  return textOf(applyJsonPatch(fields.names, fields.values, typeof patch === 'string' ? checkJsonPatch(patch) : patchOf(patch)));
}

function codeOf(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (error instanceof DocketError) return error.code;
    throw error;
  }
}

t.test("RFC 6902's examples (appendix A) that apply to an object document", async (t) => {
  const ok: [string, string, unknown, string][] = [
    ['A.1 add an object member', '{"foo":"bar"}', [{ op: 'add', path: '/baz', value: 'qux' }], '{"foo":"bar","baz":"qux"}'],
    ['A.2 add an array element', '{"foo":["bar","baz"]}', [{ op: 'add', path: '/foo/1', value: 'qux' }], '{"foo":["bar","qux","baz"]}'],
    ['A.3 remove an object member', '{"baz":"qux","foo":"bar"}', [{ op: 'remove', path: '/baz' }], '{"foo":"bar"}'],
    ['A.4 remove an array element', '{"foo":["bar","qux","baz"]}', [{ op: 'remove', path: '/foo/1' }], '{"foo":["bar","baz"]}'],
    ['A.5 replace a value', '{"baz":"qux","foo":"bar"}', [{ op: 'replace', path: '/baz', value: 'boo' }], '{"baz":"boo","foo":"bar"}'],
    ['A.6 move a value', '{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}', [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }], '{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}'],
    ['A.7 move an array element', '{"foo":["all","grass","cows","eat"]}', [{ op: 'move', from: '/foo/1', path: '/foo/3' }], '{"foo":["all","cows","eat","grass"]}'],
    ['A.8 test a value (success)', '{"baz":"qux","foo":["a",2,"c"]}', [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }], '{"baz":"qux","foo":["a",2,"c"]}'],
    ['A.10 add a nested member object', '{"foo":"bar"}', [{ op: 'add', path: '/child', value: { grandchild: {} } }], '{"foo":"bar","child":{"grandchild":{}}}'],
    ['A.11 ignore unrecognised elements', '{"foo":"bar"}', [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }], '{"foo":"bar","baz":"qux"}'],
    ['A.14 ~ escape ordering', '{"/":9,"~1":10}', [{ op: 'test', path: '/~01', value: 10 }], '{"/":9,"~1":10}'],
    ['A.16 add an array value', '{"foo":["bar"]}', [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], '{"foo":["bar",["abc","def"]]}'],
    ['add replaces an existing member in place', '{"a":1,"b":2}', [{ op: 'add', path: '/a', value: 3 }], '{"a":3,"b":2}'],
    ['copy', '{"a":{"x":[1]},"b":2}', [{ op: 'copy', from: '/a/x', path: '/c' }], '{"a":{"x":[1]},"b":2,"c":[1]}'],
    ['move onto itself changes nothing', '{"a":1}', [{ op: 'move', from: '/a', path: '/a' }], '{"a":1}'],
    ['replace the whole document', '{"a":1}', [{ op: 'replace', path: '', value: { b: 2 } }], '{"b":2}'],
    ['a value can be set to null', '{"a":1}', [{ op: 'replace', path: '/a', value: null }], '{"a":null}'],
  ];
  for (const [name, document, patch, expected] of ok) t.equal(apply(document, patch), expected, name);

  const failing: [string, string, unknown, string][] = [
    ['A.9 test a value (error)', '{"baz":"qux"}', [{ op: 'test', path: '/baz', value: 'bar' }], DocketErrorCode.PATCH_TEST_FAILED],
    ['A.12 add to a nonexistent target', '{"foo":"bar"}', [{ op: 'add', path: '/baz/bat', value: 'qux' }], DocketErrorCode.PATCH_CONFLICT],
    ['A.13 invalid JSON Patch document (op missing)', '{"foo":"bar"}', [{ path: '/baz', value: 'qux' }], DocketErrorCode.PATCH_INVALID],
    ['A.15 comparing strings and numbers', '{"/":9,"~1":10}', [{ op: 'test', path: '/~01', value: '10' }], DocketErrorCode.PATCH_TEST_FAILED],
    ['A.16 invalid array index', '{"foo":["bar"]}', [{ op: 'add', path: '/foo/2', value: 'x' }], DocketErrorCode.PATCH_CONFLICT],
    ['remove a missing member', '{"a":1}', [{ op: 'remove', path: '/b' }], DocketErrorCode.PATCH_CONFLICT],
    ['replace a missing member', '{"a":1}', [{ op: 'replace', path: '/b', value: 1 }], DocketErrorCode.PATCH_CONFLICT],
    ['a leading zero is no index', '{"a":[1,2]}', [{ op: 'remove', path: '/a/01' }], DocketErrorCode.PATCH_CONFLICT],
    ['"-" is no index to remove', '{"a":[1,2]}', [{ op: 'remove', path: '/a/-' }], DocketErrorCode.PATCH_CONFLICT],
    ['a path through a scalar', '{"a":1}', [{ op: 'add', path: '/a/b', value: 1 }], DocketErrorCode.PATCH_CONFLICT],
    ['move from a missing member', '{"a":1}', [{ op: 'move', from: '/b', path: '/c' }], DocketErrorCode.PATCH_CONFLICT],
    ['move into its own child', '{"a":{"b":1}}', [{ op: 'move', from: '/a', path: '/a/c' }], DocketErrorCode.PATCH_INVALID],
    ['a pointer without its slash', '{"a":1}', [{ op: 'remove', path: 'a' }], DocketErrorCode.PATCH_INVALID],
    ['a bad ~ escape', '{"a":1}', [{ op: 'remove', path: '/a~2' }], DocketErrorCode.PATCH_INVALID],
    ['value missing', '{"a":1}', [{ op: 'add', path: '/b' }], DocketErrorCode.PATCH_INVALID],
    ['from missing', '{"a":1}', [{ op: 'copy', path: '/b' }], DocketErrorCode.PATCH_INVALID],
    ['an unknown op', '{"a":1}', [{ op: 'merge', path: '/a' }], DocketErrorCode.PATCH_INVALID],
    ['not an array', '{"a":1}', { op: 'remove', path: '/a' }, DocketErrorCode.PATCH_INVALID],
    ['an operation that is not an object', '{"a":1}', ['remove'], DocketErrorCode.PATCH_INVALID],
    ['removing the whole document', '{"a":1}', [{ op: 'remove', path: '' }], DocketErrorCode.PATCH_CONFLICT],
    ['replacing the document with a non-object', '{"a":1}', [{ op: 'replace', path: '', value: [1] }], DocketErrorCode.DOCUMENT_INVALID],
    ['a test after a good write fails it all', '{"a":1}', [{ op: 'add', path: '/b', value: 1 }, { op: 'test', path: '/a', value: 2 }], DocketErrorCode.PATCH_TEST_FAILED],
  ];
  for (const [name, document, patch, code] of failing) t.equal(codeOf(() => apply(document, patch)), code, name);
});

t.test('numbers keep their text; untouched fields keep their bytes; tests compare numbers by value', async (t) => {
  const document = '{"big":9007199254740993,"one":1.0,"s":"\\u00e9","o":{"n":1e400,"m":[1.50]}}';
  t.equal(apply(document, '[{"op":"add","path":"/o/k","value":12345678901234567890123}]'), '{"big":9007199254740993,"one":1.0,"s":"\\u00e9","o":{"n":1e400,"m":[1.50],"k":12345678901234567890123}}', 'numbers in a written member, and in the patch, keep their text');
  t.equal(apply(document, '[{"op":"test","path":"/one","value":1},{"op":"test","path":"/o/m/0","value":15e-1},{"op":"test","path":"/s","value":"é"}]'), document, 'tests compare values; members only tested are not rewritten');
  t.equal(apply(document, '[{"op":"copy","from":"/s","path":"/t"}]'), '{"big":9007199254740993,"one":1.0,"s":"\\u00e9","o":{"n":1e400,"m":[1.50]},"t":"é"}', 'a copied string is written the way JSON.stringify writes it; its source keeps its bytes');
  t.equal(codeOf(() => apply(document, '[{"op":"test","path":"/big","value":9007199254740992}]')), DocketErrorCode.PATCH_TEST_FAILED, 'big integers compare exactly, not as doubles');
  t.equal(canonical('-0'), '0');
  t.equal(canonical('0.0e5'), '0');
  t.equal(canonical('1.0'), canonical('10e-1'));
  t.not(canonical('1'), canonical('-1'));
  t.equal(apply('{"__proto__":{"a":1},"2":1,"1":2}', [{ op: 'add', path: '/__proto__/b', value: 2 }]), '{"__proto__":{"a":1,"b":2},"2":1,"1":2}', '__proto__ is data, and member order is kept');
});

t.test('bounds: operations per patch, bytes copied, depth and size of the result', async (t) => {
  const many = Array.from({ length: limits.JSON_PATCH_OPERATIONS_MAX + 1 }, () => ({ op: 'test', path: '/a', value: 1 }));
  t.equal(codeOf(() => apply('{"a":1}', many)), DocketErrorCode.PATCH_INVALID, `more than ${limits.JSON_PATCH_OPERATIONS_MAX} operations`);
  t.equal(apply('{"a":1}', many.slice(1)), '{"a":1}', `${limits.JSON_PATCH_OPERATIONS_MAX} operations are taken`);
  // Each copy doubles the document: without a bound 1,000 of them would need 2^1000 bytes.
  const doubling = [{ op: 'add', path: '/a', value: 'x'.repeat(1000) }, ...Array.from({ length: 40 }, (_, i) => ({ op: 'copy', from: '', path: `/k${i}` }))];
  t.equal(codeOf(() => apply('{"a":1}', doubling)), DocketErrorCode.LIMIT_EXCEEDED, 'copies are bounded in bytes');
  let deep: unknown = 1;
  for (let i = 0; i < limits.DOCUMENT_DEPTH_MAX; i++) deep = [deep];
  t.equal(codeOf(() => apply('{"a":[]}', [{ op: 'add', path: '/a/-', value: deep }])), DocketErrorCode.LIMIT_EXCEEDED, 'the result is held to the depth limit');
  t.equal(codeOf(() => apply('{"a":1}', [{ op: 'add', path: '/b', value: 'x'.repeat(limits.DOCUMENT_SIZE_BYTES_MAX) }])), DocketErrorCode.LIMIT_EXCEEDED, 'and to the size limit');
});

// ---- the reference: RFC 6902 on JSON.parse values, as plainly as it can be written ----

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
class RefError extends Error {
  constructor(readonly kind: 'invalid' | 'conflict' | 'test') {
    super(kind);
  }
}

function refPointer(text: unknown): string[] {
  if (typeof text !== 'string' || (text !== '' && !text.startsWith('/'))) throw new RefError('invalid');
  if (text === '') return [];
  return text.slice(1).split('/').map((token) => {
    if (/~([^01]|$)/.test(token)) throw new RefError('invalid');
    return token.replace(/~1/g, '/').replace(/~0/g, '~');
  });
}

function isObject(value: Json): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refIndex(token: string, length: number): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token) || Number(token) >= length) throw new RefError('conflict');
  return Number(token);
}

function refGet(document: Json, path: string[]): Json {
  let node = document;
  for (const token of path) {
    if (Array.isArray(node)) node = node[refIndex(token, node.length)]!;
    else if (isObject(node) && Object.hasOwn(node, token)) node = node[token]!;
    else throw new RefError('conflict');
  }
  return node;
}

function refSet(target: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function refAdd(document: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value;
  const parent = refGet(document, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (Array.isArray(parent)) parent.splice(last === '-' ? parent.length : refIndex(last, parent.length + 1), 0, value);
  else if (isObject(parent)) refSet(parent, last, value);
  else throw new RefError('conflict');
  return document;
}

function refRemove(document: Json, path: string[]): void {
  if (path.length === 0) throw new RefError('conflict');
  const parent = refGet(document, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if (Array.isArray(parent)) parent.splice(refIndex(last, parent.length), 1);
  else if (isObject(parent) && Object.hasOwn(parent, last)) delete parent[last];
  else throw new RefError('conflict');
}

function refEqual(a: Json, b: Json): boolean {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => refEqual(v, b[i]!));
  if (isObject(a)) return isObject(b) && Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((k) => Object.hasOwn(b, k) && refEqual(a[k]!, b[k]!));
  return a === b;
}

function referenceApply(document: Json, patch: Json): Json {
  if (!Array.isArray(patch)) throw new RefError('invalid');
  // Operations are all checked before any applies: a malformed one anywhere is the patch's fault.
  const ops = patch.map((op) => {
    if (!isObject(op) || !['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(op.op as string)) throw new RefError('invalid');
    const path = refPointer(op.path);
    const from = op.op === 'move' || op.op === 'copy' ? refPointer(op.from) : undefined;
    if (['add', 'replace', 'test'].includes(op.op as string) && !Object.hasOwn(op, 'value')) throw new RefError('invalid');
    if (op.op === 'move' && from!.length < path.length && from!.every((token, i) => token === path[i])) throw new RefError('invalid');
    return { op: op.op as string, path, from, value: op.value as Json };
  });
  let doc: Json = structuredClone(document);
  for (const { op, path, from, value } of ops) {
    if (op === 'add') doc = refAdd(doc, path, structuredClone(value));
    else if (op === 'remove') refRemove(doc, path);
    else if (op === 'replace') {
      refGet(doc, path);
      if (path.length === 0) doc = structuredClone(value);
      else {
        refRemove(doc, path);
        doc = refAdd(doc, path, structuredClone(value));
      }
    } else if (op === 'move') {
      const moved = refGet(doc, from!);
      if (JSON.stringify(from) !== JSON.stringify(path)) {
        refRemove(doc, from!);
        doc = refAdd(doc, path, moved);
      }
    } else if (op === 'copy') doc = refAdd(doc, path, structuredClone(refGet(doc, from!)));
    else if (!refEqual(refGet(doc, path), value)) throw new RefError('test');
  }
  return doc;
}

const KIND_OF_CODE: Record<string, string> = {
  [DocketErrorCode.PATCH_INVALID]: 'invalid',
  [DocketErrorCode.PATCH_CONFLICT]: 'conflict',
  [DocketErrorCode.PATCH_TEST_FAILED]: 'test',
};

// ---- random documents and patches ----

const KEYS = ['a', 'b', 'c', 'x~y', 'p/q', '__proto__', 'constructor', '0', '1'];
const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => (Object.is(n, -0) ? 0 : n)), fc.constantFrom('', 'é', 'x', '"q"', '10'));
const value: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.array(fc.tuple(fc.constantFrom(...KEYS), tie('value')), { maxLength: 3 }).map((entries) => {
      const object: { [key: string]: Json } = {};
      for (const [k, v] of entries) refSet(object, k, v);
      return object;
    }),
  ),
})).value;
const documentArb = fc.array(fc.tuple(fc.constantFrom(...KEYS), value), { maxLength: 5 }).map((entries) => {
  const object: { [key: string]: Json } = {};
  for (const [k, v] of entries) refSet(object, k, v);
  return object;
});

function escapeToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Every pointer into `document`, with tokens that may or may not exist added on. */
function pointersOf(document: Json, prefix = ''): string[] {
  const found = [prefix];
  if (Array.isArray(document)) document.forEach((v, i) => found.push(...pointersOf(v, `${prefix}/${i}`)));
  else if (isObject(document)) for (const k of Object.keys(document)) found.push(...pointersOf(document[k]!, `${prefix}/${escapeToken(k)}`));
  return found;
}

function patchArb(document: Json): fc.Arbitrary<Json[]> {
  const existing = pointersOf(document);
  const pointerArb = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...existing) },
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...existing), fc.constantFrom('-', '0', '1', '01', 'new', 'a', '9')).map(([p, t]) => `${p}/${t}`) },
    { weight: 1, arbitrary: fc.constantFrom('a', '/a~2', '/~', '') },
  );
  const operation = fc.oneof(
    fc.record({ op: fc.constant('add'), path: pointerArb, value }),
    fc.record({ op: fc.constant('remove'), path: pointerArb }),
    fc.record({ op: fc.constant('replace'), path: pointerArb, value }),
    fc.record({ op: fc.constant('move'), from: pointerArb, path: pointerArb }),
    fc.record({ op: fc.constant('copy'), from: pointerArb, path: pointerArb }),
    // A test of what the document holds at a pointer passes unless an earlier operation changed it.
    fc.constantFrom(...existing).map((path) => ({ op: 'test', path, value: refGet(document, refPointer(path)) })),
    fc.record({ op: fc.constant('test'), path: pointerArb, value }),
    fc.record({ op: fc.constantFrom('nope', 'ADD'), path: pointerArb }, { requiredKeys: ['path'] }),
  );
  return fc.array(operation as fc.Arbitrary<Json>, { minLength: 1, maxLength: 4 });
}

t.test('random documents and patches: the same outcome as the reference, untouched fields byte for byte', async (t) => {
  const outcomes = { ok: 0, invalid: 0, conflict: 0, test: 0, other: 0 };
  fc.assert(
    fc.property(documentArb.chain((document) => fc.tuple(fc.constant(document), patchArb(document))), ([document, patch]) => {
      const text = JSON.stringify(document);
      let expected: { kind: string; document?: Json };
      try {
        expected = { kind: 'ok', document: referenceApply(document, patch) };
        if (!isObject(expected.document!)) expected = { kind: 'other' };
      } catch (error) {
        if (!(error instanceof RefError)) throw error;
        expected = { kind: error.kind };
      }
      const fields = fieldsOf(new JsonText(Buffer.from(text)));
      let actual: { kind: string; document?: Json; names?: string[]; values?: Buffer[] };
      try {
        const result = applyJsonPatch(fields.names, fields.values, checkJsonPatch(JSON.stringify(patch)));
        actual = { kind: 'ok', document: JSON.parse(textOf(result)) as Json, names: result.names, values: result.values };
      } catch (error) {
        if (!(error instanceof DocketError)) throw error;
        actual = { kind: KIND_OF_CODE[error.code] ?? 'other' };
      }
      outcomes[expected.kind as keyof typeof outcomes]++;
      if (actual.kind !== expected.kind) throw new Error(`outcome ${actual.kind}, the reference's ${expected.kind}: ${text} ${JSON.stringify(patch)}`);
      if (actual.kind !== 'ok') return;
      if (!refEqual(actual.document!, expected.document!)) throw new Error(`got ${JSON.stringify(actual.document)}, the reference ${JSON.stringify(expected.document)}`);
      // A top-level field no pointer names keeps its bytes exactly.
      const named = new Set<string>();
      for (const op of patch as { path?: unknown; from?: unknown }[]) {
        for (const p of [op.path, op.from]) if (typeof p === 'string') named.add(p === '' ? '' : (refPointer(p)[0] ?? ''));
      }
      if (named.has('')) return;
      fields.names.forEach((name, i) => {
        if (named.has(name)) return;
        const at = actual.names!.indexOf(name);
        if (at === -1 || !actual.values![at]!.equals(fields.values[i]!)) throw new Error(`untouched field ${name} changed`);
      });
    }),
    { seed: SEED, numRuns: 1500 },
  );
  // The runs must reach every outcome, or the property says less than it seems to.
  t.ok(outcomes.ok > 200, `successes (${outcomes.ok})`);
  t.ok(outcomes.conflict > 50, `conflicts (${outcomes.conflict})`);
  t.ok(outcomes.test > 20, `failed tests (${outcomes.test})`);
  t.ok(outcomes.invalid > 50, `malformed patches (${outcomes.invalid})`);
  t.comment(`seed ${SEED}: ${JSON.stringify(outcomes)}`);
});
