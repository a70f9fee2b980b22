// The index key encoding (src/documents/index-key.ts): byte order is value order, equal values
// and only they encode alike, JSON text and JavaScript values encode the same, and decoding
// gives the value back. Numbers with more digits than a double are compared exactly.

import t from 'tap';
import fc from 'fast-check';
import { decodeEncoded, encodedValue, encodeJsonText, KeyBuilder, skipEncoded, valueAt } from '../../src/documents/index-key.js';
import { compareJson } from '../helpers/json-order.js';

const text = (json: string): Buffer => {
  const out = new KeyBuilder();
  encodeJsonText(out, Buffer.from(json));
  return out.take();
};

const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown); // -0 becomes 0, as JSON has it

t.test('byte order of encodings is the documented order of values (and equality is equality)', async (t) => {
  fc.assert(
    fc.property(json, json, (a, b) => {
      const order = Math.sign(Buffer.compare(encodedValue(a), encodedValue(b)));
      return order === Math.sign(compareJson(a, b));
    }),
    { numRuns: 2000 },
  );
  t.pass('2,000 pairs agree');
});

t.test('JSON text encodes as its parsed value does; decoding gives the value back', async (t) => {
  fc.assert(
    fc.property(json, fc.boolean(), (value, spaced) => {
      const source = JSON.stringify(value, null, spaced ? 1 : undefined);
      const fromText = text(source);
      if (!fromText.equals(encodedValue(value))) return false;
      const decoded = decodeEncoded(fromText, 0, false);
      if (decoded.end !== fromText.length || skipEncoded(fromText, 0, false) !== fromText.length) return false;
      return JSON.stringify(decoded.value) === JSON.stringify(value);
    }),
    { numRuns: 1000 },
  );
  t.pass('1,000 values');
});

t.test('a descending field (bytes inverted) reverses the order and still skips and decodes', async (t) => {
  fc.assert(
    fc.property(json, json, (a, b) => {
      const inv = (x: Buffer): Buffer => Buffer.from(x.map((byte) => 0xff - byte));
      const ea = inv(encodedValue(a));
      if (skipEncoded(ea, 0, true) !== ea.length || JSON.stringify(decodeEncoded(ea, 0, true).value) !== JSON.stringify(a)) return false;
      return Math.sign(Buffer.compare(ea, inv(encodedValue(b)))) === -Math.sign(compareJson(a, b));
    }),
    { numRuns: 500 },
  );
  t.pass('500 pairs');
});

/** A decimal of any length: digits, a point, an exponent. */
const decimal = fc
  .tuple(fc.boolean(), fc.stringMatching(/^[0-9]{1,40}$/), fc.stringMatching(/^[0-9]{0,30}$/), fc.integer({ min: -60, max: 60 }), fc.boolean())
  .map(([negative, int, frac, exp, withExp]) => `${negative ? '-' : ''}${int.replace(/^0+(?=\d)/, '')}${frac ? '.' + frac : ''}${withExp ? 'e' + exp : ''}`);

/** The exact value of a decimal as a fraction n / 10^s, as BigInts. */
function exact(s: string): { n: bigint; scale: number } {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:e(-?\d+))?$/.exec(s)!;
  const digits = BigInt(m[2]! + (m[3] ?? ''));
  const scale = (m[3]?.length ?? 0) - Number(m[4] ?? 0);
  return { n: m[1] ? -digits : digits, scale };
}

function compareExact(a: string, b: string): number {
  const x = exact(a);
  const y = exact(b);
  const s = Math.max(x.scale, y.scale);
  const l = x.n * 10n ** BigInt(s - x.scale);
  const r = y.n * 10n ** BigInt(s - y.scale);
  return l < r ? -1 : l > r ? 1 : 0;
}

t.test('numbers of any precision order by exact decimal value', async (t) => {
  fc.assert(
    fc.property(decimal, decimal, (a, b) => Math.sign(Buffer.compare(text(a), text(b))) === compareExact(a, b)),
    { numRuns: 3000 },
  );
  t.ok(text('1').equals(text('1.0')) && text('1').equals(text('10e-1')) && text('0').equals(text('-0.0e5')), 'equal values, equal keys');
  t.ok(Buffer.compare(text('0.1'), text('0.10000000000000001')) < 0, 'more precision than a double is kept');
  t.ok(Buffer.compare(text('123456789012345678901234567890'), text('123456789012345678901234567891')) < 0);
});

t.test('strings order by code point, lone surrogates and NUL included', async (t) => {
  t.ok(Buffer.compare(encodedValue('\uffff'), encodedValue('\u{10000}')) < 0, 'U+FFFF before U+10000 (UTF-16 order would differ)');
  t.ok(Buffer.compare(encodedValue('a'), encodedValue('a\u0000')) < 0);
  t.ok(Buffer.compare(encodedValue('a\u0000'), encodedValue('a\u0001')) < 0);
  t.not(encodedValue('\ud800').toString('hex'), encodedValue('\ufffd').toString('hex'), 'a lone surrogate stays distinct');
  t.same(text('"\\ud800"'), encodedValue('\ud800'));
  t.same(text('"\\ud83d\\ude00"'), encodedValue('\u{1F600}'));
});

t.test('valueAt finds a member by path in JSON text', async (t) => {
  const doc = Buffer.from('{"a":{"b":[1,{"c":2}],"d.e":"x","c":{"x":null}},"z":"}"}');
  const at = (path: string[]): string | undefined => {
    const range = valueAt(doc, 0, doc.length, path);
    return range && doc.toString('utf8', range[0], range[1]);
  };
  t.equal(at(['a', 'b']), '[1,{"c":2}]');
  t.equal(at(['a', 'c', 'x']), 'null');
  t.equal(at(['a', 'd.e']), '"x"');
  t.equal(at(['z']), '"}"');
  t.equal(at(['a', 'b', 'c']), undefined, 'a path never steps into an array');
  t.equal(at(['q']), undefined);
});
