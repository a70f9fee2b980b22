// JSON Patch (RFC 6902) with JSON Pointer (RFC 6901) on a document's top-level fields. Only the
// top-level members a patch names (in a `path` or a `from`) are parsed; the others keep their
// bytes and are never looked at. Parsed members are held as values of our own (objects as Maps,
// so member order and names such as "__proto__" are data; numbers as their JSON text, so
// 9007199254740993 and 1.0 keep their text), and only members the patch writes are serialised
// again: numbers as the text they had (in the document or in the patch), strings and names as
// JSON.stringify writes them (same value; `\u00e9` becomes `é`).
//
// Errors, after RFC 5789 §2.2: a patch document that is malformed (not an array of operation
// objects, an unknown op, a member missing or of the wrong type, a pointer that is not a JSON
// Pointer, a move into its own child, more than JSON_PATCH_OPERATIONS_MAX operations) is 400
// PATCH_INVALID; a patch that cannot be applied to the document as it is (a path that does not
// exist, an array index out of range, a path through a scalar) is 409 PATCH_CONFLICT, and a
// failed `test` is 409 PATCH_TEST_FAILED. Either way nothing is written.

import { DocketError, DocketErrorCode } from '../errors.js';
import * as limits from '../limits.js';
import { assemble } from './assemble.js';
import { fieldsOf, JsonText } from './json-text.js';
import { limit, type FieldList } from './validate.js';

/** A JSON number as its text. */
export class RawNumber {
  constructor(readonly text: string) {}
}

export type Value = null | boolean | string | RawNumber | Value[] | ObjectValue;
export type ObjectValue = Map<string, Value>;

export type PatchOp = 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';

export interface PatchOperation {
  readonly op: PatchOp;
  readonly path: readonly string[];
  readonly from?: readonly string[];
  readonly value?: Value;
}

/** A checked JSON Patch: what PATCH with `application/json-patch+json` hands the store. */
export class JsonPatch {
  constructor(readonly operations: readonly PatchOperation[]) {}

  /** The top-level names the patch reads or writes; undefined when a pointer is the whole document (""). */
  touched(): Set<string> | undefined {
    const names = new Set<string>();
    for (const { path, from } of this.operations) {
      for (const pointer of from === undefined ? [path] : [path, from]) {
        if (pointer.length === 0) return undefined;
        names.add(pointer[0]!);
      }
    }
    return names;
  }
}

const OPS: ReadonlySet<string> = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

function invalid(message: string): DocketError {
  return new DocketError(DocketErrorCode.PATCH_INVALID, message);
}

function conflict(message: string): DocketError {
  return new DocketError(DocketErrorCode.PATCH_CONFLICT, message);
}

/**
 * The JSON Patch in `text`, checked: 400 PATCH_INVALID if it is not a JSON Patch or holds more
 * than JSON_PATCH_OPERATIONS_MAX operations. REQUIRES: `text` is JSON that JSON.parse accepts
 * (the HTTP layer's parseJsonPatch checks its bytes first).
 */
export function checkJsonPatch(text: string): JsonPatch {
  const body = parseValue(text);
  if (!Array.isArray(body)) throw invalid('a JSON Patch is a JSON array of operations');
  if (body.length > limits.JSON_PATCH_OPERATIONS_MAX) throw invalid(`a JSON Patch holds at most ${limits.JSON_PATCH_OPERATIONS_MAX} operations, got ${body.length}`);
  return new JsonPatch(body.map((item, index) => checkOperation(item, index)));
}

function checkOperation(item: Value, index: number): PatchOperation {
  const where = `operation ${index}`;
  if (!(item instanceof Map)) throw invalid(`${where} is not a JSON object`);
  const op = item.get('op');
  if (typeof op !== 'string' || !OPS.has(op)) throw invalid(`${where}: "op" must be one of add, remove, replace, move, copy, test`);
  const path = pointer(item.get('path'), `${where} (${op}): "path"`);
  if (op === 'move' || op === 'copy') {
    const from = pointer(item.get('from'), `${where} (${op}): "from"`);
    if (op === 'move' && from.length < path.length && from.every((token, i) => token === path[i])) {
      throw invalid(`${where} (move): "from" ${JSON.stringify(item.get('from'))} is a prefix of "path": a value cannot move into itself`);
    }
    return { op, path, from };
  }
  if (op === 'add' || op === 'replace' || op === 'test') {
    if (!item.has('value')) throw invalid(`${where} (${op}): "value" is missing`);
    return { op, path, value: item.get('value')! };
  }
  return { op: op as PatchOp, path };
}

