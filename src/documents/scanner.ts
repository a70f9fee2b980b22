// A validating JSON scanner over UTF-8 bytes for the write path: it splits a document into its
// top-level fields as byte ranges, without building JavaScript values, so a field's value is
// stored as the bytes the client sent. Compaction and JSON Merge Patch (RFC 7396) work on the
// same bytes, so members a patch leaves alone keep their exact text (1.0 stays 1.0).

import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { randomInt } from 'node:crypto';
import { DocketError, DocketErrorCode } from '../errors.js';
import * as limits from '../limits.js';
import { checkFieldName } from './validate.js';

const TAB = 0x09;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_BRACKET = 0x5d;
const LOWER_E = 0x65;
const LOWER_U = 0x75;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

// Character classes, one bit each, so the loops test a byte with one table load.
const IS_SPACE = 1;
const IS_PLAIN = 2; // A string byte that needs no attention: not a quote, backslash or control.
const IS_DIGIT = 4;
const IS_HEX = 8;
const IS_ESCAPE = 16; // May follow a backslash as a one-letter escape.
const IS_DELIMITER = 32; // Ends a number or literal in compact text.

const CLASS = buildClasses();

function buildClasses(): Uint8Array {
  const table = new Uint8Array(256);
  for (const byte of [SPACE, TAB, LINE_FEED, CARRIAGE_RETURN]) table[byte]! |= IS_SPACE;
  // Bytes >= 0x80 are plain: isUtf8 has already checked the sequences they form.
  for (let byte = SPACE; byte < 256; byte++) if (byte !== QUOTE && byte !== BACKSLASH) table[byte]! |= IS_PLAIN;
  for (let byte = ZERO; byte <= 0x39; byte++) table[byte]! |= IS_DIGIT | IS_HEX;
  for (const letter of 'abcdefABCDEF') table[letter.charCodeAt(0)]! |= IS_HEX;
  for (const letter of '"\\/bfnrt') table[letter.charCodeAt(0)]! |= IS_ESCAPE;
  for (const byte of [COMMA, COLON, CLOSE_BRACE, CLOSE_BRACKET]) table[byte]! |= IS_DELIMITER;
  return table;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
const EMPTY = Buffer.alloc(0);

/** The top-level fields of one document as byte ranges; scanDocument fills it and may reuse it. */
export class FieldScan {
  /** Top-level fields found by the last scan. */
  count = 0;
  /** The scanned bytes (the buffer given to scanDocument). */
  bytes: Buffer = EMPTY;
  /** Byte ranges into `bytes`, per field: the name's text between its quotes (raw, escapes as sent) and the value, without surrounding whitespace. */
  nameStart: Int32Array;
  nameEnd: Int32Array;
  valueStart: Int32Array;
  valueEnd: Int32Array;
  /** Per field: 1 if the name holds a backslash escape. */
  nameEscaped: Uint8Array;
  /** Per field: 1 if the value holds insignificant whitespace (outside strings) that compaction must remove. */
  valueSpaced: Uint8Array;
  /** Per field: the FNV-1a hash of the decoded name's UTF-8 bytes (equal names, equal hashes). */
  nameHash: Int32Array;
  /** Bytes of the document once compacted: `{`, `"name":value` per field joined by `,`, `}`. */
  compactSizeBytes = 0;

  constructor(capacity = 64) {
    this.nameStart = new Int32Array(capacity);
    this.nameEnd = new Int32Array(capacity);
    this.valueStart = new Int32Array(capacity);
    this.valueEnd = new Int32Array(capacity);
    this.nameEscaped = new Uint8Array(capacity);
    this.valueSpaced = new Uint8Array(capacity);
    this.nameHash = new Int32Array(capacity);
  }

  /** The field's name, escapes resolved. */
  name(i: number): string {
    check(i >= 0 && i < this.count, 'a field index is within the scan');
    const start = this.nameStart[i]!;
    const end = this.nameEnd[i]!;
    // The scanner has checked the string, so JSON.parse of it cannot fail.
    if (this.nameEscaped[i] === 1) return JSON.parse(this.bytes.toString('utf8', start - 1, end + 1)) as string;
    return internedName(this.bytes, start, end, this.nameHash[i]!);
  }

  /** The field's value as compact JSON text: a view of `bytes` when it holds no whitespace to remove. */
  value(i: number): Buffer {
    check(i >= 0 && i < this.count, 'a field index is within the scan');
    if (this.valueSpaced[i] === 1) return compactJson(this.bytes, this.valueStart[i]!, this.valueEnd[i]!);
    return this.bytes.subarray(this.valueStart[i]!, this.valueEnd[i]!);
  }

  /** Makes room for field `i`, doubling the arrays. */
  grow(i: number): void {
    if (i < this.nameStart.length) return;
    const capacity = Math.max(i + 1, this.nameStart.length * 2);
    this.nameStart = copied(new Int32Array(capacity), this.nameStart);
    this.nameEnd = copied(new Int32Array(capacity), this.nameEnd);
    this.valueStart = copied(new Int32Array(capacity), this.valueStart);
    this.valueEnd = copied(new Int32Array(capacity), this.valueEnd);
    this.nameEscaped = copied(new Uint8Array(capacity), this.nameEscaped);
    this.valueSpaced = copied(new Uint8Array(capacity), this.valueSpaced);
    this.nameHash = copied(new Int32Array(capacity), this.nameHash);
  }
}

function copied<T extends Int32Array | Uint8Array>(into: T, from: T): T {
  into.set(from);
  return into;
}

// ---- scanning ----

/**
 * The scan under way. Scans are synchronous and never nest, so one shared record is safe; it
 * spares the hot loops from returning pairs (an object, not module `let`s, which cost V8 a
 * check on every use).
 */
const state = {
  /** Names the input in error messages. */
  what: 'the body',
  /** Whitespace bytes skipped since the caller last reset it. */
  spaceBytes: 0,
  /** Set when a string scan meets a backslash. */
  escaped: 0,
  /** The hash of the name scanName last read. */
  nameHash: 0,
};
/** The opening byte of each open container, by depth. */
const openers = new Uint8Array(limits.DOCUMENT_DEPTH_MAX + 2);

/**
 * Scans `bytes` as one JSON document that must be an object, filling `scan` (its arrays grow as
 * needed). `what` names the input in error messages ("the body", "line 7"). A refusal is a
 * DocketError and leaves the scan with no fields.
 */
export function scanDocument(bytes: Buffer, scan: FieldScan = new FieldScan(), what = 'the body'): FieldScan {
  if (!isUtf8(bytes)) throw new DocketError(DocketErrorCode.BODY_INVALID, `${what} is not valid UTF-8`);
  state.what = what;
  scan.bytes = bytes;
  scan.count = 0;
  scan.compactSizeBytes = 0;
  const n = bytes.length;
  try {
    const start = skipSpace(bytes, 0, n);
    if (start < n && bytes[start] === OPEN_BRACE) scanFields(scan, bytes, start, n);
    else refuseNonObject(bytes, start, n);
    checkFields(scan);
  } catch (error) {
    scan.count = 0; // A refused document has no fields to misread.
    throw error;
  }
  return scan;
}

/** Scans the members of the object at bytes[start], recording at most FIELDS_PER_DOCUMENT_MAX. */
function scanFields(scan: FieldScan, bytes: Buffer, start: number, n: number): void {
  let i = skipSpace(bytes, start + 1, n);
  let count = 0;
  let sizeBytes = 2; // The braces; each field adds its name, its value, two quotes, a colon and a comma.
  if (i < n && bytes[i] === CLOSE_BRACE) return finish(scan, bytes, i + 1, n, count, sizeBytes);
  for (;;) {
    if (i >= n || bytes[i] !== QUOTE) throw syntax(bytes, i, 'a field name');
    const nameStart = i + 1;
    const nameEnd = scanName(bytes, nameStart, n) - 1;
    const nameEscaped = state.escaped;
    i = skipSpace(bytes, nameEnd + 1, n);
    if (i >= n || bytes[i] !== COLON) throw syntax(bytes, i, '":"');
    i = skipSpace(bytes, i + 1, n);
    state.spaceBytes = 0;
    const valueStart = i;
    // Most values are scalars: scanning them directly skips scanValue's container machinery.
    const first = i < n ? bytes[i]! : -1;
    i = first === OPEN_BRACE || first === OPEN_BRACKET ? scanValue(bytes, i, n, 1) : scanScalar(bytes, i, n, first);
    if (count < limits.FIELDS_PER_DOCUMENT_MAX) record(scan, count, nameStart, nameEnd, nameEscaped, valueStart, i);
    sizeBytes += nameEnd - nameStart + i - valueStart - state.spaceBytes + 4;
    count++;
    i = skipSpace(bytes, i, n);
    if (i < n && bytes[i] === COMMA) i = skipSpace(bytes, i + 1, n);
    else if (i < n && bytes[i] === CLOSE_BRACE) return finish(scan, bytes, i + 1, n, count, sizeBytes - 1);
    else throw syntax(bytes, i, '"," or "}"');
  }
}

function record(scan: FieldScan, i: number, nameStart: number, nameEnd: number, nameEscaped: number, valueStart: number, valueEnd: number): void {
  if (i >= scan.nameStart.length) scan.grow(i);
  scan.nameStart[i] = nameStart;
  scan.nameEnd[i] = nameEnd;
  scan.nameEscaped[i] = nameEscaped;
  scan.valueStart[i] = valueStart;
  scan.valueEnd[i] = valueEnd;
  scan.valueSpaced[i] = state.spaceBytes > 0 ? 1 : 0;
  scan.nameHash[i] = state.nameHash;
}

/** Refuses anything after the document, then sets the counts (the limits are checked after). */
function finish(scan: FieldScan, bytes: Buffer, end: number, n: number, count: number, sizeBytes: number): void {
  const after = skipSpace(bytes, end, n);
  if (after < n) throw syntax(bytes, after, 'nothing more after the document');
  if (count > limits.FIELDS_PER_DOCUMENT_MAX) throw limit(`a document has at most ${limits.FIELDS_PER_DOCUMENT_MAX} top-level fields, got ${count}`);
  scan.count = count;
  scan.compactSizeBytes = sizeBytes;
}

/** Checks the JSON text at bytes[start] whole, so that bad JSON is BODY_INVALID, then refuses it as a document. */
function refuseNonObject(bytes: Buffer, start: number, n: number): never {
  const after = skipSpace(bytes, scanValue(bytes, start, n, 0), n);
  if (after < n) throw syntax(bytes, after, 'nothing more after the value');
  throw new DocketError(DocketErrorCode.DOCUMENT_INVALID, 'a document must be a JSON object');
}

function skipSpace(bytes: Buffer, start: number, n: number): number {
  let i = start;
  while (i < n && (CLASS[bytes[i]!]! & IS_SPACE) !== 0) i++;
  state.spaceBytes += i - start;
  return i;
}

/**
 * Checks the JSON value at bytes[start] (not whitespace) and returns one past its end. `depth`
 * is the nesting it sits in; open containers are kept in `openers` rather than by recursion.
 */
function scanValue(bytes: Buffer, start: number, n: number, depth: number): number {
  const base = depth;
  let i = start;
  for (;;) {
    // Here bytes[i] starts a value.
    const byte = i < n ? bytes[i]! : -1;
    if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limits.DOCUMENT_DEPTH_MAX) throw limit(`${state.what} nests deeper than ${limits.DOCUMENT_DEPTH_MAX} levels`);
      openers[depth] = byte;
      i = skipSpace(bytes, i + 1, n);
      // The closing byte is the opening one plus 2, for objects and arrays alike.
      if (i >= n || bytes[i] !== byte + 2) {
        if (byte === OPEN_BRACE) i = scanMemberName(bytes, i, n);
        continue;
      }
      i++;
      depth--;
    } else {
      i = scanScalar(bytes, i, n, byte);
    }
    // After a value: close the containers that end here, then go on to the next value.
    for (;;) {
      if (depth === base) return i;
      i = skipSpace(bytes, i, n);
      const next = i < n ? bytes[i]! : -1;
      const opener = openers[depth]!;
      if (next === COMMA) {
        i = skipSpace(bytes, i + 1, n);
        if (opener === OPEN_BRACE) i = scanMemberName(bytes, i, n);
        break;
      }
      if (next !== opener + 2) throw syntax(bytes, i, opener === OPEN_BRACE ? '"," or "}"' : '"," or "]"');
      i++;
      depth--;
    }
  }
}

