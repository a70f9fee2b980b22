import t from 'tap';
import { CRC32C_IMPLEMENTATION, crc32c, crc32cSoftware, crc32cUpdate, maskCrc, unmaskCrc } from '../../storage/util/crc32c.js';

t.test('CRC-32C matches the published check value', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.equal(crc32cSoftware(0, Buffer.from('123456789')), 0xe3069283);
});

t.test('the native and software implementations agree on every length and split', async (t) => {
  t.comment(`large inputs use the ${CRC32C_IMPLEMENTATION} implementation`);
  const data = Buffer.alloc(5000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  for (const length of [0, 1, 7, 8, 255, 256, 257, 1000, 4096, 5000]) {
    t.equal(crc32c(data, 0, length), crc32cSoftware(0, data, 0, length), `length ${length}`);
    const split = length >> 1;
    t.equal(crc32cUpdate(crc32cUpdate(0, data, 0, split), data, split, length), crc32cSoftware(0, data, 0, length), `split ${length}`);
    t.equal(crc32c(data, 3, length), crc32cSoftware(0, data, 3, length), `offset 3, ${length}`);
  }
});

t.test('masking round-trips', async (t) => {
  for (const crc of [0, 1, 0xe3069283, 0xffffffff]) t.equal(unmaskCrc(maskCrc(crc)), crc);
});
