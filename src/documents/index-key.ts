// The order-preserving encoding of JSON values in index keys: byte order of two encodings is
// the order of the values, and equal values (and only they) encode the same. An index key is
// its fields' encodings (each inverted, byte by byte, for a descending field) then the
// document id's UTF-8, which holds no NUL (keys.ts); every encoding is prefix-free, so the id
// is what follows the last one.
//
// The total order (docs/DESIGN.md, "Indexes"):
//   missing < null < false < true < numbers < strings < arrays < objects
//   missing   an index field the document lacks (only in index keys: every document has a key)
//   numbers   by exact decimal value, at every precision the text has: 1, 1.0 and 10e-1 are
//             equal; 0.1 < 0.10000000000000001 (a double would make them equal). The decimal
//             exponent is held in 32 bits: numbers beyond 10^±2147483646 order as that bound.
//   strings   by Unicode code point (UTF-8 byte order), not JavaScript's UTF-16 order.
//   arrays    element by element, a prefix first.
//   objects   member by member in their stored order (name, then value), a prefix first.
//
//   missing 01 | null 02 | false 03 | true 04 | zero 06
//   positive  07 exponent:u32be(E + 2^31) digit{n}:(1 + d) 00      value = 0.d1..dn × 10^E, d1, dn ≠ 0
//   negative  05 the same exponent and digits, each byte inverted, then FF
//   string    08 code points as WTF-8 (00 → 00 FF) 00 01
//   array     09 element* 00
//   object    0A (01 name:string-without-tag value)* 00

export const TAG_MISSING = 0x01;
const TAG_NULL = 0x02;
const TAG_FALSE = 0x03;
const TAG_TRUE = 0x04;
const TAG_NEGATIVE = 0x05;
const TAG_ZERO = 0x06;
const TAG_POSITIVE = 0x07;
const TAG_STRING = 0x08;
const TAG_ARRAY = 0x09;
const TAG_OBJECT = 0x0a;
const EXPONENT_BIAS = 0x80000000;
const EXPONENT_MAX = 0x7ffffffe;

/** A growable byte buffer the encoders append to; reused, so an index key costs one copy. */
export class KeyBuilder {
  bytes = Buffer.allocUnsafe(256);
  length = 0;

  reset(): this {
    this.length = 0;
    return this;
  }

  byte(value: number): void {
    if (this.length === this.bytes.length) this.grow(1);
    this.bytes[this.length++] = value;
  }

  append(source: Buffer, start = 0, end = source.length): void {
    if (this.length + end - start > this.bytes.length) this.grow(end - start);
    source.copy(this.bytes, this.length, start, end);
    this.length += end - start;
  }

  /** Inverts every byte from `start` to the end (a descending field). */
  invertFrom(start: number): void {
    for (let i = start; i < this.length; i++) this.bytes[i] = 0xff - this.bytes[i]!;
  }

  /** A copy of what was built. */
  take(): Buffer {
    return Buffer.from(this.bytes.subarray(0, this.length));
  }

  private grow(more: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + more));
    this.bytes.copy(next, 0, 0, this.length);
    this.bytes = next;
  }
}

// ---- from JSON text ----

/** Encodes the JSON value whose text is bytes[start, end) (valid JSON, as the scanner checked it). */
export function encodeJsonText(out: KeyBuilder, bytes: Buffer, start = 0, end = bytes.length): void {
  const at = encodeAt(out, bytes, skipSpace(bytes, start, end), end);
  if (skipSpace(bytes, at, end) !== end) throw new Error('index-key: text after a JSON value');
}

function skipSpace(bytes: Buffer, at: number, end: number): number {
  while (at < end) {
    const c = bytes[at]!;
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    at++;
  }
  return at;
}

