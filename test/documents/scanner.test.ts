// The byte-level JSON scanner against JSON.parse: random objects, spaced and compact, split into
// the fields JSON.parse sees with their values compacted; mutated texts accepted exactly when
// JSON.parse accepts an object within the limits; each check with its code; compaction; and
// JSON Merge Patch on bytes against RFC 7396's examples and the value-level mergePatch.

import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import t from 'tap';
import fc from 'fast-check';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import * as limits from '../../src/limits.js';
import { isPlainObject, mergePatch } from '../../src/documents/merge-patch.js';
import { compactJson, FieldScan, mergePatchBytes, scanDocument } from '../../src/documents/scanner.js';

// ---- generators ----

// String units that stress the scanner: any code point, lone surrogates (which JSON.stringify
// escapes), and the bytes a string scan must get right.
const unit = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\ud800', '\udfff', '"', '\\', '/', '\n', '\t', '\u0000', '\u001f', ' ', ':', ',', '{', ']', 'é', '😀') },
);
const key = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'toString', '', '0', '10', '-1', 'a b') },
).filter((name) => name.isWellFormed() && Buffer.byteLength(name) <= limits.FIELD_NAME_SIZE_BYTES_MAX);
const value = fc.jsonValue({ maxDepth: 4, stringUnit: unit });
const document = fc.dictionary(key, value, { maxKeys: 20 });

/**
 * fast-check's seed: fixed, so CI is repeatable (the coverage checks after each property count
 * what that seed's runs reached); DOCKET_SCANNER_SEED=random hunts afresh, a number replays.
 */
const SEED_ENV = process.env.DOCKET_SCANNER_SEED;
const SEED = SEED_ENV === 'random' ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : SEED_ENV !== undefined ? Number(SEED_ENV) : 20261203;

/** mulberry32: a seeded stream of numbers in [0, 1). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), state | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** `text` with random insignificant whitespace around every structural character and at both ends. */
function respace(text: string, seed: number): string {
  const random = seeded(seed);
  const space = (): string => (random() < 0.5 ? '' : Array.from({ length: 1 + Math.floor(random() * 3) }, () => ' \t\n\r'[Math.floor(random() * 4)]).join(''));
  let out = space();
  let inString = false;
  for (let k = 0; k < text.length; k++) {
    const char = text[k]!;
    if (inString) {
      out += char;
      if (char === '\\') out += text[++k];
      else if (char === '"') inString = false;
    } else if (char === '"') {
      out += char;
      inString = true;
    } else {
      out += '{}[],:'.includes(char) ? space() + char + space() : char;
    }
  }
  return out + space();
}

// ---- an independent reading of valid JSON ----

/** The top-level names of the valid JSON object `text`, repeats included, decoded. */
function topLevelNames(text: string): string[] {
  const names: string[] = [];
  let depth = 0;
  for (let k = 0; k < text.length; k++) {
    const char = text[k]!;
    if (char === '"') {
      let end = k + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const after = text.slice(end + 1).trimStart();
      if (depth === 1 && after.startsWith(':')) names.push(JSON.parse(text.slice(k, end + 1)) as string);
      k = end;
    } else if (char === '{' || char === '[') {
      depth++;
    } else if (char === '}' || char === ']') {
      depth--;
    }
  }
  return names;
}

function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + children.reduce<number>((deepest, child) => Math.max(deepest, depthOf(child)), 0);
}

