// Ids for documents created by POST: 26 characters of Crockford base32, a 48-bit millisecond
// timestamp then 80 random bits (the ULID layout), so generated ids sort by creation time and
// listing by id pages through them in that order. Within one millisecond the random part is
// incremented, so ids from one server are strictly increasing.

import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const RANDOM_BYTES = 10;

let lastMs = -1;
let lastRandom = Buffer.alloc(RANDOM_BYTES);

export function generateId(nowMs = Date.now()): string {
  if (nowMs <= lastMs) {
    increment(lastRandom);
  } else {
    lastMs = nowMs;
    lastRandom = randomBytes(RANDOM_BYTES);
  }
  let time = '';
  for (let ms = lastMs, i = 0; i < 10; i++, ms = Math.floor(ms / 32)) time = ALPHABET[ms % 32]! + time;
  return time + base32(lastRandom);
}

function increment(bytes: Buffer): void {
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = (bytes[i]! + 1) & 0xff;
    if (bytes[i] !== 0) return;
  }
}

/** 80 bits as 16 characters, most significant first. */
function base32(bytes: Buffer): string {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  let text = '';
  for (let i = 0; i < 16; i++, value >>= 5n) text = ALPHABET[Number(value & 31n)]! + text;
  return text;
}