function encodeAt(out: KeyBuilder, bytes: Buffer, at: number, end: number): number {
  const c = bytes[at];
  if (c === 0x6e) return out.byte(TAG_NULL), at + 4; // null
  if (c === 0x66) return out.byte(TAG_FALSE), at + 5; // false
  if (c === 0x74) return out.byte(TAG_TRUE), at + 4; // true
  if (c === 0x22) {
    out.byte(TAG_STRING);
    return encodeStringText(out, bytes, at);
  }
  if (c === 0x5b) {
    out.byte(TAG_ARRAY);
    at = skipSpace(bytes, at + 1, end);
    if (bytes[at] === 0x5d) return out.byte(0), at + 1;
    for (;;) {
      at = skipSpace(bytes, encodeAt(out, bytes, at, end), end);
      if (bytes[at] === 0x5d) return out.byte(0), at + 1;
      at = skipSpace(bytes, at + 1, end); // the comma
    }
  }
  if (c === 0x7b) {
    out.byte(TAG_OBJECT);
    at = skipSpace(bytes, at + 1, end);
    if (bytes[at] === 0x7d) return out.byte(0), at + 1;
    for (;;) {
      out.byte(1);
      at = skipSpace(bytes, encodeStringText(out, bytes, at), end); // the name; then the colon
      at = skipSpace(bytes, encodeAt(out, bytes, skipSpace(bytes, at + 1, end), end), end);
      if (bytes[at] === 0x7d) return out.byte(0), at + 1;
      at = skipSpace(bytes, at + 1, end);
    }
  }
  if (c === 0x2d || (c !== undefined && c >= 0x30 && c <= 0x39)) {
    let stop = at;
    while (stop < end && isNumberByte(bytes[stop]!)) stop++;
    encodeNumberText(out, bytes.toString('latin1', at, stop));
    return stop;
  }
  throw new Error(`index-key: not JSON at byte ${at}`);
}

function isNumberByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
}

/** Encodes the string whose opening quote is at `at`, without its tag; returns the offset after its closing quote. */
function encodeStringText(out: KeyBuilder, bytes: Buffer, at: number): number {
  at++;
  for (;;) {
    const c = bytes[at]!;
    if (c === 0x22) break;
    if (c !== 0x5c) {
      if (c === 0) out.byte(0), out.byte(0xff);
      else out.byte(c); // UTF-8 as it is: its byte order is code point order.
      at++;
      continue;
    }
    const e = bytes[at + 1]!;
    at += 2;
    if (e === 0x75) {
      let unit = parseInt(bytes.toString('latin1', at, at + 4), 16);
      at += 4;
      if (unit >= 0xd800 && unit <= 0xdbff && bytes[at] === 0x5c && bytes[at + 1] === 0x75) {
        const low = parseInt(bytes.toString('latin1', at + 2, at + 6), 16);
        if (low >= 0xdc00 && low <= 0xdfff) {
          unit = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
          at += 6;
        }
      }
      codePoint(out, unit);
    } else {
      codePoint(out, ESCAPES[e] ?? e);
    }
  }
  out.byte(0);
  out.byte(1);
  return at + 1;
}

const ESCAPES: Record<number, number> = { 0x62: 0x08, 0x66: 0x0c, 0x6e: 0x0a, 0x72: 0x0d, 0x74: 0x09, 0x22: 0x22, 0x5c: 0x5c, 0x2f: 0x2f };

/** One code point as WTF-8 (a lone surrogate too, so distinct strings stay distinct), NUL escaped. */
function codePoint(out: KeyBuilder, cp: number): void {
  if (cp === 0) {
    out.byte(0);
    out.byte(0xff);
  } else if (cp < 0x80) out.byte(cp);
  else if (cp < 0x800) {
    out.byte(0xc0 | (cp >> 6));
    out.byte(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out.byte(0xe0 | (cp >> 12));
    out.byte(0x80 | ((cp >> 6) & 0x3f));
    out.byte(0x80 | (cp & 0x3f));
  } else {
    out.byte(0xf0 | (cp >> 18));
    out.byte(0x80 | ((cp >> 12) & 0x3f));
    out.byte(0x80 | ((cp >> 6) & 0x3f));
    out.byte(0x80 | (cp & 0x3f));
  }
}

/** Encodes a JSON number's text exactly (its decimal value, every digit kept). */
export function encodeNumberText(out: KeyBuilder, text: string): void {
  let i = 0;
  const negative = text.charCodeAt(0) === 0x2d;
  if (negative) i++;
  let digits = '';
  let pointAt = -1;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) pointAt = digits.length;
    else if (c >= 0x30 && c <= 0x39) digits += text[i];
    else break;
  }
  let exponent = 0;
  if (i < text.length) {
    const e = text.slice(i + 1);
    exponent = Number(e);
    if (!Number.isFinite(exponent) || Math.abs(exponent) > 1e15) exponent = e.startsWith('-') ? -1e15 : 1e15;
  }
  if (pointAt < 0) pointAt = digits.length;
  let first = 0;
  while (first < digits.length && digits.charCodeAt(first) === 0x30) first++;
  if (first === digits.length) {
    out.byte(TAG_ZERO);
    return;
  }
  let last = digits.length;
  while (digits.charCodeAt(last - 1) === 0x30) last--;
  let e = pointAt - first + exponent; // value = 0.digits[first..last) × 10^e
  if (e > EXPONENT_MAX) e = EXPONENT_MAX;
  if (e < -EXPONENT_MAX) e = -EXPONENT_MAX;
  const start = out.length;
  out.byte(TAG_POSITIVE);
  const biased = e + EXPONENT_BIAS;
  out.byte((biased >>> 24) & 0xff);
  out.byte((biased >>> 16) & 0xff);
  out.byte((biased >>> 8) & 0xff);
  out.byte(biased & 0xff);
  for (let d = first; d < last; d++) out.byte(digits.charCodeAt(d) - 0x30 + 1);
  out.byte(0);
  if (negative) {
    out.invertFrom(start + 1);
    out.bytes[start] = TAG_NEGATIVE;
  }
}