/** The code scanDocument must refuse `bytes` with, or undefined when it must accept them. */
function expectedCode(bytes: Buffer): DocketErrorCode | undefined {
  if (!isUtf8(bytes)) return DocketErrorCode.BODY_INVALID;
  const text = bytes.toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return DocketErrorCode.BODY_INVALID;
  }
  if (depthOf(parsed) > limits.DOCUMENT_DEPTH_MAX) return DocketErrorCode.LIMIT_EXCEEDED;
  if (!isPlainObject(parsed)) return DocketErrorCode.DOCUMENT_INVALID;
  const names = topLevelNames(text);
  if (names.length > limits.FIELDS_PER_DOCUMENT_MAX) return DocketErrorCode.LIMIT_EXCEEDED;
  if (names.some((name) => !name.isWellFormed() || Buffer.byteLength(name) > limits.FIELD_NAME_SIZE_BYTES_MAX)) return DocketErrorCode.FIELD_NAME_INVALID;
  if (new Set(names).size !== names.length) return DocketErrorCode.DOCUMENT_FIELD_DUPLICATE;
  assert(bytes.length <= limits.DOCUMENT_SIZE_BYTES_MAX, 'generated texts stay far below the size limit');
  return undefined;
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (!(error instanceof DocketError)) throw error;
    return error.code;
  }
}

const scanOf = (text: string | Buffer, what?: string): FieldScan => scanDocument(typeof text === 'string' ? Buffer.from(text) : text, undefined, what);
const refusal = (text: string | Buffer, what?: string): string | undefined => codeOf(() => scanOf(text, what));
const messageOf = (text: string | Buffer): string => {
  try {
    scanOf(text);
  } catch (error) {
    return (error as Error).message;
  }
  return 'accepted';
};

// ---- properties ----

t.test('random objects, compact or spaced, split into the names and compact values JSON.parse sees', async (t) => {
  const scan = new FieldScan(4); // Reused, so it must grow and forget the last scan.
  const details = fc.check(
    fc.property(document, fc.integer(), (object, seed) => {
      const compact = JSON.stringify(object);
      for (const text of [compact, respace(compact, seed)]) {
        const bytes = Buffer.from(text);
        scanDocument(bytes, scan);
        const parsed = JSON.parse(text) as Record<string, unknown>;
        const names = Object.keys(parsed);
        assert.equal(scan.count, names.length);
        assert.equal(scan.compactSizeBytes, Buffer.byteLength(compact));
        for (let i = 0; i < scan.count; i++) {
          assert.equal(scan.name(i), names[i]);
          // Only whitespace was added, so the compacted value is what JSON.stringify wrote.
          assert.equal(scan.value(i).toString(), JSON.stringify(parsed[names[i]!]));
          assert.equal(scan.valueSpaced[i] === 1, bytes.subarray(scan.valueStart[i], scan.valueEnd[i]).length !== scan.value(i).length);
        }
      }
    }),
    { numRuns: 1200, seed: SEED },
  );
  t.same({ failed: details.failed, numRuns: details.numRuns }, { failed: false, numRuns: 1200 }, fc.defaultReportMessage(details) ?? '1200 objects split as JSON.parse sees them');
});

const mutation = fc.record({
  kind: fc.constantFrom('delete', 'insert', 'truncate', 'swap', 'replace'),
  at: fc.nat(),
  other: fc.nat(),
  byte: fc.integer({ min: 0, max: 127 }),
});

function mutate(bytes: Buffer, change: { kind: string; at: number; other: number; byte: number }): Buffer {
  if (bytes.length === 0) return Buffer.from([change.byte]);
  const at = change.at % bytes.length;
  switch (change.kind) {
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([change.byte]), bytes.subarray(at)]);
    case 'truncate':
      return bytes.subarray(0, at);
    case 'replace':
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([change.byte]), bytes.subarray(at + 1)]);
    default: {
      const copy = Buffer.from(bytes);
      const other = change.other % bytes.length;
      [copy[at], copy[other]] = [copy[other]!, copy[at]!];
      return copy;
    }
  }
}

/** The object's text, with the member `repeat` (modulo the count) written a second time at the end when asked. */
function textWithRepeat(object: Record<string, unknown>, repeat: number | undefined, newValue: unknown): string {
  const members = Object.keys(object).map((name) => `${JSON.stringify(name)}:${JSON.stringify(object[name])}`);
  if (repeat !== undefined && members.length > 0) {
    const name = Object.keys(object)[repeat % members.length]!;
    members.push(`${JSON.stringify(name)}:${JSON.stringify(newValue)}`);
  }
  return `{${members.join(',')}}`;
}