/** Checks the string, number or literal at bytes[start], whose first byte is `byte`; returns one past it. */
function scanScalar(bytes: Buffer, start: number, n: number, byte: number): number {
  if (byte === QUOTE) return scanString(bytes, start + 1, n);
  if (byte === MINUS || (byte >= 0 && (CLASS[byte]! & IS_DIGIT) !== 0)) return scanNumber(bytes, start, n);
  if (byte === TRUE[0]) return scanLiteral(bytes, start, n, TRUE);
  if (byte === FALSE[0]) return scanLiteral(bytes, start, n, FALSE);
  if (byte === NULL[0]) return scanLiteral(bytes, start, n, NULL);
  throw syntax(bytes, start, 'a value');
}

/** Checks `"name":` at bytes[start], with whitespace around the colon, and returns where its value starts. */
function scanMemberName(bytes: Buffer, start: number, n: number): number {
  if (start >= n || bytes[start] !== QUOTE) throw syntax(bytes, start, 'a member name');
  let i = skipSpace(bytes, scanString(bytes, start + 1, n), n);
  if (i >= n || bytes[i] !== COLON) throw syntax(bytes, i, '":"');
  i = skipSpace(bytes, i + 1, n);
  return i;
}

/** Checks a string whose text starts at bytes[start] and returns one past its closing quote. */
function scanString(bytes: Buffer, start: number, n: number): number {
  let i = start;
  for (;;) {
    while (i < n && (CLASS[bytes[i]!]! & IS_PLAIN) !== 0) i++;
    if (i >= n) throw unclosed(start - 1, n);
    const byte = bytes[i]!;
    if (byte === QUOTE) return i + 1;
    if (byte !== BACKSLASH) throw syntaxAt(`control character 0x${hex(byte)} must be escaped in a string`, i);
    state.escaped = 1;
    i = scanEscape(bytes, i, n);
  }
}

