// fieldKey writes its bytes in place: they must equal the key format of keys.ts (id, a NUL,
// the field number as a storage varint), which is on disk and must not move.

import t from 'tap';
import { ByteWriter } from '../../storage/index.js';
import { fieldKey } from '../../src/documents/keys.js';

function reference(id: string, fieldNumber: number): Buffer {
  return Buffer.concat([Buffer.from(id, 'utf8'), new ByteWriter(10).byte(0).varint(fieldNumber).view()]);
}

t.test('fieldKey is the id, a NUL and the varint of the field number', async (t) => {
  const ids = ['a', 'fs00abc', 'x'.repeat(200), 'é', '日本語', '\u{1F600}id', 'a b/c'];
  const numbers = [0, 1, 2, 127, 128, 255, 300, 16_383, 16_384, 2_097_151, 2 ** 31, Number.MAX_SAFE_INTEGER];
  for (const id of ids) for (const n of numbers) t.same(fieldKey(id, n), reference(id, n), `${id} ${n}`);
  t.throws(() => fieldKey('a', -1), RangeError);
  t.throws(() => fieldKey('a', 1.5), RangeError);
});