t.test('mutated texts are accepted exactly when JSON.parse reads an object within the limits, and refused only with DocketErrors', async (t) => {
  const refused = new Map<string, number>();
  const smallDocument = fc.dictionary(key, fc.jsonValue({ maxDepth: 2, stringUnit: unit }), { maxKeys: 6 });
  fc.assert(
    fc.property(smallDocument, fc.option(fc.nat()), fc.jsonValue({ maxDepth: 1 }), fc.integer(), fc.boolean(), fc.array(mutation, { maxLength: 3 }), (object, repeat, newValue, seed, spaced, changes) => {
      const text = textWithRepeat(object, repeat ?? undefined, newValue);
      let bytes: Buffer<ArrayBufferLike> = Buffer.from(spaced ? respace(text, seed) : text);
      for (const change of changes) bytes = mutate(bytes, change);
      const expected = expectedCode(bytes);
      const actual = refusal(bytes);
      assert.equal(actual, expected, bytes.toString('latin1'));
      if (actual === undefined) assert.equal(scanOf(bytes).count, topLevelNames(bytes.toString()).length);
      refused.set(actual ?? 'accepted', (refused.get(actual ?? 'accepted') ?? 0) + 1);
    }),
    { numRuns: 2000, seed: SEED },
  );
  // The mutations reach every kind of refusal a small text can meet, and acceptance.
  for (const code of [DocketErrorCode.BODY_INVALID, DocketErrorCode.DOCUMENT_INVALID, DocketErrorCode.DOCUMENT_FIELD_DUPLICATE]) t.ok((refused.get(code) ?? 0) > 0, `some texts were refused with ${code}`);
  t.ok((refused.get('accepted') ?? 0) > 0, 'some texts were accepted');
});

// ---- values as sent ----

t.test('values keep their bytes exactly as sent: big integers, 1.0, -0, 1e400 and escapes', async (t) => {
  const text = String.raw`{"a":9007199254740993,"b":12345678901234567890123,"c":-0,"d":1.0,"e":1e400,"f":"\u00e9\ud83d\ude00"}`;
  const scan = scanOf(text);
  t.same(Array.from({ length: scan.count }, (_, i) => scan.name(i)), ['a', 'b', 'c', 'd', 'e', 'f']);
  t.same(
    Array.from({ length: scan.count }, (_, i) => scan.value(i).toString()),
    ['9007199254740993', '12345678901234567890123', '-0', '1.0', '1e400', String.raw`"\u00e9\ud83d\ude00"`],
  );
  t.equal(scan.compactSizeBytes, text.length);
  t.equal(scan.value(0).buffer, scan.bytes.buffer, 'an unspaced value is a view of the scanned bytes, not a copy');
  const spaced = scanOf(' {\n\t"d" : 1.0 ,"g":[ 1.50 , -0E+0 ]\r\n} ');
  t.same([spaced.value(0).toString(), spaced.value(1).toString()], ['1.0', '[1.50,-0E+0]']);
  t.same([spaced.valueSpaced[0], spaced.valueSpaced[1]], [0, 1]);
  t.equal(spaced.compactSizeBytes, '{"d":1.0,"g":[1.50,-0E+0]}'.length);
});