/** The reference tokens of a JSON Pointer (RFC 6901), unescaped. */
export function pointer(value: Value | undefined, what: string): string[] {
  if (typeof value !== 'string') throw invalid(`${what} must be a JSON Pointer string`);
  if (value === '') return [];
  if (value[0] !== '/') throw invalid(`${what} ${JSON.stringify(value)} is not a JSON Pointer: it must be "" or start with "/"`);
  return value.slice(1).split('/').map((token) => {
    if (/~[^01]|~$/.test(token)) throw invalid(`${what} ${JSON.stringify(value)} is not a JSON Pointer: "~" must be followed by 0 or 1`);
    return token.replaceAll('~1', '/').replaceAll('~0', '~');
  });
}

/** Placeholder for a top-level member the patch never names: its bytes are kept as they are. */
class Untouched {
  constructor(readonly bytes: Buffer) {}
}

type Slot = Value | Untouched;

/**
 * The document (top-level `names` and their compact JSON `values`) with the patch applied: the
 * new field list, held to every document check and limit (scanned as a PUT's body is). Fields
 * the patch does not write keep their exact bytes. All or nothing: any failure throws.
 */
export function applyJsonPatch(names: readonly string[], values: readonly Buffer[], patch: JsonPatch): FieldList {
  const touched = patch.touched();
  const members = new Map<string, Slot>();
  names.forEach((name, i) => members.set(name, touched === undefined || touched.has(name) ? parseValue(values[i]!.toString('utf8')) : new Untouched(values[i]!)));
  // Operations never reach an Untouched slot: they name only touched members (or none, with "").
  let root = members as Value;
  const written = new Set<string>();
  let wroteRoot = false;
  const state = { copiedBytes: 0 };
  patch.operations.forEach((operation, index) => {
    const where = `operation ${index} (${operation.op})`;
    const writes = operation.op !== 'test';
    if (writes) {
      if (operation.path.length === 0 || (operation.op === 'move' && operation.from!.length === 0)) wroteRoot = true;
      else written.add(operation.path[0]!);
      if (operation.op === 'move' && operation.from!.length > 0) written.add(operation.from![0]!);
    }
    root = applyOperation(root, operation, where, state);
  });
  // Only the end result must be an object (RFC 6902 §5 judges the whole patch, not each step).
  if (!(root instanceof Map)) throw new DocketError(DocketErrorCode.DOCUMENT_INVALID, 'the patched document is not a JSON object');
  const original = new Map(names.map((name, i) => [name, values[i]!]));
  const fields: [string, Buffer][] = [];
  for (const [name, slot] of root as Map<string, Slot>) {
    const kept = original.get(name);
    if (slot instanceof Untouched) fields.push([name, slot.bytes]);
    else if (kept !== undefined && !wroteRoot && !written.has(name)) fields.push([name, kept]);
    else fields.push([name, Buffer.from(serialise(slot), 'utf8')]);
  }
  if (fields.length > limits.FIELDS_PER_DOCUMENT_MAX) throw limit(`a document has at most ${limits.FIELDS_PER_DOCUMENT_MAX} top-level fields, got ${fields.length}`);
  // Scanned as a body is: UTF-8, depth, names, limits. Compact values come back as they went in.
  return fieldsOf(new JsonText(Buffer.from(assemble(fields), 'utf8'), 'the patched document'));
}