/** scanString for a top-level name, which also hashes its bytes into state.nameHash (for names without escapes). */
function scanName(bytes: Buffer, start: number, n: number): number {
  state.escaped = 0;
  let hash = FNV_OFFSET;
  let i = start;
  for (;;) {
    for (; i < n; i++) {
      const byte = bytes[i]!;
      if ((CLASS[byte]! & IS_PLAIN) === 0) break;
      hash = Math.imul(hash ^ byte, FNV_PRIME);
    }
    if (i < n && bytes[i] === BACKSLASH) {
      // The hash of an escaped name is taken again from its decoded text.
      state.escaped = 1;
      i = scanEscape(bytes, i, n);
      continue;
    }
    if (i >= n) throw unclosed(start - 1, n);
    state.nameHash = hash;
    return scanString(bytes, i, n); // Checks and reports what ended the run.
  }
}

/** Checks the escape at bytes[start] (a backslash) and returns one past it. */
function scanEscape(bytes: Buffer, start: number, n: number): number {
  const letter = start + 1 < n ? bytes[start + 1]! : -1;
  if (letter === LOWER_U) {
    for (let i = start + 2; i < start + 6; i++) {
      if (i >= n || (CLASS[bytes[i]!]! & IS_HEX) === 0) throw syntaxAt('\\u must be followed by four hex digits', start);
    }
    return start + 6;
  }
  if (letter >= 0 && (CLASS[letter]! & IS_ESCAPE) !== 0) return start + 2;
  throw syntaxAt('a backslash must start one of the escapes \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX', start);
}

/** Checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at bytes[start]; returns one past it. */
function scanNumber(bytes: Buffer, start: number, n: number): number {
  let i = start;
  if (bytes[i] === MINUS) i++;
  if (i < n && bytes[i] === ZERO) i++;
  else i = scanDigits(bytes, i, n);
  if (i < n && bytes[i] === DOT) i = scanDigits(bytes, i + 1, n);
  if (i < n && (bytes[i]! | 0x20) === LOWER_E) {
    i++;
    if (i < n && (bytes[i] === PLUS || bytes[i] === MINUS)) i++;
    i = scanDigits(bytes, i, n);
  }
  return i;
}

/** One or more digits at bytes[start]; returns one past them. */
function scanDigits(bytes: Buffer, start: number, n: number): number {
  let i = start;
  while (i < n && (CLASS[bytes[i]!]! & IS_DIGIT) !== 0) i++;
  if (i === start) throw syntax(bytes, i, 'a digit');
  return i;
}

function scanLiteral(bytes: Buffer, start: number, n: number, literal: Buffer): number {
  for (let k = 1; k < literal.length; k++) {
    if (start + k >= n || bytes[start + k] !== literal[k]) throw syntax(bytes, start + k, `"${literal.toString('latin1')}"`);
  }
  return start + literal.length;
}