// ---- from JavaScript values (query literals, parsed by JSON.parse) ----

/** Encodes a JSON value held as JavaScript (numbers are doubles: their shortest round-trip text). */
export function encodeJsValue(out: KeyBuilder, value: unknown): void {
  if (value === null) out.byte(TAG_NULL);
  else if (value === false) out.byte(TAG_FALSE);
  else if (value === true) out.byte(TAG_TRUE);
  else if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('index-key: a number must be finite');
    encodeNumberText(out, String(value));
  } else if (typeof value === 'string') {
    out.byte(TAG_STRING);
    encodeJsString(out, value);
  } else if (Array.isArray(value)) {
    out.byte(TAG_ARRAY);
    for (const element of value) encodeJsValue(out, element);
    out.byte(0);
  } else if (typeof value === 'object') {
    out.byte(TAG_OBJECT);
    for (const [name, member] of Object.entries(value as Record<string, unknown>)) {
      out.byte(1);
      encodeJsString(out, name);
      encodeJsValue(out, member);
    }
    out.byte(0);
  } else throw new TypeError(`index-key: ${typeof value} is not JSON`);
}

function encodeJsString(out: KeyBuilder, value: string): void {
  for (const ch of value) codePoint(out, ch.codePointAt(0)!);
  out.byte(0);
  out.byte(1);
}

/** The encoding of one value, as a new buffer. */
export function encodedValue(value: unknown): Buffer {
  const out = new KeyBuilder();
  encodeJsValue(out, value);
  return out.take();
}

// ---- reading encodings back ----

/** The offset just past the encoded value starting at `at` (inverted: a descending field's). */
export function skipEncoded(bytes: Buffer, at: number, inverted: boolean): number {
  const x = inverted ? 0xff : 0;
  const tag = bytes[at]! ^ x;
  at++;
  if (tag === TAG_MISSING || tag === TAG_NULL || tag === TAG_FALSE || tag === TAG_TRUE || tag === TAG_ZERO) return at;
  if (tag === TAG_POSITIVE || tag === TAG_NEGATIVE) {
    at += 4;
    const end = (tag === TAG_POSITIVE ? 0 : 0xff) ^ x;
    while (bytes[at] !== end) at++;
    return at + 1;
  }
  if (tag === TAG_STRING) return skipString(bytes, at, x);
  if (tag === TAG_ARRAY) {
    while ((bytes[at]! ^ x) !== 0) at = skipEncoded(bytes, at, inverted);
    return at + 1;
  }
  if (tag === TAG_OBJECT) {
    while ((bytes[at]! ^ x) !== 0) at = skipEncoded(bytes, skipString(bytes, at + 1, x), inverted);
    return at + 1;
  }
  throw new Error(`index-key: unknown tag ${tag}`);
}

function skipString(bytes: Buffer, at: number, x: number): number {
  for (;;) {
    if ((bytes[at]! ^ x) === 0) {
      if ((bytes[at + 1]! ^ x) === 1) return at + 2;
      at += 2;
    } else at++;
  }
}

/** What decodeEncoded gives for a field the document lacks. */
export const MISSING = Symbol('missing');