/** Applies one operation under `root`; returns the new root (the same object unless "" was written). */
function applyOperation(root: Value, operation: PatchOperation, where: string, state: { copiedBytes: number }): Value {
  switch (operation.op) {
    case 'add':
      return add(root, operation.path, clone(operation.value!), where);
    case 'remove':
      remove(root, operation.path, where);
      return root;
    case 'replace': {
      if (operation.path.length === 0) return clone(operation.value!);
      // In place: a replaced member keeps its position.
      get(root, operation.path, where); // It must exist.
      const parent = get(root, operation.path.slice(0, -1), where);
      const token = operation.path[operation.path.length - 1]!;
      if (parent instanceof Map) parent.set(token, clone(operation.value!));
      else (parent as Value[])[Number(token)] = clone(operation.value!);
      return root;
    }
    case 'move': {
      const value = get(root, operation.from!, where, '"from"');
      if (operation.from!.length === operation.path.length && operation.from!.every((t, i) => t === operation.path[i])) return root;
      remove(root, operation.from!, where);
      return add(root, operation.path, value, where);
    }
    case 'copy': {
      const value = get(root, operation.from!, where, '"from"');
      state.copiedBytes += sizeOf(value, limits.DOCUMENT_SIZE_BYTES_MAX - state.copiedBytes + 1);
      if (state.copiedBytes > limits.DOCUMENT_SIZE_BYTES_MAX) throw limit(`a JSON Patch copies at most ${limits.DOCUMENT_SIZE_BYTES_MAX} bytes of JSON in all`);
      return add(root, operation.path, clone(value), where);
    }
    case 'test': {
      const value = get(root, operation.path, where);
      if (!equal(value, operation.value!)) throw new DocketError(DocketErrorCode.PATCH_TEST_FAILED, `${where}: the value at ${show(operation.path)} is not the one tested`);
      return root;
    }
  }
}

function show(path: readonly string[]): string {
  return JSON.stringify(path.length === 0 ? '' : '/' + path.map((t) => t.replaceAll('~', '~0').replaceAll('/', '~1')).join('/'));
}

/** The value at `path`; PATCH_CONFLICT if there is none. */
function get(root: Value, path: readonly string[], where: string, role = '"path"'): Value {
  let node: Value = root;
  for (let depth = 0; depth < path.length; depth++) {
    const token = path[depth]!;
    if (node instanceof Map) {
      if (!node.has(token)) throw conflict(`${where}: ${role} ${show(path)} does not exist in the document`);
      node = node.get(token)!;
    } else if (Array.isArray(node)) {
      const index = arrayIndex(token, node, false, path, where, role);
      node = node[index]!;
    } else {
      throw conflict(`${where}: ${role} ${show(path)} goes through a value that is neither an object nor an array`);
    }
  }
  return node;
}

/** `token` as an index into `array`, up to its length when `end` (an insertion point), else its last element; PATCH_CONFLICT otherwise. */
function arrayIndex(token: string, array: readonly Value[], end: boolean, path: readonly string[], where: string, role: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw conflict(`${where}: ${role} ${show(path)}: ${JSON.stringify(token)} is not an array index`);
  const index = Number(token);
  if (index > (end ? array.length : array.length - 1)) throw conflict(`${where}: ${role} ${show(path)}: index ${token} is out of range (the array has ${array.length} elements)`);
  return index;
}

/** Adds `value` at `path` (RFC 6902 §4.1); returns the new root. */
function add(root: Value, path: readonly string[], value: Value, where: string): Value {
  if (path.length === 0) return value;
  const parent = get(root, path.slice(0, -1), where);
  const token = path[path.length - 1]!;
  if (parent instanceof Map) parent.set(token, value);
  else if (Array.isArray(parent)) parent.splice(token === '-' ? parent.length : arrayIndex(token, parent, true, path, where, '"path"'), 0, value);
  else throw conflict(`${where}: "path" ${show(path)}: its parent is neither an object nor an array`);
  return root;
}