// ---- checks on the fields ----

// Duplicate names are found with an open-addressing table of field numbers + 1 (0 is empty),
// over FNV-1a hashes of the names' UTF-8 bytes; the table is reused across scans.
const slots = new Int32Array(2 ** bitsFor(2 * limits.FIELDS_PER_DOCUMENT_MAX));
// The basis is random per process and slots come from the hash's top bits (Fibonacci hashing):
// FNV's low bits depend only on the low bits of its state, so names crafted to share them would
// otherwise pile into one run of slots and make each scan quadratic.
const FNV_OFFSET = (0x811c9dc5 ^ randomInt(2 ** 31 - 1)) | 0;
const FNV_PRIME = 0x01000193;
const GOLDEN_RATIO_32 = 0x9e3779b1;

/** Slot of `hash` in a table of 2 ** bits slots. */
function slotOf(hash: number, bits: number): number {
  return Math.imul(hash, GOLDEN_RATIO_32) >>> (32 - bits);
}

/** Names must be valid field names and distinct; the compacted document must fit its limit. */
function checkFields(scan: FieldScan): void {
  const count = scan.count;
  for (let i = 0; i < count; i++) {
    const nameEscaped = scan.nameEscaped[i] === 1;
    if (nameEscaped || scan.nameEnd[i]! - scan.nameStart[i]! > limits.FIELD_NAME_SIZE_BYTES_MAX) checkFieldName(scan.name(i));
    if (nameEscaped) scan.nameHash[i] = hashOf(Buffer.from(scan.name(i), 'utf8'));
  }
  checkDistinct(scan);
  if (scan.compactSizeBytes > limits.DOCUMENT_SIZE_BYTES_MAX) throw limit(`a document is at most ${limits.DOCUMENT_SIZE_BYTES_MAX} bytes of JSON`);
}

/** FNV-1a over `bytes`. */
function hashOf(bytes: Buffer): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, FNV_PRIME);
  return hash;
}

function checkDistinct(scan: FieldScan): void {
  const bits = bitsFor(Math.max(16, 2 * scan.count));
  const mask = 2 ** bits - 1;
  const hashes = scan.nameHash;
  slots.fill(0, 0, mask + 1);
  for (let i = 0; i < scan.count; i++) {
    let slot = slotOf(hashes[i]!, bits);
    for (let other = slots[slot]! - 1; other >= 0; other = slots[slot]! - 1) {
      if (hashes[other] === hashes[i] && sameName(scan, other, i)) {
        throw new DocketError(DocketErrorCode.DOCUMENT_FIELD_DUPLICATE, `${state.what} names field ${JSON.stringify(scan.name(i))} twice`);
      }
      slot = (slot + 1) & mask;
    }
    slots[slot] = i + 1;
  }
}