t.test('byte ranges point at the name between its quotes and the value without whitespace', async (t) => {
  const text = '{ "ab" :  "x y" , "c":{ "d" : [ ] } }';
  const scan = scanOf(text);
  t.same([text.slice(scan.nameStart[0], scan.nameEnd[0]), text.slice(scan.valueStart[0], scan.valueEnd[0])], ['ab', '"x y"']);
  t.same([text.slice(scan.nameStart[1], scan.nameEnd[1]), text.slice(scan.valueStart[1], scan.valueEnd[1])], ['c', '{ "d" : [ ] }']);
  t.same([scan.valueSpaced[0], scan.valueSpaced[1]], [0, 1]);
  t.equal(scan.value(1).toString(), '{"d":[]}');
  t.equal(scanOf('{}').count, 0);
  t.equal(scanOf('{}').compactSizeBytes, 2);
  t.equal(scanOf(' \t\r\n{ \n}\n').count, 0);
});

t.test('escaped names are decoded and flagged; plain names are read from the bytes', async (t) => {
  const scan = scanOf(String.raw`{"\u0061\"\\\/\b\f\n\r\t":1,"é😀":2,"plain":3}`);
  t.same([scan.name(0), scan.name(1), scan.name(2)], ['a"\\/\b\f\n\r\t', 'é😀', 'plain']);
  t.same([...scan.nameEscaped.subarray(0, 3)], [1, 0, 0]);
  // Names recur across scans and the scanner keeps a cache of them: the bytes decide, not the cache.
  const reused = new FieldScan();
  for (const names of [['abc', 'abd'], ['abd', 'abc'], ['x'.repeat(64), 'x'.repeat(65)], ['abc', 'ab']]) {
    scanDocument(Buffer.from(JSON.stringify(Object.fromEntries(names.map((name) => [name, 0])))), reused);
    t.same([reused.name(0), reused.name(1)], names);
  }
});

t.test('__proto__ as a name is just a name', async (t) => {
  const scan = scanOf('{"__proto__":{"polluted":true},"constructor":1}');
  t.same([scan.name(0), scan.name(1)], ['__proto__', 'constructor']);
  t.equal(scan.value(0).toString(), '{"polluted":true}');
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});

// ---- refusals, each with its code ----

t.test('invalid UTF-8 is refused with BODY_INVALID, naming the input', async (t) => {
  const quoted = (...bytes: number[]): Buffer => Buffer.concat([Buffer.from('{"a":"'), Buffer.from(bytes), Buffer.from('"}')]);
  t.equal(refusal(quoted(0xc3, 0x28)), DocketErrorCode.BODY_INVALID, 'a bad continuation byte');
  t.equal(refusal(quoted(0xc0, 0xaf)), DocketErrorCode.BODY_INVALID, 'an overlong encoding');
  t.equal(refusal(quoted(0xed, 0xa0, 0x80)), DocketErrorCode.BODY_INVALID, 'an encoded surrogate');
  t.equal(refusal(quoted(0xf0, 0x9f, 0x98)), DocketErrorCode.BODY_INVALID, 'a truncated sequence');
  t.equal(refusal(Buffer.from([0x7b, 0xff, 0x7d])), DocketErrorCode.BODY_INVALID, 'a byte no UTF-8 holds');
  t.equal(refusal(quoted(0xc3, 0xa9)), undefined, 'é is fine');
  t.throws(() => scanOf(quoted(0xc3, 0x28), 'line 7'), { code: DocketErrorCode.BODY_INVALID, message: 'line 7 is not valid UTF-8' });
});

