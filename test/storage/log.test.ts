import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import t from 'tap';
import { mulberry32 } from '../../storage/sim-file-system.js';
import { StorageError, StorageErrorCode } from '../../storage/errors.js';
import { RealFileSystem, type File } from '../../storage/file-system.js';
import { LOG_RECORD_SIZE_BYTES_MAX } from '../../storage/limits.js';
import { crc32cOfSpan } from '../../storage/log/crc32c-span.js';
import { encodeRecord, logCrcSeed, RECORD_HEADER_BYTES, recordCrc } from '../../storage/log/format.js';
import { LogReader, readAllRecords, type LogEndStatus } from '../../storage/log/log-reader.js';
import { LogWriter } from '../../storage/log/log-writer.js';
import { findValidRecord } from '../../storage/log/record-scan.js';
import { crc32c, crc32cUpdate, unmaskCrc } from '../../storage/util/crc32c.js';

const fileSystem = new RealFileSystem();

/** A new empty file in the test's own directory, closed when the test ends. */
async function createFile(test: { testdir(): string; teardown(fn: () => unknown): void }): Promise<File> {
  const file = await fileSystem.open(path.join(test.testdir(), 'log'), 'create');
  test.teardown(() => file.close());
  return file;
}

/** Deterministic bytes, different for each (seed, index). */
function payloadOf(sizeBytes: number, seed: number): Buffer {
  const payload = Buffer.allocUnsafe(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) payload[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff;
  return payload;
}

/** Writes one record per payload; returns the offset where each record starts. */
async function writeRecords(file: File, logNumber: number, payloads: Buffer[]): Promise<number[]> {
  const writer = new LogWriter(file, logNumber);
  const offsets: number[] = [];
  for (const payload of payloads) {
    offsets.push(writer.position);
    await writer.add(payload);
  }
  await writer.sync();
  return offsets;
}

async function flipBit(file: File, offset: number, bit: number): Promise<void> {
  const [byte] = await file.read(offset, 1);
  await file.write(offset, Buffer.of(byte! ^ (1 << bit)));
}

/** Reads the whole log; a thrown error comes back as `error` beside what was read before it. */
async function readLog(file: File, logNumber: number, chunkBytes?: number) {
  const reader = new LogReader(file, logNumber, chunkBytes === undefined ? {} : { chunkBytes });
  const records: Buffer[] = [];
  try {
    for (let record = await reader.next(); record !== null; record = await reader.next()) records.push(record.payload);
    return { records, status: reader.status as LogEndStatus, error: null };
  } catch (error) {
    return { records, status: reader.status as LogEndStatus, error: error as StorageError };
  }
}

t.test('records of varied sizes, one larger than the read chunk, read back in order', async (t) => {
  const file = await createFile(t);
  const sizes = [1, 2, 7, 8, 9, 100, 255, 256, 4095, 4096, 4097, 10_000, 3 * 1024 * 1024, 1, 33];
  for (let i = 0; i < 200; i++) sizes.push(1 + ((i * 7919) % 1500));
  const payloads = sizes.map((size, i) => payloadOf(size, i));
  const offsets = await writeRecords(file, 3, payloads);

  for (const chunkBytes of [undefined, 4096, 64 * 1024]) {
    const reader = new LogReader(file, 3, chunkBytes === undefined ? {} : { chunkBytes });
    const read = [];
    for (let record = await reader.next(); record !== null; record = await reader.next()) read.push(record);
    t.equal(read.length, payloads.length, `chunkBytes ${chunkBytes}: every record`);
    t.ok(read.every((record, i) => record.payload.equals(payloads[i]!)), 'every payload intact');
    t.same(read.map((record) => record.offset), offsets, 'offsets are where the writer put them');
    t.ok(read.every((r, i) => r.endOffset === r.offset + RECORD_HEADER_BYTES + sizes[i]!), 'endOffset follows the payload');
    t.same(reader.status, { kind: 'end', offset: file.size() });
  }
});

t.test('payloads stay valid after later reads refill the chunk', async (t) => {
  const file = await createFile(t);
  const payloads = Array.from({ length: 100 }, (_, i) => payloadOf(100 + i, i));
  await writeRecords(file, 1, payloads);
  const reader = new LogReader(file, 1, { chunkBytes: 256 });
  const read: Buffer[] = [];
  for (let record = await reader.next(); record !== null; record = await reader.next()) read.push(record.payload);
  t.ok(read.every((payload, i) => payload.equals(payloads[i]!)));
});

t.test('add and addMany resolve with the end offset, and addMany is one write call', async (t) => {
  const file = await createFile(t);
  let writes = 0;
  const counting: File = Object.create(file, {
    write: { value: (position: number, data: Uint8Array) => (writes++, file.write(position, data)) },
  });
  const writer = new LogWriter(counting, 2);
  t.equal(await writer.add(Buffer.from('a')), RECORD_HEADER_BYTES + 1);
  const end = await writer.addMany([Buffer.from('bb'), Buffer.from('ccc'), Buffer.from('dddd')]);
  t.equal(end, 4 * RECORD_HEADER_BYTES + 10);
  t.equal(writer.position, end);
  t.equal(writes, 2);
  const { records, status } = await readAllRecords(file, 2);
  t.same(records.map(String), ['a', 'bb', 'ccc', 'dddd']);
  t.same(status, { kind: 'end', offset: end });
});

t.test('a reader starting at a record boundary reads from that record on', async (t) => {
  const file = await createFile(t);
  const offsets = await writeRecords(file, 4, ['one', 'two', 'three'].map((text) => Buffer.from(text)));
  const reader = new LogReader(file, 4, { startOffset: offsets[1]! });
  t.equal(String((await reader.next())!.payload), 'two');
  t.equal(String((await reader.next())!.payload), 'three');
  t.equal(await reader.next(), null);
});

t.test('a truncated trailing record reads as end of log, torn at its offset', async (t) => {
  const file = await createFile(t);
  const payloads = [payloadOf(50, 1), payloadOf(60, 2), payloadOf(70, 3)];
  const offsets = await writeRecords(file, 9, payloads);
  const lastOffset = offsets[2]!;
  const fullSize = file.size();
  for (let size = fullSize - 1; size > lastOffset; size--) {
    await file.truncate(size);
    const { records, status, error } = await readLog(file, 9);
    t.equal(error, null, `cut at ${size}: no error`);
    t.equal(records.length, 2, `cut at ${size}: the complete records`);
    t.match(status, { kind: 'torn', offset: lastOffset }, `cut at ${size}: torn at the last record`);
  }
});

t.test('trailing zeros (preallocated space) read as a clean end of log', async (t) => {
  const file = await createFile(t);
  await writeRecords(file, 5, [payloadOf(10, 1), payloadOf(20, 2)]);
  const end = file.size();
  for (const zeros of [1, 7, 8, 4096]) {
    await file.truncate(end + zeros);
    const { records, status, error } = await readLog(file, 5);
    t.equal(error, null);
    t.equal(records.length, 2);
    t.same(status, { kind: 'end', offset: end }, `${zeros} zero bytes`);
  }
});

t.test('a writer positioned in a preallocated file writes over the zeros', async (t) => {
  const file = await createFile(t);
  await file.truncate(64 * 1024);
  const writer = new LogWriter(file, 8, { position: 0 });
  await writer.addMany([Buffer.from('first'), Buffer.from('second')]);
  t.equal(file.size(), 64 * 1024);
  const { records, status } = await readAllRecords(file, 8);
  t.same(records.map(String), ['first', 'second']);
  t.same(status, { kind: 'end', offset: writer.position });
});

t.test('a file shorter than its reported size reads to its real end', async (t) => {
  const file = await createFile(t);
  await writeRecords(file, 1, [Buffer.from('one'), Buffer.from('two')]);
  const end = file.size();
  const lying: File = Object.create(file, { size: { value: () => end + 100 } });
  const { records, status } = await readAllRecords(lying, 1);
  t.same(records.map(String), ['one', 'two']);
  t.same(status, { kind: 'end', offset: end });
});

t.test('a partial trailing header is torn unless it is all zeros', async (t) => {
  const file = await createFile(t);
  await writeRecords(file, 1, [Buffer.from('only')]);
  const end = file.size();
  await file.write(end, Buffer.of(0, 0, 0));
  t.same((await readAllRecords(file, 1)).status, { kind: 'end', offset: end });
  await file.write(end, Buffer.of(0, 9, 0));
  t.match((await readAllRecords(file, 1)).status, { kind: 'torn', offset: end });
});

t.test('a flipped bit anywhere in a middle record is detected as corruption', async (t) => {
  const file = await createFile(t);
  const offsets = await writeRecords(file, 12, [payloadOf(30, 1), payloadOf(16, 2), payloadOf(40, 3)]);
  const [start, end] = [offsets[1]!, offsets[2]!];
  let detected = 0;
  for (let offset = start; offset < end; offset++) {
    for (let bit = 0; bit < 8; bit++) {
      await flipBit(file, offset, bit);
      const { records, status, error } = await readLog(file, 12, 64);
      await flipBit(file, offset, bit);
      const ok =
        records.length === 1 &&
        error?.code === StorageErrorCode.CORRUPTION &&
        status.kind === 'corrupt' &&
        status.offset === start;
      if (ok) detected++;
      else t.fail(`bit ${bit} of byte ${offset}: ${JSON.stringify(status)} ${error?.message}`);
    }
  }
  t.equal(detected, (end - start) * 8, 'every flip detected');
  t.same((await readAllRecords(file, 12)).records.length, 3, 'the restored file reads whole');
});

t.test('a corruption error names the log number, the offset and the problem, and sticks', async (t) => {
  const file = await createFile(t);
  const offsets = await writeRecords(file, 77, [payloadOf(30, 1), payloadOf(30, 2), payloadOf(30, 3)]);
  await flipBit(file, offsets[1]! + RECORD_HEADER_BYTES + 3, 0);
  const reader = new LogReader(file, 77);
  await reader.next();
  const error = await reader.next().then(
    () => null,
    (caught: unknown) => caught,
  );
  t.ok(error instanceof StorageError);
  t.equal((error as StorageError).code, StorageErrorCode.CORRUPTION);
  t.match((error as StorageError).message, /log 77\b.*checksum mismatch.*offset 38\b.*offset 76\b/);
  t.rejects(reader.next(), { code: StorageErrorCode.CORRUPTION }, 'later calls throw too');
  t.match(reader.status, { kind: 'corrupt', offset: offsets[1] });
  await t.rejects(readAllRecords(file, 77), { code: StorageErrorCode.CORRUPTION });
});

t.test('corruption is found when the valid record after it is larger than the read chunk', async (t) => {
  const file = await createFile(t);
  const offsets = await writeRecords(file, 6, [payloadOf(100, 1), payloadOf(20_000, 2)]);
  await flipBit(file, offsets[0]! + 20, 5);
  const { records, status, error } = await readLog(file, 6, 1024);
  t.equal(records.length, 0);
  t.equal(error?.code, StorageErrorCode.CORRUPTION);
  t.match(status, { kind: 'corrupt', offset: 0 });
});

t.test('a flipped bit in the last record reads as a torn tail', async (t) => {
  const file = await createFile(t);
  const offsets = await writeRecords(file, 13, [payloadOf(30, 1), payloadOf(12, 2)]);
  const start = offsets[1]!;
  const mismatches: string[] = [];
  let flips = 0;
  for (let offset = start; offset < file.size(); offset++) {
    for (let bit = 0; bit < 8; bit++) {
      await flipBit(file, offset, bit);
      const { records, status, error } = await readLog(file, 13);
      await flipBit(file, offset, bit);
      flips++;
      if (error !== null || records.length !== 1 || status.kind !== 'torn' || status.offset !== start) {
        mismatches.push(`bit ${bit} of byte ${offset}: ${records.length} records, ${JSON.stringify(status)} ${error?.message}`);
      }
    }
  }
  t.same(mismatches, [], `every one of ${flips} flips in the last record reads as torn at its offset`);
  const { records, status } = await readAllRecords(file, 13);
  const hex = (payloads: Uint8Array[]): string[] => payloads.map((payload) => Buffer.from(payload).toString('hex'));
  t.same(hex(records), hex([payloadOf(30, 1), payloadOf(12, 2)]), 'with the bits flipped back, both records read back whole');
  t.same(status, { kind: 'end', offset: file.size() });
});

t.test('a record written under log number 5 does not validate as log number 6', async (t) => {
  const file = await createFile(t);
  await writeRecords(file, 5, [payloadOf(40, 1), payloadOf(40, 2)]);
  t.equal((await readAllRecords(file, 5)).records.length, 2);
  const { records, status } = await readAllRecords(file, 6);
  t.equal(records.length, 0);
  t.match(status, { kind: 'torn', offset: 0, detail: 'checksum mismatch' });
});

t.test('the worked example of FORMAT.md is the encoding, and it reads back', async (t) => {
  const example = encodeRecord(7, Buffer.from('hi'));
  t.equal(example.toString('hex'), '9fec846c020000006869');
  const file = await createFile(t);
  await file.write(0, Buffer.from('9fec846c020000006869', 'hex'));
  const { records, status } = await readAllRecords(file, 7);
  t.same(records.map(String), ['hi']);
  t.same(status, { kind: 'end', offset: 10 });
});

t.test('an empty payload is a bug and a too-large one is an invalid argument', async (t) => {
  const file = await createFile(t);
  const writer = new LogWriter(file, 1);
  await t.rejects(writer.add(Buffer.alloc(0)), { name: 'AssertionError' });
  await t.rejects(writer.add(new Uint8Array(LOG_RECORD_SIZE_BYTES_MAX + 1)), {
    code: StorageErrorCode.INVALID_ARGUMENT,
  });
  t.equal(await writer.add(Buffer.from('x')), RECORD_HEADER_BYTES + 1, 'the writer still works');
});

/** A file whose write or sync fails with EIO from the `failAt`-th call on (1-based), once. */
function failingFile(file: File, operation: 'write' | 'sync', failAt: number): File {
  let calls = 0;
  const fail = (): Promise<void> => Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' }));
  return Object.create(file, {
    [operation]: {
      value: (...args: [number, Uint8Array]) =>
        ++calls === failAt ? fail() : operation === 'write' ? file.write(...args) : file.sync(),
    },
  });
}

t.test('after a failed write the writer refuses every later add and sync', async (t) => {
  const file = await createFile(t);
  const writer = new LogWriter(failingFile(file, 'write', 2), 1);
  await writer.add(Buffer.from('fine'));
  await t.rejects(writer.add(Buffer.from('lost')), { code: StorageErrorCode.IO });
  await t.rejects(writer.add(Buffer.from('again')), { code: StorageErrorCode.READ_ONLY });
  await t.rejects(writer.addMany([Buffer.from('a'), Buffer.from('b')]), { code: StorageErrorCode.READ_ONLY });
  await t.rejects(writer.sync(), { code: StorageErrorCode.READ_ONLY });
});

t.test('after a failed sync the writer refuses every later add and sync', async (t) => {
  const file = await createFile(t);
  const writer = new LogWriter(failingFile(file, 'sync', 1), 1);
  await writer.add(Buffer.from('unsynced'));
  await t.rejects(writer.sync(), { code: StorageErrorCode.IO });
  await t.rejects(writer.sync(), { code: StorageErrorCode.READ_ONLY }, 'a retried sync is refused');
  await t.rejects(writer.add(Buffer.from('more')), { code: StorageErrorCode.READ_ONLY });
});

t.test('corruption is found when random garbage with many plausible lengths precedes a large valid record', async (t) => {
  const file = await createFile(t);
  const first = encodeRecord(21, payloadOf(100, 1));
  const garbage = randomBytes(64 * 1024);
  const large = encodeRecord(21, payloadOf(5000, 2));
  await file.write(0, Buffer.concat([first, garbage, large, encodeRecord(21, payloadOf(3000, 3))]));
  const { records, status, error } = await readLog(file, 21, 4096);
  t.equal(records.length, 1);
  t.equal(error?.code, StorageErrorCode.CORRUPTION);
  t.match(status, { kind: 'corrupt', offset: first.length });
  t.match(error?.message, `offset ${first.length + garbage.length}`, 'the valid record found is the large one');
});

t.test('a torn tail of random bytes before preallocated zeros is judged in linear time', { timeout: 60_000 }, async (t) => {
  const file = await createFile(t);
  const writer = new LogWriter(file, 22);
  await writer.add(payloadOf(100, 1));
  const tornOffset = writer.position;
  await writer.add(randomBytes(1024 * 1024));
  await file.truncate(tornOffset + 768 * 1024);
  await file.truncate(file.size() + 16 * 1024 * 1024);
  const started = performance.now();
  const { records, status } = await readAllRecords(file, 22);
  t.equal(records.length, 1);
  t.match(status, { kind: 'torn', offset: tornOffset });
  // Checking each plausible length by rereading its bytes would take minutes here.
  t.ok(performance.now() - started < 10_000, `took ${Math.round(performance.now() - started)} ms`);
});

t.test('the CRC of a span from the running CRCs at its ends equals the CRC of its bytes', async (t) => {
  const data = randomBytes(200_000);
  const random = mulberry32(7);
  const mismatches: string[] = [];
  for (let i = 0; i < 300; i++) {
    const base = Math.floor(random() * 1000);
    const a = base + Math.floor(random() * 1000);
    const b = a + Math.floor(random() * 150_000);
    const seed = crc32c(randomBytes(8));
    const fromEnds = crc32cOfSpan(seed, crc32c(data, base, a), crc32c(data, base, b), b - a);
    const direct = crc32cUpdate(seed, data, a, b);
    if (fromEnds !== direct) mismatches.push(`span [${a}, ${b}) from base ${base}: ${fromEnds} from the ends, ${direct} from the bytes`);
  }
  t.same(mismatches, [], '300 random spans agree');
});

t.test('the record scan agrees with a brute-force check of every offset', async (t) => {
  const random = mulberry32(42);
  const seed = logCrcSeed(30);
  const mismatches: string[] = [];
  let foundSome = 0;
  for (let round = 0; round < 150; round++) {
    const data = randomLogImage(random);
    const from = Math.floor(random() * data.length);
    const chunkBytes = [8, 64, 1000, 4096][round % 4]!;
    const found = await findValidRecord(memoryFile(data), seed, from, data.length, chunkBytes);
    const valid = bruteForceValidOffsets(data, seed, from);
    const ok = found === null ? valid.size === 0 : valid.has(found);
    if (!ok) mismatches.push(`round ${round}: scan found ${found}, brute force ${[...valid].slice(0, 5)}`);
    if (found !== null) foundSome++;
  }
  t.same(mismatches, [], '150 random images agree');
  t.ok(foundSome > 0 && foundSome < 150, `the scan found a valid record in ${foundSome} of 150 images, none in the others`);
});


/** Valid records (of log 30 and of log 31), random bytes, and sparse small bytes that make plausible lengths. */
function randomLogImage(random: () => number): Buffer {
  const parts: Buffer[] = [];
  for (let part = 0; part < 8; part++) {
    const kind = Math.floor(random() * 4);
    const sizeBytes = 1 + Math.floor(random() * 3000);
    if (kind === 0) parts.push(encodeRecord(30, payloadOf(sizeBytes, part)));
    else if (kind === 1) parts.push(encodeRecord(31, payloadOf(sizeBytes, part)));
    else if (kind === 2) parts.push(Buffer.from(Array.from({ length: sizeBytes }, () => Math.floor(random() * 256))));
    else parts.push(Buffer.from(Array.from({ length: sizeBytes }, () => (random() < 0.2 ? Math.floor(random() * 64) : 0))));
  }
  return Buffer.concat(parts);
}

function bruteForceValidOffsets(data: Buffer, seed: number, from: number): Set<number> {
  const valid = new Set<number>();
  for (let offset = from; offset + RECORD_HEADER_BYTES <= data.length; offset++) {
    const payloadBytes = data.readUInt32LE(offset + 4);
    if (payloadBytes === 0 || payloadBytes > LOG_RECORD_SIZE_BYTES_MAX) continue;
    if (offset + RECORD_HEADER_BYTES + payloadBytes > data.length) continue;
    if (recordCrc(seed, data, offset, payloadBytes) === unmaskCrc(data.readUInt32LE(offset))) valid.add(offset);
  }
  return valid;
}

/** A read-only File over bytes in memory, for scans that need no disk. */
function memoryFile(data: Buffer): File {
  const readOnly = (): Promise<never> => Promise.reject(new Error('read-only memory file'));
  return {
    path: 'memory',
    size: () => data.length,
    read: async (position, length) => Buffer.from(data.subarray(position, position + length)),
    append: readOnly,
    write: readOnly,
    sync: readOnly,
    truncate: readOnly,
    close: async () => {},
  };
}

t.test('a closed writer closes its file and rejects later adds', async (t) => {
  const file = await createFile(t);
  let closes = 0;
  const counting: File = Object.create(file, { close: { value: () => (closes++, Promise.resolve()) } });
  const writer = new LogWriter(counting, 1);
  await writer.add(Buffer.from('x'));
  await writer.close();
  await writer.close();
  t.equal(closes, 1, 'the file is closed once');
  await t.rejects(writer.add(Buffer.from('y')), { code: StorageErrorCode.CLOSED });
  await t.rejects(writer.sync(), { code: StorageErrorCode.CLOSED });
});
