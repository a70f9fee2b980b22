// CRC-32C arithmetic (zlib's crc32_combine, for the Castagnoli polynomial): the CRC of a span
// of bytes from the running CRCs at its two ends, without reading the span again. The record
// scan uses it to test many overlapping candidate records in one pass over a damaged tail.

/** The reflected Castagnoli polynomial, as in util/crc32c.ts. */
const POLY = 0x82f63b78;
/** The polynomial 1 (x^0) in reflected bit order. */
const X0 = 0x80000000;

/** a(x)·b(x) mod P(x), both in reflected bit order. */
function multiplyModP(a: number, b: number): number {
  let product = 0;
  let factor = b;
  for (let bit = X0; bit !== 0; bit >>>= 1) {
    if ((a & bit) !== 0) product ^= factor;
    factor = factor & 1 ? (factor >>> 1) ^ POLY : factor >>> 1;
  }
  return product >>> 0;
}

/** X2N[k] = x^(2^k) mod P; the powers repeat with a period that divides 32 steps here. */
const X2N: Uint32Array = buildPowers();

function buildPowers(): Uint32Array {
  const powers = new Uint32Array(32);
  powers[0] = X0 >>> 1; // x^1
  for (let k = 1; k < 32; k++) powers[k] = multiplyModP(powers[k - 1]!, powers[k - 1]!);
  return powers;
}

/** x^(8·bytes) mod P: multiplying a CRC by it moves the CRC past `bytes` bytes. */
function shiftOperator(bytes: number): number {
  let operator = X0;
  let remaining = bytes;
  for (let k = 3; remaining > 0; k++) {
    if (remaining % 2 === 1) operator = multiplyModP(X2N[k % 32]!, operator);
    remaining = Math.floor(remaining / 2);
  }
  return operator;
}

/**
 * crc32cUpdate(seed, data, a, b) computed from crcToA = crc32c(data, s, a) and
 * crcToB = crc32c(data, s, b) for any s <= a, where bytes = b - a.
 */
export function crc32cOfSpan(seed: number, crcToA: number, crcToB: number, bytes: number): number {
  // crc(S‖B) = shift(crc(S), |B|) ^ crc(B), and the shift is linear: so crcUpdate(seed, B) =
  // shift(seed, |B|) ^ crc(B) = shift(seed ^ crcToA, |B|) ^ crcToB.
  return (multiplyModP(shiftOperator(bytes), (seed ^ crcToA) >>> 0) ^ crcToB) >>> 0;
}