t.test('a JSON grammar error is refused with BODY_INVALID, as JSON.parse refuses it', async (t) => {
  const invalid = [
    '', '   ', '{', '}', '{"a"}', '{"a" 1}', '{"a":}', '{a:1}', "{'a':1}", '{"a":1,}', '{,}', '{"a":1 "b":2}', '{"a":1}}',
    '{"a":01}', '{"a":1.}', '{"a":.5}', '{"a":+1}', '{"a":1e}', '{"a":1e+}', '{"a":-}', '{"a":-a}', '{"a":0x10}', '{"a":NaN}', '{"a":Infinity}',
    '{"a":tru}', '{"a":nul}', '{"a":falsey}', '{"a":True}', '{"a":[1,]}', '{"a":[1 2]}', '{"a":[}', '{"a":]}', '{"a":{"b":1,}}', '{"a":{"b"}}',
    String.raw`{"a":"\x"}`, String.raw`{"a":"\u12"}`, String.raw`{"a":"\u00zz"}`, String.raw`{"a":"\U0041"}`, '{"a":"tab\there"}', '{"a":"line\nbreak"}', '{"a":"\u0000"}',
    '{"a":"open}', '{"a\n":1}', '{"a":1}x', '{} {}', '{}\u000b', '\u000c{}', '{"a":[1]]}', '{"a":"b"]', '{"a":{"b":1]}',
  ];
  for (const text of invalid) {
    t.throws(() => JSON.parse(text), `JSON.parse refuses ${JSON.stringify(text)}`);
    t.equal(refusal(text), DocketErrorCode.BODY_INVALID, JSON.stringify(text));
  }
  const valid = ['{"a":-0.0e+0}', '{"a":0E-1}', '{"a":1E5}', String.raw`{"a":"\/\b\f\n\r\t\"\\\u00AF"}`, '{"a":[[],{},""]}', ' \t\n\r{"a" \n:\r[ true ,false,\tnull ] }\n'];
  for (const text of valid) t.equal(refusal(text), undefined, `${JSON.stringify(text)} is valid`);
});

t.test('a grammar error names what was expected and its byte offset', async (t) => {
  t.equal(messageOf('{"a":01}'), 'the body is not valid JSON: expected "," or "}", found "1" at byte 6');
  t.equal(messageOf('{"a":[1 2]}'), 'the body is not valid JSON: expected "," or "]", found "2" at byte 8');
  t.equal(messageOf('{"a":1}x'), 'the body is not valid JSON: expected nothing more after the document, found "x" at byte 7');
  t.equal(messageOf('{"a":'), 'the body is not valid JSON: expected a value, found the end at byte 5');
  t.equal(messageOf('{"a":"x\ny"}'), 'the body is not valid JSON: control character 0x0a must be escaped in a string at byte 7');
  t.equal(messageOf('{"a":"xy'), 'the body is not valid JSON: a string from byte 5 is still open at byte 8');
  t.equal(messageOf('{"abc'), 'the body is not valid JSON: a string from byte 1 is still open at byte 5');
  t.equal(messageOf(''), 'the body is not valid JSON: expected a value, found the end at byte 0');
  t.throws(() => scanOf('{"a":1,}', 'line 3'), { message: 'line 3 is not valid JSON: expected a field name, found "}" at byte 7' });
});

t.test('a leading byte order mark is refused with BODY_INVALID, as JSON.parse refuses it', async (t) => {
  t.throws(() => JSON.parse('\ufeff{}'));
  t.equal(refusal('\ufeff{}'), DocketErrorCode.BODY_INVALID);
});

t.test('a valid JSON value that is not an object is refused with DOCUMENT_INVALID', async (t) => {
  for (const text of ['[1]', '[]', '3', '-1.5e3', '"a"', 'true', 'null', ' [ {"a":1} ] ']) {
    t.throws(() => scanOf(text), { code: DocketErrorCode.DOCUMENT_INVALID, message: 'a document must be a JSON object' }, text);
  }
  for (const text of ['[1,]', '3 4', '"a', 'nul']) t.equal(refusal(text), DocketErrorCode.BODY_INVALID, `${text} is not JSON at all`);
});

t.test('a lone surrogate escaped in a top-level name is refused with FIELD_NAME_INVALID, in a value it is kept', async (t) => {
  t.throws(() => scanOf(String.raw`{"a\ud800":1}`), { code: DocketErrorCode.FIELD_NAME_INVALID, message: /not well-formed Unicode/ });
  t.equal(refusal(String.raw`{"\udc00\ud800":1}`), DocketErrorCode.FIELD_NAME_INVALID, 'a reversed pair');
  t.equal(refusal(String.raw`{"\ud83d\ude00":1}`), undefined, 'a pair is a character');
  t.equal(scanOf(String.raw`{"a":"\ud800"}`).value(0).toString(), String.raw`"\ud800"`);
  t.equal(refusal(String.raw`{"a":{"\ud800":1}}`), undefined, 'nested names are values');
});