/** Removes the value at `path`, which must exist (RFC 6902 §4.2). */
function remove(root: Value, path: readonly string[], where: string): void {
  if (path.length === 0) throw conflict(`${where}: the whole document cannot be removed`);
  const parent = get(root, path.slice(0, -1), where);
  const token = path[path.length - 1]!;
  if (parent instanceof Map) {
    if (!parent.delete(token)) throw conflict(`${where}: ${show(path)} does not exist in the document`);
  } else if (Array.isArray(parent)) {
    parent.splice(arrayIndex(token, parent, false, path, where, '"path"'), 1);
  } else {
    throw conflict(`${where}: ${show(path)}: its parent is neither an object nor an array`);
  }
}

export function clone(value: Value): Value {
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, clone(v)]));
  if (Array.isArray(value)) return value.map(clone);
  return value;
}

/** JSON equality (RFC 6902 §4.6): numbers by numeric value, objects regardless of member order. */
export function equal(a: Value, b: Value): boolean {
  if (a instanceof RawNumber) return b instanceof RawNumber && sameNumber(a.text, b.text);
  if (a instanceof Map) {
    if (!(b instanceof Map) || a.size !== b.size) return false;
    for (const [key, value] of a) if (!b.has(key) || !equal(value, b.get(key)!)) return false;
    return true;
  }
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => equal(v, b[i]!));
  return a === b;
}

/** Whether two JSON number texts denote the same number, exactly (1.0 = 1 = 10e-1; -0 = 0). */
function sameNumber(a: string, b: string): boolean {
  return canonical(a) === canonical(b);
}

/** A JSON number as `digits e exponent` with no leading or trailing zeros in its digits, signed; zero is "0". */
export function canonical(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)!;
  const [, sign, whole, fraction = '', exponentText = '0'] = match;
  let digits = (whole! + fraction).replace(/^0+/, '');
  if (digits === '') return '0';
  let exponent = BigInt(exponentText) - BigInt(fraction.length);
  const trimmed = digits.replace(/0+$/, '');
  exponent += BigInt(digits.length - trimmed.length);
  digits = trimmed;
  return `${sign}${digits}e${exponent}`;
}

/** The compact JSON text of a value. */
export function serialise(value: Value): string {
  if (value === null) return 'null';
  if (value instanceof RawNumber) return value.text;
  if (value instanceof Map) return `{${[...value].map(([k, v]) => `${JSON.stringify(k)}:${serialise(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(serialise).join(',')}]`;
  return JSON.stringify(value);
}

/** Bytes of `value`'s compact text, counted only until they pass `budget`. */
function sizeOf(value: Value, budget: number): number {
  let total = 0;
  const visit = (node: Value): void => {
    if (total > budget) return;
    if (node instanceof Map) {
      total += 2;
      for (const [k, v] of node) {
        total += k.length + 4;
        visit(v);
      }
    } else if (Array.isArray(node)) {
      total += 2;
      for (const v of node) {
        total += 1;
        visit(v);
      }
    } else if (node instanceof RawNumber) {
      total += node.text.length;
    } else {
      total += typeof node === 'string' ? node.length + 2 : 5;
    }
  };
  visit(value);
  return total;
}

/**
 * Parses JSON text that JSON.parse accepts (the caller made sure), keeping numbers as their text
 * and objects as Maps (a repeated name keeps its first place and last value, as JSON.parse reads it).
 */
export function parseValue(text: string): Value {
  let i = 0;
  const space = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = (): string => {
    const start = i;
    i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    const slice = text.slice(start, i);
    return slice.includes('\\') ? (JSON.parse(slice) as string) : slice.slice(1, -1);
  };
  const value = (): Value => {
    space();
    const c = text[i];
    if (c === '{') {
      i++;
      const map: ObjectValue = new Map();
      space();
      if (text[i] === '}') {
        i++;
        return map;
      }
      for (;;) {
        space();
        const key = string();
        space();
        i++; // ':'
        map.set(key, value());
        space();
        if (text[i++] === '}') return map;
      }
    }
    if (c === '[') {
      i++;
      const array: Value[] = [];
      space();
      if (text[i] === ']') {
        i++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        if (text[i++] === ']') return array;
      }
    }
    if (c === '"') return string();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    const match = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    match.lastIndex = i;
    const number = match.exec(text)![0];
    i += number.length;
    return new RawNumber(number);
  };
  return value();
}
