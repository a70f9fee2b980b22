// Comparing and copying short byte ranges. Keys are mostly under 64 bytes, and for those a JS
// loop beats a native Buffer.compare or Buffer.copy, whose call cost outweighs the bytes
// (measured: in a GET profile the native calls on ~20-byte keys were the top two costs).

/** Ranges up to this long are compared and copied in a loop; longer ones natively. */
const LOOP_BYTES_MAX = 64;

/**
 * Bytewise order of a[aStart, +aLength) against b[bStart, +bLength) (negative: a sorts first),
 * from byte `from` on: callers that know the first bytes equal may skip them.
 */
export function compareRanges(a: Buffer, aStart: number, aLength: number, b: Buffer, bStart: number, bLength: number, from = 0): number {
  const shorter = aLength < bLength ? aLength : bLength;
  if (shorter > LOOP_BYTES_MAX) return a.compare(b, bStart, bStart + bLength, aStart, aStart + aLength);
  for (let i = from; i < shorter; i++) {
    const difference = a[aStart + i]! - b[bStart + i]!;
    if (difference !== 0) return difference;
  }
  return aLength - bLength;
}

/** Copies source[start, +length) to target[at]. */
export function copyRange(source: Uint8Array, start: number, length: number, target: Uint8Array, at: number): void {
  if (length <= LOOP_BYTES_MAX) for (let i = 0; i < length; i++) target[at + i] = source[start + i]!;
  else target.set(source.subarray(start, start + length), at);
}