t.test('a top-level name longer than FIELD_NAME_SIZE_BYTES_MAX bytes of UTF-8 is refused with FIELD_NAME_INVALID', async (t) => {
  const max = limits.FIELD_NAME_SIZE_BYTES_MAX;
  t.equal(refusal(`{"${'a'.repeat(max)}":1}`), undefined, 'at the limit');
  t.throws(() => scanOf(`{"${'a'.repeat(max + 1)}":1}`), { code: DocketErrorCode.FIELD_NAME_INVALID, message: new RegExp(`longer than ${max} bytes`) });
  t.equal(refusal(`{"${'é'.repeat(max / 2 + 1)}":1}`), DocketErrorCode.FIELD_NAME_INVALID, 'counted in bytes, not characters');
  t.equal(refusal(`{"${String.raw`\u00e9`.repeat(max / 2)}":1}`), undefined, 'escapes count as the bytes they decode to');
  t.equal(refusal(`{"${String.raw`\u00e9`.repeat(max / 2 + 1)}":1}`), DocketErrorCode.FIELD_NAME_INVALID);
  t.equal(refusal(`{"a":{"${'a'.repeat(max + 1)}":1}}`), undefined, 'nested names are values');
});

t.test('nesting deeper than DOCUMENT_DEPTH_MAX is refused with LIMIT_EXCEEDED; the document is depth 1', async (t) => {
  const max = limits.DOCUMENT_DEPTH_MAX;
  const arrays = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);
  t.equal(refusal(`{"a":${arrays(max - 1)}}`), undefined, `${max} levels`);
  t.throws(() => scanOf(`{"a":${arrays(max)}}`), { code: DocketErrorCode.LIMIT_EXCEEDED, message: `the body nests deeper than ${max} levels` });
  t.equal(refusal(arrays(max + 1)), DocketErrorCode.LIMIT_EXCEEDED, `${max + 1} levels of arrays`);
  const objects = (levels: number): string => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);
  t.equal(refusal(objects(max)), undefined, `${max} levels of objects`);
  t.equal(refusal(objects(max + 1)), DocketErrorCode.LIMIT_EXCEEDED, `${max + 1} levels of objects`);
  t.equal(refusal(`{"a":${'['.repeat(10_000)}`), DocketErrorCode.LIMIT_EXCEEDED, 'deep and unclosed: no recursion to overflow');
});

t.test('more than FIELDS_PER_DOCUMENT_MAX top-level fields is refused with LIMIT_EXCEEDED', async (t) => {
  const max = limits.FIELDS_PER_DOCUMENT_MAX;
  const fields = (count: number): string => JSON.stringify(Object.fromEntries(Array.from({ length: count }, (_, i) => [`field${i}`, i])));
  const scan = scanOf(fields(max));
  t.equal(scan.count, max);
  t.equal(scan.name(max - 1), `field${max - 1}`);
  t.throws(() => scanOf(fields(max + 1)), { code: DocketErrorCode.LIMIT_EXCEEDED, message: new RegExp(`at most ${max} top-level fields`) });
  t.equal(refusal(`${fields(max + 1).slice(0, -1)},}`), DocketErrorCode.BODY_INVALID, 'bad JSON is BODY_INVALID whatever its size');
});