function sameName(scan: FieldScan, a: number, b: number): boolean {
  if (scan.nameEscaped[a] === 1 || scan.nameEscaped[b] === 1) return scan.name(a) === scan.name(b);
  const start = scan.nameStart[a]!;
  const other = scan.nameStart[b]!;
  const length = scan.nameEnd[a]! - start;
  if (scan.nameEnd[b]! - other !== length) return false;
  for (let k = 0; k < length; k++) if (scan.bytes[start + k] !== scan.bytes[other + k]) return false;
  return true;
}

/** The fewest bits that count `value` slots. */
function bitsFor(value: number): number {
  let bits = 0;
  while (2 ** bits < value) bits++;
  return bits;
}

// Names recur in every document of a collection, so unescaped ASCII names are kept in a small
// table indexed by their hash: a hit costs a comparison of bytes instead of a decode. The table
// is bounded: NAME_CACHE_SLOTS names of at most NAME_CACHE_NAME_BYTES_MAX bytes.
const NAME_CACHE_SLOT_BITS = 12;
const NAME_CACHE_SLOTS = 2 ** NAME_CACHE_SLOT_BITS;
const NAME_CACHE_NAME_BYTES_MAX = 64;
const nameCache: string[] = new Array<string>(NAME_CACHE_SLOTS).fill('');

/** The unescaped name bytes[start, end), whose hash is `hash`, from the cache when it is there. */
function internedName(bytes: Buffer, start: number, end: number, hash: number): string {
  const length = end - start;
  const slot = slotOf(hash, NAME_CACHE_SLOT_BITS);
  const cached = nameCache[slot]!;
  // A cached name is ASCII, so its UTF-16 units are its bytes.
  if (cached.length === length && sameAscii(cached, bytes, start)) return cached;
  const name = bytes.toString('utf8', start, end);
  if (length <= NAME_CACHE_NAME_BYTES_MAX && name.length === length) nameCache[slot] = name;
  return name;
}

function sameAscii(text: string, bytes: Buffer, start: number): boolean {
  for (let k = 0; k < text.length; k++) if (text.charCodeAt(k) !== bytes[start + k]) return false;
  return true;
}

// ---- errors ----

function syntax(bytes: Buffer, at: number, expected: string): DocketError {
  const found = at >= bytes.length ? 'the end' : describe(bytes[at]!);
  return syntaxAt(`expected ${expected}, found ${found}`, at);
}

function unclosed(quote: number, n: number): DocketError {
  return syntaxAt(`a string from byte ${quote} is still open`, n);
}

function syntaxAt(reason: string, at: number): DocketError {
  return new DocketError(DocketErrorCode.BODY_INVALID, `${state.what} is not valid JSON: ${reason} at byte ${at}`);
}