/** The JavaScript value (JSON.parse-like: numbers as doubles) of the encoding at `at`; returns it with the offset past it. */
export function decodeEncoded(bytes: Buffer, at: number, inverted: boolean): { value: unknown; end: number } {
  const x = inverted ? 0xff : 0;
  const tag = bytes[at]! ^ x;
  at++;
  if (tag === TAG_MISSING) return { value: MISSING, end: at };
  if (tag === TAG_NULL) return { value: null, end: at };
  if (tag === TAG_FALSE) return { value: false, end: at };
  if (tag === TAG_TRUE) return { value: true, end: at };
  if (tag === TAG_ZERO) return { value: 0, end: at };
  if (tag === TAG_POSITIVE || tag === TAG_NEGATIVE) {
    const y = x ^ (tag === TAG_NEGATIVE ? 0xff : 0);
    const e = (((bytes[at]! ^ y) << 24) | ((bytes[at + 1]! ^ y) << 16) | ((bytes[at + 2]! ^ y) << 8) | (bytes[at + 3]! ^ y)) >>> 0;
    at += 4;
    let digits = '';
    while ((bytes[at]! ^ y) !== 0) digits += String((bytes[at++]! ^ y) - 1);
    const value = Number(`${tag === TAG_NEGATIVE ? '-' : ''}0.${digits}e${e - EXPONENT_BIAS}`);
    return { value, end: at + 1 };
  }
  if (tag === TAG_STRING) {
    const { text, end } = decodeString(bytes, at, x);
    return { value: text, end };
  }
  if (tag === TAG_ARRAY) {
    const value: unknown[] = [];
    while ((bytes[at]! ^ x) !== 0) {
      const element = decodeEncoded(bytes, at, inverted);
      value.push(element.value);
      at = element.end;
    }
    return { value, end: at + 1 };
  }
  if (tag === TAG_OBJECT) {
    const value: Record<string, unknown> = {};
    while ((bytes[at]! ^ x) !== 0) {
      const name = decodeString(bytes, at + 1, x);
      const member = decodeEncoded(bytes, name.end, inverted);
      Object.defineProperty(value, name.text, { value: member.value, enumerable: true, writable: true, configurable: true });
      at = member.end;
    }
    return { value, end: at + 1 };
  }
  throw new Error(`index-key: unknown tag ${tag}`);
}

function decodeString(bytes: Buffer, at: number, x: number): { text: string; end: number } {
  const parts: number[] = [];
  for (;;) {
    const b = bytes[at]! ^ x;
    if (b === 0) {
      if ((bytes[at + 1]! ^ x) === 1) break;
      parts.push(0);
      at += 2;
      continue;
    }
    parts.push(b);
    at++;
  }
  // WTF-8 back to code points.
  let text = '';
  for (let i = 0; i < parts.length; ) {
    const b = parts[i]!;
    let cp: number;
    if (b < 0x80) (cp = b), (i += 1);
    else if (b < 0xe0) (cp = ((b & 0x1f) << 6) | (parts[i + 1]! & 0x3f)), (i += 2);
    else if (b < 0xf0) (cp = ((b & 0x0f) << 12) | ((parts[i + 1]! & 0x3f) << 6) | (parts[i + 2]! & 0x3f)), (i += 3);
    else (cp = ((b & 0x07) << 18) | ((parts[i + 1]! & 0x3f) << 12) | ((parts[i + 2]! & 0x3f) << 6) | (parts[i + 3]! & 0x3f)), (i += 4);
    text += String.fromCodePoint(cp);
  }
  return { text, end: at + 2 };
}

// ---- paths into JSON text ----

/**
 * The byte range of the value at `path` (member names) inside the JSON value bytes[start, end),
 * or undefined if some member is missing or a step is not an object. A path step never indexes
 * an array.
 */
export function valueAt(bytes: Buffer, start: number, end: number, path: readonly string[], from = 0): [number, number] | undefined {
  let at = skipSpace(bytes, start, end);
  for (let step = from; step < path.length; step++) {
    if (bytes[at] !== 0x7b) return undefined;
    at = skipSpace(bytes, at + 1, end);
    if (bytes[at] === 0x7d) return undefined;
    let found = false;
    for (;;) {
      const nameEnd = skipStringText(bytes, at);
      const name = JSON.parse(bytes.toString('utf8', at, nameEnd)) as string;
      at = skipSpace(bytes, skipSpace(bytes, nameEnd, end) + 1, end);
      if (name === path[step]) {
        found = true;
        break;
      }
      at = skipSpace(bytes, skipValueText(bytes, at, end), end);
      if (bytes[at] === 0x7d) break;
      at = skipSpace(bytes, at + 1, end);
    }
    if (!found) return undefined;
  }
  return [at, skipValueText(bytes, at, end)];
}

function skipStringText(bytes: Buffer, at: number): number {
  at++;
  for (;;) {
    const c = bytes[at]!;
    if (c === 0x22) return at + 1;
    at += c === 0x5c ? 2 : 1;
  }
}

function skipValueText(bytes: Buffer, at: number, end: number): number {
  const c = bytes[at];
  if (c === 0x22) return skipStringText(bytes, at);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (; at < end; at++) {
      const b = bytes[at]!;
      if (b === 0x22) {
        at = skipStringText(bytes, at) - 1;
        continue;
      }
      if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) {
        depth--;
        if (depth === 0) return at + 1;
      }
    }
    throw new Error('index-key: unterminated JSON value');
  }
  while (at < end) {
    const b = bytes[at]!;
    if (b === 0x2c || b === 0x7d || b === 0x5d || b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) break;
    at++;
  }
  return at;
}