t.test('a document over DOCUMENT_SIZE_BYTES_MAX once compacted is refused with LIMIT_EXCEEDED', async (t) => {
  const max = limits.DOCUMENT_SIZE_BYTES_MAX;
  // {"a":"…"} is 8 bytes around the string's text.
  t.equal(scanOf(`{"a":"${'x'.repeat(max - 8)}"}`).compactSizeBytes, max);
  t.throws(() => scanOf(`{"a":"${'x'.repeat(max - 7)}"}`), { code: DocketErrorCode.LIMIT_EXCEEDED, message: `a document is at most ${max} bytes of JSON` });
  const spaced = `{"a":[${'1,'.repeat(max / 4)}1]}`.replace(/,/g, ' , ');
  t.ok(spaced.length > max, 'the text is over the limit');
  t.equal(refusal(spaced), undefined, 'but its compact form is not');
});

t.test('a duplicate top-level name is refused with DOCUMENT_FIELD_DUPLICATE; nested duplicates are accepted', async (t) => {
  t.throws(() => scanOf('{"a":1,"b":2,"a":3}'), { code: DocketErrorCode.DOCUMENT_FIELD_DUPLICATE, message: 'the body names field "a" twice' });
  t.throws(() => scanOf(String.raw`{"a":1,"\u0061":2}`, 'line 2'), { code: DocketErrorCode.DOCUMENT_FIELD_DUPLICATE, message: 'line 2 names field "a" twice' });
  t.equal(refusal(String.raw`{"\u00e9":1,"é":2}`), DocketErrorCode.DOCUMENT_FIELD_DUPLICATE, 'an escape and UTF-8 bytes of the same name');
  t.equal(refusal('{"":1,"":2}'), DocketErrorCode.DOCUMENT_FIELD_DUPLICATE, 'the empty name');
  t.equal(refusal('{"a":{"x":1,"x":2},"b":[{"y":1,"y":2}]}'), undefined, 'nested duplicates');
  t.equal(refusal('{"ab":1,"ba":2,"a":3,"b":4,"aa":5}'), undefined, 'similar names differ');
  // The table must cope with many names: all distinct, then the last repeating the first.
  const names = Array.from({ length: limits.FIELDS_PER_DOCUMENT_MAX - 1 }, (_, i) => `"n${i}":0`);
  t.equal(refusal(`{${names.join(',')}}`), undefined);
  t.equal(refusal(`{${names.join(',')},"n0":1}`), DocketErrorCode.DOCUMENT_FIELD_DUPLICATE);
});

t.test('a FieldScan grows for more fields and is reused across scans', async (t) => {
  const scan = new FieldScan(2);
  scanDocument(Buffer.from(JSON.stringify(Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`f${i}`, [i]])))), scan);
  t.equal(scan.count, 300);
  t.equal(scan.value(299).toString(), '[299]');
  scanDocument(Buffer.from('{"z":true}'), scan);
  t.same([scan.count, scan.name(0), scan.value(0).toString()], [1, 'z', 'true']);
  t.throws(() => scan.value(1), 'an index past the count is a bug');
  t.throws(() => scanDocument(Buffer.from('{"a":1,"a":2}'), scan), { code: DocketErrorCode.DOCUMENT_FIELD_DUPLICATE });
  t.equal(scan.count, 0, 'a refused document leaves no fields');
});

// ---- compaction ----

t.test('compactJson removes whitespace between tokens and keeps it inside strings', async (t) => {
  const text = Buffer.from(String.raw` [ 1 , { "a b" : " x \" y\\ " , "c" : [ ] } ,	"\t " ]`);
  t.equal(compactJson(text, 0, text.length).toString(), String.raw`[1,{"a b":" x \" y\\ ","c":[]},"\t "]`);
  t.equal(compactJson(text, 3, 4).toString(), '1', 'a range of the text');
  const compact = Buffer.from('{"a":[1,2],"b":"c d"}');
  t.same(compactJson(compact, 0, compact.length), compact, 'compact text is unchanged');
});

// ---- JSON Merge Patch on bytes ----

const merged = (target: string | undefined, patch: string): string | undefined => mergePatchBytes(target === undefined ? undefined : Buffer.from(target), Buffer.from(patch))?.toString();