function describe(byte: number): string {
  return byte > SPACE && byte < 0x7f ? JSON.stringify(String.fromCharCode(byte)) : `byte 0x${hex(byte)}`;
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** An assertion cheap enough for hot loops: node:assert's ok() gathers its arguments into an array on every call. */
function check(condition: boolean, message: string): asserts condition {
  if (!condition) assert.fail(message);
}

function limit(message: string): DocketError {
  return new DocketError(DocketErrorCode.LIMIT_EXCEEDED, message);
}

// ---- compaction ----

/** Removes insignificant whitespace from the JSON text bytes[start, end), which a scan has checked. */
export function compactJson(bytes: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  let k = 0;
  let inString = false;
  for (let i = start; i < end; i++) {
    const byte = bytes[i]!;
    if (inString) {
      if (byte === BACKSLASH) {
        out[k++] = byte;
        out[k++] = bytes[++i]!; // The escaped byte cannot end the string.
        continue;
      }
      if (byte === QUOTE) inString = false;
    } else if ((CLASS[byte]! & IS_SPACE) !== 0) {
      continue;
    } else if (byte === QUOTE) {
      inString = true;
    }
    out[k++] = byte;
  }
  return out.subarray(0, k);
}

// ---- JSON Merge Patch on bytes ----

/** A member of a compact object: its quoted name as sent, the name decoded, its value. */
interface Member {
  readonly quotedName: Buffer;
  readonly name: string;
  value: Buffer | undefined;
}

const OPEN = Buffer.from('{');
const CLOSE = Buffer.from('}');
const COLON_TEXT = Buffer.from(':');
const COMMA_TEXT = Buffer.from(',');

/**
 * JSON Merge Patch (RFC 7396) on compact JSON text: `target` is the current value (undefined
 * when absent), `patch` the patch. Returns the result's compact text, or undefined when the
 * patch is null (remove). Untouched members of target objects keep their bytes; members keep
 * target order and new ones follow in patch order. Repeated names count once, with the last
 * value, as JSON.parse reads them.
 */
export function mergePatchBytes(target: Buffer | undefined, patch: Buffer): Buffer | undefined {
  if (patch[0] !== OPEN_BRACE) return patch.equals(NULL) ? undefined : patch;
  const result = target !== undefined && target[0] === OPEN_BRACE ? membersOf(target) : new Map<string, Member>();
  for (const change of membersOf(patch).values()) {
    const member = result.get(change.name);
    const merged = mergePatchBytes(member?.value, change.value!);
    if (member !== undefined) member.value = merged;
    else if (merged !== undefined) result.set(change.name, { quotedName: change.quotedName, name: change.name, value: merged });
  }
  return joinMembers(result);
}

function joinMembers(members: Map<string, Member>): Buffer {
  const pieces: Buffer[] = [OPEN];
  for (const member of members.values()) {
    if (member.value === undefined) continue;
    if (pieces.length > 1) pieces.push(COMMA_TEXT);
    pieces.push(member.quotedName, COLON_TEXT, member.value);
  }
  pieces.push(CLOSE);
  return Buffer.concat(pieces);
}

/** The members of the compact object `bytes` by name, in order; a repeated name keeps its first place and last value. */
function membersOf(bytes: Buffer): Map<string, Member> {
  const members = new Map<string, Member>();
  let i = 1;
  while (bytes[i] !== CLOSE_BRACE) {
    check(bytes[i] === QUOTE, 'a compact object member starts with its name');
    const nameEnd = endOfString(bytes, i + 1);
    check(bytes[nameEnd] === COLON, 'a compact member name is followed by a colon');
    const valueEnd = endOfValue(bytes, nameEnd + 1);
    const quotedName = bytes.subarray(i, nameEnd);
    const name = quotedName.includes(BACKSLASH) ? (JSON.parse(quotedName.toString('utf8')) as string) : bytes.toString('utf8', i + 1, nameEnd - 1);
    const value = bytes.subarray(nameEnd + 1, valueEnd);
    const earlier = members.get(name);
    if (earlier !== undefined) earlier.value = value;
    else members.set(name, { quotedName, name, value });
    i = bytes[valueEnd] === COMMA ? valueEnd + 1 : valueEnd;
  }
  check(i === bytes.length - 1, 'a compact object ends at its closing brace');
  return members;
}

/** One past the closing quote of the compact string whose text starts at bytes[start]. */
function endOfString(bytes: Buffer, start: number): number {
  let i = start;
  for (;;) {
    check(i < bytes.length, 'a compact string ends before its text does');
    const byte = bytes[i]!;
    if (byte === QUOTE) return i + 1;
    i += byte === BACKSLASH ? 2 : 1;
  }
}

/** One past the end of the compact JSON value at bytes[start]. */
function endOfValue(bytes: Buffer, start: number): number {
  let depth = 0;
  let i = start;
  do {
    check(i < bytes.length, 'a compact value ends before its text does');
    const byte = bytes[i]!;
    if (byte === QUOTE) {
      i = endOfString(bytes, i + 1);
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      depth++;
      i++;
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
      i++;
    } else if (byte === COMMA || byte === COLON) {
      i++;
    } else {
      // A number or literal runs to the next delimiter.
      while (i < bytes.length && (CLASS[bytes[i]!]! & IS_DELIMITER) === 0) i++;
    }
    check(depth >= 0, 'a compact value does not close more than it opens');
  } while (depth > 0);
  return i;
}