t.test("RFC 7396's examples (appendix A) hold, and a null patch means remove", async (t) => {
  const examples: [string, string, string][] = [
    ['{"a":"b"}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'],
    ['{"a":"b"}', '{"a":null}', '{}'],
    ['{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'],
    ['{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'],
    ['{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'],
    ['{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'],
    ['["a","b"]', '["c","d"]', '["c","d"]'],
    ['{"a":"b"}', '["c"]', '["c"]'],
    ['{"a":"foo"}', 'null', 'null'],
    ['{"a":"foo"}', '"bar"', '"bar"'],
    ['{"e":null}', '{"a":1}', '{"e":null,"a":1}'],
    ['[1,2]', '{"a":"b","c":null}', '{"a":"b"}'],
    ['{}', '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'],
  ];
  for (const [target, patch, result] of examples) {
    const actual = merged(target, patch);
    if (result === 'null') t.equal(actual, undefined, `${patch} on ${target} removes`);
    else t.same(JSON.parse(actual!), JSON.parse(result), `${patch} on ${target}`);
  }
  t.equal(merged(undefined, 'null'), undefined);
  t.equal(merged(undefined, '{"a":null,"b":{"c":null}}'), '{"b":{}}', 'nulls in a patch on nothing are dropped');
});

t.test('members a patch leaves alone keep their bytes; members keep target order and new ones follow in patch order', async (t) => {
  const target = '{"a":{"x":1.0,"y":12345678901234567890123,"z":"\\u00e9"},"b":1e400,"c":-0,"d":[1.0]}';
  t.equal(merged(target, '{"a":{"w":true},"c":null}'), '{"a":{"x":1.0,"y":12345678901234567890123,"z":"\\u00e9","w":true},"b":1e400,"d":[1.0]}');
  t.equal(merged(target, '{"a":{"y":null}}'), '{"a":{"x":1.0,"z":"\\u00e9"},"b":1e400,"c":-0,"d":[1.0]}', 'null removes a nested member');
  t.equal(merged('{"b":1,"a":2}', '{"z":1,"a":3,"y":2}'), '{"b":1,"a":3,"z":1,"y":2}');
  t.equal(merged('{"a":1}', '[1.0,2E5]'), '[1.0,2E5]', 'a non-object patch replaces, byte for byte');
  t.equal(merged('{"a":1}', '1.0'), '1.0');
  t.equal(merged('{"a":{"b":1}}', '{"a":"x"}'), '{"a":"x"}');
  t.equal(merged('{"a\\u0062":1}', '{"ab":2}'), '{"a\\u0062":2}', 'names compare decoded; the target keeps its spelling');
  t.equal(merged('{"a":1,"a":2}', '{}'), '{"a":2}', 'a repeated name counts once with its last value, as JSON.parse reads it');
  t.equal(merged('{"__proto__":{"x":1}}', '{"__proto__":{"y":2}}'), '{"__proto__":{"x":1,"y":2}}');
});

t.test('mergePatchBytes agrees with mergePatch on random values', async (t) => {
  const json = fc.jsonValue({ maxDepth: 3, stringUnit: unit });
  const object = fc.dictionary(fc.constantFrom('a', 'b', 'c', '__proto__', 'é'), json, { maxKeys: 4 });
  const side = fc.oneof({ weight: 3, arbitrary: object }, { weight: 1, arbitrary: json });
  const details = fc.check(
    fc.property(side, side, (target, patch) => {
      const result = merged(JSON.stringify(target), JSON.stringify(patch));
      const expected = mergePatch(target, patch);
      if (expected === null) assert.equal(result, undefined);
      else assert.deepEqual(JSON.parse(result!), JSON.parse(JSON.stringify(expected)));
    }),
    { numRuns: 800, seed: SEED },
  );
  t.same({ failed: details.failed, numRuns: details.numRuns }, { failed: false, numRuns: 800 }, fc.defaultReportMessage(details) ?? '800 pairs agree');
});
