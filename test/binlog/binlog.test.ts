// The binlog through the simulated file layer: round trips across rotations, reopen, group
// commit, the two sync policies, a crash sweep (every crash point x every damage x seeds, each
// image opened twice), corruption, I/O errors at every operation, and purge.
// Replay one crash: DOCKET_BINLOG_CRASH_ONLY="<policy>:<seed>:<k>:<damage>[:<recovery crash>]" npx tap test/binlog/binlog.test.ts
// Replay one fault: DOCKET_BINLOG_FAULT_ONLY="<policy>:<operation>:<kind>:<persistent>" npx tap test/binlog/binlog.test.ts

import * as path from 'node:path';
import t from 'tap';
import { Binlog, type BinlogOptions, type BinlogRecord, type SyncPolicy } from '../../src/binlog/binlog.js';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import { LogWriter, RealFileSystem, StorageError, StorageErrorCode, type File, type FileSystem, type OpenMode } from '../../storage/index.js';
import { DAMAGES, mulberry32, SimFileSystem, type Damage, type FaultKind } from '../../storage/sim-file-system.js';

const DIRECTORY = '/binlog';
const IMMEDIATE: SyncPolicy = { mode: 'immediate' };
/** Never fires during a test: syncs then happen only when asked for, so runs are deterministic. */
const PERIODIC_SLOW: SyncPolicy = { mode: 'periodic', intervalMs: 60_000 };
const SEGMENT_BYTES = 16 * 1024;

function options(fileSystem: FileSystem, sync: SyncPolicy = IMMEDIATE, segmentSizeBytes = SEGMENT_BYTES): BinlogOptions {
  return { directory: DIRECTORY, fileSystem, sync, segmentSizeBytes };
}

/** Deterministic bytes, different for each (tsn, size). */
function payloadOf(tsn: number, sizeBytes: number): Buffer {
  const payload = Buffer.allocUnsafe(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) payload[i] = (tsn * 131 + i * 7 + (i >> 8)) & 0xff;
  return payload;
}

async function readAll(binlog: Binlog, fromTsn = binlog.firstTsn, throughTsn?: number): Promise<BinlogRecord[]> {
  const records: BinlogRecord[] = [];
  for await (const record of binlog.read(fromTsn, throughTsn === undefined ? {} : { throughTsn })) records.push(record);
  return records;
}

/** Appends one record per size, each awaited; returns the payloads by TSN - 1 (offset by the start). */
async function appendAll(binlog: Binlog, sizes: number[]): Promise<Buffer[]> {
  const payloads: Buffer[] = [];
  for (const size of sizes) {
    const tsn = binlog.lastTsn + 1;
    const payload = payloadOf(tsn, size);
    await binlog.append(tsn, payload);
    payloads.push(payload);
  }
  return payloads;
}

function sizes(count: number, seed: number, maxBytes = 400): number[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => Math.floor(random() * (maxBytes + 1)));
}

const segmentFiles = (fs: SimFileSystem): string[] => fs.listAll().filter((name) => name.endsWith('.binlog'));
const settleBackground = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Where each record of `segment` starts: after the 25-byte header record, back to back. */
function offsetsIn(records: BinlogRecord[], segment: number): { record: BinlogRecord; offset: number }[] {
  let offset = 25;
  return records
    .filter((record) => record.segment === segment)
    .map((record) => {
      const at = offset;
      offset += record.sizeBytes;
      return { record, offset: at };
    });
}

function segmentPathOf(segment: number): string {
  return `${DIRECTORY}/${String(segment).padStart(6, '0')}.binlog`;
}

t.test('records read back in order across segment rotations, from a middle TSN and through a chosen TSN', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs));
  const payloads = await appendAll(binlog, [0, ...sizes(299, 1)]);
  t.ok(binlog.stats().segments >= 4, `${binlog.stats().segments} segments were written`);
  const all = await readAll(binlog, 1);
  t.same(all.map((record) => record.tsn), payloads.map((_, i) => i + 1), 'every TSN once, in order');
  t.ok(all.every((record, i) => record.payload.equals(payloads[i]!)), 'every payload intact, the empty one too');
  t.ok(all.every((record) => record.sizeBytes === 16 + record.payload.length), 'sizeBytes is the framed size');
  t.ok(all.every((record, i) => i === 0 || record.segment >= all[i - 1]!.segment), 'segments increase with TSN');
  const middle = await readAll(binlog, 150);
  t.same([middle[0]!.tsn, middle.length], [150, 151], 'from a middle TSN to the end');
  const window = await readAll(binlog, 100, 120);
  t.same(window.map((record) => record.tsn), Array.from({ length: 21 }, (_, i) => 100 + i), 'through a chosen TSN');
  t.same(await readAll(binlog, 301), [], 'from lastTsn + 1: nothing');
  await binlog.close();
});

t.test('a record bigger than a segment gets a segment of its own, sized to fit', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs, IMMEDIATE, 4096));
  const payloads = await appendAll(binlog, [100, 10_000, 100]);
  const records = await readAll(binlog, 1);
  t.ok(records.every((record, i) => record.payload.equals(payloads[i]!)));
  t.not(records[1]!.segment, records[0]!.segment, 'the big record starts a new segment');
  t.ok(fs.readFileSync(segmentPathOf(records[1]!.segment))!.length >= 10_000 + 16 + 25, 'that segment was made larger');
  await binlog.close();
});

t.test('a fresh directory is created with one preallocated segment whose header says TSN 1', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open({ ...options(fs), directory: '/data/deep/binlog' });
  t.same(binlog.openReport, { segments: 0, lastTsn: 0, tornTail: false, firstTsn: 1 });
  t.same([binlog.lastTsn, binlog.durableTsn, binlog.firstTsn], [0, 0, 1]);
  t.same(fs.listAll(), ['/data/deep/binlog/000001.binlog']);
  t.equal(fs.readFileSync('/data/deep/binlog/000001.binlog')!.length, SEGMENT_BYTES, 'preallocated to the segment size');
  await binlog.close();
});

t.test('the worked example of FORMAT.md: the first bytes of segment 1 after appending "hi" as TSN 1', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs, IMMEDIATE, 4096));
  await binlog.append(1, Buffer.from('hi'));
  await binlog.close();
  const bytes = fs.readFileSync(segmentPathOf(1))!;
  t.equal(bytes.subarray(0, 25).toString('hex'), 'eebe71f511000000' + '444b5442494e4c47' + '01' + '0100000000000000');
  t.equal(bytes.subarray(25, 43).toString('hex'), '1f2f78e30a000000' + '0100000000000000' + '6869');
  t.ok(bytes.subarray(43).every((byte) => byte === 0), 'zeros after the last record: the end of the log');
});

t.test('reopen continues the TSNs in a new segment, and a second reopen reads the same log', async (t) => {
  const fs = new SimFileSystem();
  const first = await Binlog.open(options(fs));
  const payloads = await appendAll(first, sizes(120, 2));
  const lastSegmentBefore = (await readAll(first, 1)).at(-1)!.segment;
  await first.close();
  const second = await Binlog.open(options(fs));
  t.same(second.openReport, { segments: second.openReport.segments, lastTsn: 120, tornTail: false, firstTsn: 1 });
  payloads.push(...(await appendAll(second, sizes(30, 3))));
  const afterReopen = await readAll(second, 1);
  t.ok(afterReopen.slice(120).every((record) => record.segment > lastSegmentBefore), 'new appends go to a new segment');
  await second.close();
  const third = await Binlog.open(options(fs));
  const again = await readAll(third, 1);
  t.equal(third.lastTsn, 150);
  t.same(again.map((record) => record.payload.toString('hex')), payloads.map((payload) => payload.toString('hex')));
  await third.close();
});

/** Appends 200-byte records until a spare segment has been preallocated. */
async function appendUntilSpare(binlog: Binlog, fs: SimFileSystem): Promise<void> {
  while (segmentFiles(fs).length === binlog.stats().segments) {
    await appendAll(binlog, [200]);
    await settleBackground();
  }
}

t.test('a spare left by a clean close is reused at open, and a spare holding non-zero bytes is deleted', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs));
  await appendUntilSpare(binlog, fs);
  await binlog.close();
  const before = segmentFiles(fs);
  const spare = before.at(-1)!;
  t.equal(fs.readFileSync(spare)!.every((byte) => byte === 0), true, 'the last file is a spare: all zeros');
  const reopened = await Binlog.open(options(fs));
  t.same(segmentFiles(fs), before, 'no new file: the spare became the current segment');
  t.equal(reopened.stats().bytesPreallocated, 0);
  await appendUntilSpare(reopened, fs);
  const lastTsn = reopened.lastTsn;
  await reopened.close();
  const dirty = segmentFiles(fs).at(-1)!;
  fs.flipBit(dirty, 1000, 3);
  const third = await Binlog.open(options(fs));
  t.notOk(segmentFiles(fs).includes(dirty), 'the spare with a non-zero byte was deleted');
  t.equal(third.lastTsn, lastTsn);
  await third.close();
});

t.test('on the real file system, a log written in a new directory reads back after reopen', async (t) => {
  const directory = path.join(t.testdir(), 'a', 'binlog');
  const real = { directory, fileSystem: new RealFileSystem(), sync: IMMEDIATE, segmentSizeBytes: 64 * 1024 };
  const binlog = await Binlog.open(real);
  const payloads = await appendAll(binlog, sizes(400, 8));
  await binlog.close();
  const reopened = await Binlog.open(real);
  const records = await readAll(reopened, 1);
  t.equal(records.length, 400);
  t.ok(records.every((record, i) => record.payload.equals(payloads[i]!)));
  await reopened.close();
});

t.test('append requires the next TSN: a gap or a repeat is a programmer error', async (t) => {
  const binlog = await Binlog.open(options(new SimFileSystem()));
  t.throws(() => void binlog.append(2, Buffer.alloc(1)), { name: 'AssertionError' });
  await binlog.append(1, Buffer.alloc(1));
  t.throws(() => void binlog.append(1, Buffer.alloc(1)), { name: 'AssertionError' });
  await binlog.close();
});

/**
 * A file system that logs every non-zero write and every sync, with syncs that take a
 * millisecond (simulated latency, so later appends arrive while a sync is in flight);
 * `onEvent` hears each event as it is logged.
 */
function recording(fs: SimFileSystem, events: string[], onEvent: (event: string) => void = () => undefined): FileSystem {
  const log = (event: string): void => {
    events.push(event);
    onEvent(event);
  };
  const wrap = (file: File): File => ({
    path: file.path,
    size: () => file.size(),
    append: (data) => file.append(data),
    read: (position, length) => file.read(position, length),
    truncate: (sizeBytes) => file.truncate(sizeBytes),
    close: () => file.close(),
    write: async (position, data) => {
      const zeros = data.every((byte) => byte === 0); // Preallocation.
      if (!zeros) log('write-start');
      await file.write(position, data);
      if (!zeros) log('write-end');
    },
    sync: async () => {
      log('sync-start');
      await new Promise((resolve) => setTimeout(resolve, 1));
      await file.sync();
      log('sync-end');
    },
  });
  return {
    open: async (filePath: string, mode: OpenMode) => wrap(await fs.open(filePath, mode)),
    readFile: (filePath) => fs.readFile(filePath),
    list: (directory) => fs.list(directory),
    exists: (filePath) => fs.exists(filePath),
    mkdir: (directory) => fs.mkdir(directory),
    rename: (from, to) => fs.rename(from, to),
    unlink: (filePath) => fs.unlink(filePath),
    syncDirectory: (directory) => fs.syncDirectory(directory),
  };
}

t.test('group commit: 100 back-to-back appends under immediate take far fewer syncs than records', async (t) => {
  const events: string[] = [];
  const binlog = await Binlog.open(options(recording(new SimFileSystem(), events), IMMEDIATE, 1024 * 1024));
  events.length = 0;
  const early: number[] = [];
  const appends: Promise<void>[] = [];
  for (let tsn = 1; tsn <= 100; tsn++) {
    const appended = binlog.append(tsn, payloadOf(tsn, 50)).then(() => {
      if (binlog.durableTsn < tsn) early.push(tsn);
    });
    appends.push(appended);
    if (tsn % 10 === 0) await settleBackground(); // Later waves arrive while a sync is in flight.
  }
  await Promise.all(appends);
  const stats = binlog.stats();
  t.same(early, [], 'no append resolved before durableTsn covered it');
  t.ok(stats.syncs < stats.records, `${stats.syncs} syncs for ${stats.records} records`);
  t.ok(stats.groups >= 2 && stats.groups < 20, `${stats.groups} groups`);
  t.equal(events.length, stats.groups * 4);
  for (let i = 0; i < events.length; i += 4) {
    const expected = ['write-start', 'write-end', 'sync-start', 'sync-end'];
    t.same(events.slice(i, i + 4), expected, `group ${i / 4 + 1}: its write, then its sync, then the next group`);
  }
  await binlog.close();
});

t.test('periodic: appends resolve after the write, the timer syncs after intervalMs', async (t) => {
  // Each sync the file layer completes wakes the test; nothing here asks for one, so the
  // one that makes TSN 10 durable is the timer's.
  let onSync: (() => void) | undefined;
  // The binlog's timer is unref'd: a bound on the wait (which fails the test) keeps the process alive.
  const nextSync = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const bound = setTimeout(() => reject(new Error('no sync within 10 s')), 10_000);
      onSync = () => (clearTimeout(bound), resolve());
    });
  const events: string[] = [];
  const opened = performance.now();
  const fileSystem = recording(new SimFileSystem(), events, (event) => event === 'sync-end' && onSync?.());
  const binlog = await Binlog.open(options(fileSystem, { mode: 'periodic', intervalMs: 20 }));
  await Promise.all(Array.from({ length: 10 }, (_, i) => binlog.append(i + 1, payloadOf(i + 1, 30))));
  t.equal(binlog.stats().syncs, 0, 'resolved before any sync');
  t.equal(binlog.durableTsn, 0);
  t.equal(binlog.stats().syncPolicy, 'periodic 20 ms');
  let syncsSeen = 0;
  while (binlog.durableTsn < 10 && syncsSeen < 10) {
    await nextSync();
    await settleBackground(); // The writer loop records what the sync covered.
    syncsSeen++;
  }
  t.ok(performance.now() - opened >= 19, `the timer synced ${Math.round(performance.now() - opened)} ms after open (interval 20 ms)`);
  t.ok(binlog.stats().syncs >= 1, 'the timer synced');
  t.equal(binlog.durableTsn, 10);
  await binlog.close();
});

t.test('periodic: waitDurable forces a sync without waiting for the timer, even for a queued record', async (t) => {
  const binlog = await Binlog.open(options(new SimFileSystem(), PERIODIC_SLOW));
  await Promise.all([1, 2, 3].map((tsn) => binlog.append(tsn, payloadOf(tsn, 10))));
  await binlog.waitDurable(2);
  t.equal(binlog.durableTsn, 3);
  t.equal(binlog.stats().syncs, 1);
  const queued = binlog.append(4, payloadOf(4, 10));
  await binlog.waitDurable(4);
  await queued;
  t.equal(binlog.durableTsn, 4);
  await binlog.sync();
  t.equal(binlog.stats().syncs, 2, 'sync() with nothing new to sync does not sync');
  await binlog.close();
});

t.test('a read started while appends go on yields exactly through the lastTsn of its call', async (t) => {
  const binlog = await Binlog.open(options(new SimFileSystem(), PERIODIC_SLOW));
  const first = Array.from({ length: 50 }, (_, i) => binlog.append(i + 1, payloadOf(i + 1, 200)));
  const reading = readAll(binlog, 1);
  const second = Array.from({ length: 50 }, (_, i) => binlog.append(i + 51, payloadOf(i + 51, 200)));
  const records = await reading;
  await Promise.all([...first, ...second]);
  t.same(records.map((record) => record.tsn), Array.from({ length: 50 }, (_, i) => i + 1));
  await binlog.close();
});

t.test('close drains the queue, syncs, and later calls reject with CLOSED; close is idempotent', async (t) => {
  const binlog = await Binlog.open(options(new SimFileSystem(), PERIODIC_SLOW));
  const appended = binlog.append(1, payloadOf(1, 10));
  const closing = binlog.close();
  t.equal(binlog.close(), closing, 'the same promise');
  await appended;
  await closing;
  t.equal(binlog.durableTsn, 1, 'close synced');
  await t.rejects(binlog.append(2, Buffer.alloc(1)), { code: DocketErrorCode.CLOSED });
  await t.rejects(binlog.waitDurable(1), { code: DocketErrorCode.CLOSED });
  await t.rejects(readAll(binlog, 1), { code: DocketErrorCode.CLOSED });
  await t.rejects(binlog.purge(1), { code: DocketErrorCode.CLOSED });
});

t.test('purge deletes exactly the segments wholly below, keeps the current and the spare', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs));
  await appendAll(binlog, sizes(300, 6));
  await appendUntilSpare(binlog, fs);
  const lastTsn = binlog.lastTsn;
  const records = await readAll(binlog, 1);
  const firstOf = new Map<number, number>();
  for (const record of records) if (!firstOf.has(record.segment)) firstOf.set(record.segment, record.tsn);
  const numbers = [...firstOf.keys()];
  t.ok(numbers.length >= 4);
  const filesBefore = segmentFiles(fs);
  t.equal(filesBefore.length, numbers.length + 1, 'the segments and one spare');
  t.equal(await binlog.purge(firstOf.get(numbers[2]!)! - 1), 1, 'the second segment still holds a TSN at belowTsn');
  t.equal(await binlog.purge(firstOf.get(numbers[2]!)!), 1);
  t.same(segmentFiles(fs), filesBefore.slice(2));
  t.equal(binlog.firstTsn, firstOf.get(numbers[2]!));
  await t.rejects(readAll(binlog, 1), { code: DocketErrorCode.INVALID_ARGUMENT });
  t.equal((await readAll(binlog, binlog.firstTsn)).length, lastTsn - binlog.firstTsn + 1, 'the rest reads');
  t.equal(await binlog.purge(lastTsn + 1), numbers.length - 3, 'everything but the current segment');
  t.same(segmentFiles(fs), filesBefore.slice(-2), 'the current segment and the spare remain');
  t.equal(await binlog.purge(lastTsn + 1), 0);
  await binlog.close();
  const reopened = await Binlog.open(options(fs));
  t.equal(reopened.firstTsn, firstOf.get(numbers.at(-1)!));
  t.equal(reopened.lastTsn, lastTsn);
  await reopened.close();
});

// ---- Corruption ----

/** A closed log of several full segments, and its records. */
async function closedLog(): Promise<{ fs: SimFileSystem; records: BinlogRecord[] }> {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs));
  await appendAll(binlog, sizes(250, 7));
  const records = await readAll(binlog, 1);
  await binlog.close();
  return { fs, records };
}

t.test('a bit flipped in any record of a closed segment makes a read over it throw BINLOG_CORRUPTION', async (t) => {
  const { fs, records } = await closedLog();
  const segment = records[0]!.segment;
  const located = offsetsIn(records, segment);
  t.ok(located.length > 10);
  const failures: string[] = [];
  for (const [i, { record, offset }] of located.entries()) {
    const damaged = fs.clone();
    damaged.flipBit(segmentPathOf(segment), offset + ((i * 7) % record.sizeBytes), i % 8);
    const binlog = await Binlog.open(options(damaged));
    const outcome = await readAll(binlog, 1).then(
      () => 'read without an error',
      (error: DocketError) => (error.code === DocketErrorCode.BINLOG_CORRUPTION ? null : `threw ${error.code}`),
    );
    if (outcome !== null) failures.push(`record ${record.tsn}: ${outcome}`);
    await binlog.close();
  }
  t.same(failures, []);
});

t.test('a bit flipped in a segment header makes open throw BINLOG_CORRUPTION', async (t) => {
  const { fs, records } = await closedLog();
  const last = records.at(-1)!.segment;
  for (const segment of [records[0]!.segment, last]) {
    for (const offset of [0, 5, 10, 20]) {
      const damaged = fs.clone();
      damaged.flipBit(segmentPathOf(segment), offset, offset % 8);
      await t.rejects(Binlog.open(options(damaged)), { code: DocketErrorCode.BINLOG_CORRUPTION }, `segment ${segment} byte ${offset}`);
    }
  }
});

t.test('a header of a newer format version refuses to open, saying the version is unsupported', async (t) => {
  const { fs } = await closedLog();
  const file = await fs.open(segmentPathOf(1), 'write');
  const header = Buffer.concat([Buffer.from('DKTBINLG'), Buffer.of(2), Buffer.alloc(8)]);
  header.writeUInt32LE(1, 9);
  await new LogWriter(file, 1, { position: 0 }).addMany([header]);
  await t.rejects(Binlog.open(options(fs)), { code: DocketErrorCode.BINLOG_CORRUPTION, message: /unsupported version 2/ });
});

t.test('a bit flipped in the last record of the last segment is cut as a torn tail (a known limit, FORMAT.md)', async (t) => {
  const { fs, records } = await closedLog();
  const last = records.at(-1)!;
  const { offset } = offsetsIn(records, last.segment).at(-1)!;
  fs.flipBit(segmentPathOf(last.segment), offset + 12, 1);
  const binlog = await Binlog.open(options(fs));
  t.equal(binlog.openReport.tornTail, true);
  t.match(binlog.openReport.tornDetail, /checksum mismatch/);
  t.equal(binlog.lastTsn, last.tsn - 1, 'the damaged record is gone');
  await binlog.append(last.tsn, Buffer.from('replaces the damaged record'));
  const afterCut = await readAll(binlog, 1);
  t.equal(afterCut.length, last.tsn, 'a read across the cut segment into the new one sees a clean end');
  t.equal(afterCut.at(-1)!.payload.toString(), 'replaces the damaged record');
  await binlog.close();
  const again = await Binlog.open(options(fs));
  t.equal(again.openReport.tornTail, false, 'the second open finds a clean log');
  t.equal((await readAll(again, 1)).length, last.tsn);
  await again.close();
});

t.test('a segment without a header before one with a header refuses to open', async (t) => {
  const { fs, records } = await closedLog();
  const damaged = fs.clone();
  const file = await damaged.open(segmentPathOf(records[0]!.segment), 'write');
  await file.write(0, Buffer.alloc(25)); // Zeros over the header record.
  await t.rejects(Binlog.open(options(damaged)), { code: DocketErrorCode.BINLOG_CORRUPTION, message: /no header/ });
});

// ---- The crash sweep ----

interface Burst {
  readonly sizes: number[];
  readonly waitDurable: boolean;
}

/** Bursts of back-to-back appends; some records are bigger than a 4 KiB segment. */
function workload(seed: number): Burst[] {
  const random = mulberry32(seed);
  return Array.from({ length: 14 }, () => ({
    sizes: Array.from({ length: 1 + Math.floor(random() * 5) }, () => (random() < 0.04 ? 5000 : Math.floor(random() * 700))),
    waitDurable: random() < 0.3,
  }));
}

interface Outcome {
  /** Payloads by TSN - 1. */
  readonly issued: Buffer[];
  /** The highest TSN whose append resolved (they resolve in order). */
  acknowledged: number;
  /** The highest TSN a resolved waitDurable covered. */
  durable: number;
  problem?: string;
}

const CRASH_SEGMENT_BYTES = 4096;

async function runWorkload(fs: SimFileSystem, policy: SyncPolicy, bursts: Burst[]): Promise<Outcome> {
  const outcome: Outcome = { issued: [], acknowledged: 0, durable: 0 };
  let binlog: Binlog;
  try {
    binlog = await Binlog.open(options(fs, policy, CRASH_SEGMENT_BYTES));
  } catch (error) {
    if (fs.crashed) return outcome;
    throw error;
  }
  try {
    for (const burst of bursts) {
      const results = await Promise.allSettled(burst.sizes.map((size) => appendTracked(binlog, outcome, policy, size)));
      const failed = results.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
      if (!burst.waitDurable) continue;
      const tsn = binlog.lastTsn;
      await binlog.waitDurable(tsn);
      outcome.durable = tsn;
    }
    await binlog.close();
  } catch (error) {
    await binlog.close().catch(() => undefined);
    if (!fs.crashed) throw error;
  }
  return outcome;
}

function appendTracked(binlog: Binlog, outcome: Outcome, policy: SyncPolicy, size: number): Promise<void> {
  const tsn = outcome.issued.length + 1;
  const payload = payloadOf(tsn, size);
  outcome.issued.push(payload);
  return binlog.append(tsn, payload).then(() => {
    if (tsn !== outcome.acknowledged + 1) outcome.problem ??= `TSN ${tsn} resolved after ${outcome.acknowledged}`;
    if (policy.mode === 'immediate' && binlog.durableTsn < tsn) outcome.problem ??= `TSN ${tsn} resolved before it was durable`;
    outcome.acknowledged = tsn;
  });
}

/** What an image must hold: a dense prefix of what was issued, at least what was promised. */
function checkContent(records: BinlogRecord[], outcome: Outcome, promised: number, lastTsn: number): string | undefined {
  if (records.length < promised) return `${records.length} records, but TSN ${promised} was acknowledged or durable`;
  if (records.length > outcome.issued.length) return `${records.length} records, but only ${outcome.issued.length} were appended`;
  if (lastTsn !== records.length) return `lastTsn ${lastTsn} with ${records.length} records`;
  for (const [i, record] of records.entries()) {
    if (record.tsn !== i + 1) return `record ${i} has TSN ${record.tsn}`;
    if (!record.payload.equals(outcome.issued[i]!)) return `TSN ${record.tsn} has the wrong payload`;
  }
  return undefined;
}

/** Opens the image twice (the first open cuts the tail), checking the content each time. */
async function verifyImage(image: SimFileSystem, policy: SyncPolicy, outcome: Outcome): Promise<string | undefined> {
  const promised = policy.mode === 'immediate' ? outcome.acknowledged : outcome.durable;
  const first = await Binlog.open(options(image, policy, CRASH_SEGMENT_BYTES));
  const records = await readAll(first, 1);
  await first.close();
  const problem = checkContent(records, outcome, promised, first.lastTsn);
  if (problem !== undefined) return `first open: ${problem}`;
  const second = await Binlog.open(options(image, policy, CRASH_SEGMENT_BYTES));
  try {
    const again = await readAll(second, 1);
    if (second.openReport.tornTail) return `second open found a torn tail again: ${second.openReport.tornDetail}`;
    if (again.length !== records.length) return `second open: ${again.length} records, the first had ${records.length}`;
    const problemAgain = checkContent(again, outcome, promised, second.lastTsn);
    if (problemAgain !== undefined) return `second open: ${problemAgain}`;
    // Read across the recovered segments into the new one: they must end cleanly.
    await second.append(second.lastTsn + 1, Buffer.from('after recovery'));
    const last = (await readAll(second, 1)).at(-1);
    if (last?.payload.toString() !== 'after recovery') return 'an append after recovery did not read back';
    return undefined;
  } finally {
    await second.close();
  }
}

/** Opens a copy of the image and crashes it after `operations`; returns the disk that leaves. */
async function crashDuringRecovery(
  image: SimFileSystem,
  operations: number,
  policy: SyncPolicy,
  seed: number,
  damage: Damage,
): Promise<SimFileSystem> {
  const attempt = image.clone();
  attempt.crashAfter(operations);
  try {
    const binlog = await Binlog.open(options(attempt, policy, CRASH_SEGMENT_BYTES));
    await readAll(binlog, 1);
    await binlog.close();
  } catch (error) {
    if (!attempt.crashed) throw error;
  }
  return attempt.image(seed + 1, damage);
}

/** What the sweeps reached in the file layer: crash points where power was lost, faults that failed an operation. */
const reached = { crashes: 0, faults: 0 };

async function checkCrash(
  policy: SyncPolicy,
  seed: number,
  k: number,
  damage: Damage,
  recoveryCrash?: number,
): Promise<string | undefined> {
  const fs = new SimFileSystem();
  fs.crashAfter(k);
  const outcome = await runWorkload(fs, policy, workload(seed));
  if (fs.crashed) reached.crashes++;
  if (outcome.problem !== undefined) return outcome.problem;
  try {
    let image = fs.image(seed, damage);
    if (recoveryCrash !== undefined) image = await crashDuringRecovery(image, recoveryCrash, policy, seed, damage);
    return await verifyImage(image, policy, outcome);
  } catch (error) {
    return `recovery threw ${(error as Error).message}`;
  }
}

const POLICIES: Record<string, SyncPolicy> = { immediate: IMMEDIATE, periodic: PERIODIC_SLOW };
const CRASH_SEEDS = Number(process.env['DOCKET_BINLOG_CRASH_SEEDS'] ?? 3);
const crashOnly = process.env['DOCKET_BINLOG_CRASH_ONLY'];
const faultOnly = process.env['DOCKET_BINLOG_FAULT_ONLY'];

if (crashOnly !== undefined) {
  t.test(`replay crash ${crashOnly}`, async (t) => {
    const [policy, seed, k, damage, again] = crashOnly.split(':');
    const failure = await checkCrash(POLICIES[policy!]!, Number(seed), Number(k), damage as Damage, again ? Number(again) : undefined);
    t.equal(failure, undefined);
  });
} else if (faultOnly === undefined) {
  for (const [name, policy] of Object.entries(POLICIES)) {
    const promise = name === 'immediate' ? 'every acknowledged append survives' : 'a prefix survives, with everything waitDurable covered';
    t.test(`crash sweep under ${name}: at every crash point and every damage, ${promise}, twice`, async (t) => {
      const failures: string[] = [];
      let executions = 0;
      let points = 0;
      const crashesBefore = reached.crashes;
      for (let seed = 1; seed <= CRASH_SEEDS; seed++) {
        const clean = new SimFileSystem();
        await runWorkload(clean, policy, workload(seed));
        points += clean.operationCount * DAMAGES.length; // k = operationCount + 1 never crashes: the run ends first.
        for (let k = 1; k <= clean.operationCount + 1; k++) {
          for (const damage of DAMAGES) {
            const recoveryCrash = (k + seed) % 7 === 0 ? 1 + (k % 11) : undefined;
            const failure = await checkCrash(policy, seed, k, damage, recoveryCrash);
            executions++;
            const again = recoveryCrash === undefined ? '' : `:${recoveryCrash}`;
            if (failure) failures.push(`DOCKET_BINLOG_CRASH_ONLY="${name}:${seed}:${k}:${damage}${again}" → ${failure}`);
          }
        }
      }
      t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} crash executions failed`);
      t.equal(reached.crashes - crashesBefore, points, `the file layer lost power at ${reached.crashes - crashesBefore} of ${executions} crash points`);
      t.ok(points >= 1000, `${points} crash points reached`);
    });
  }
}

// ---- I/O errors ----

const FAULT_KINDS: FaultKind[] = ['EIO', 'ENOSPC', 'short-write'];

interface FaultOutcome extends Outcome {
  failedAt?: number;
}

const isCoded = (error: unknown): boolean =>
  (error instanceof StorageError || error instanceof DocketError) && error.code.startsWith('DOCKET_ERR_');

/** Runs the workload, going on after failures to see that the log refuses everything after the first. */
async function runFaulty(fs: SimFileSystem, policy: SyncPolicy, bursts: Burst[]): Promise<FaultOutcome | string> {
  const outcome: FaultOutcome = { issued: [], acknowledged: 0, durable: 0 };
  let binlog: Binlog;
  try {
    binlog = await Binlog.open(options(fs, policy, CRASH_SEGMENT_BYTES));
  } catch (error) {
    return isCoded(error) ? outcome : `open threw an uncoded error: ${(error as Error).stack}`;
  }
  for (const burst of bursts) {
    const failedBefore = outcome.failedAt !== undefined;
    const results = await Promise.allSettled(burst.sizes.map((size) => appendTracked(binlog, outcome, policy, size)));
    for (const [i, result] of results.entries()) {
      if (result.status === 'fulfilled') {
        if (failedBefore) return `an append resolved after an earlier one had failed`;
        continue;
      }
      if (!isCoded(result.reason)) return `an append rejected with an uncoded error: ${result.reason}`;
      const code = (result.reason as DocketError).code;
      if (failedBefore && code !== DocketErrorCode.READ_ONLY) return `a later append rejected with ${code}, not READ_ONLY`;
      outcome.failedAt ??= outcome.issued.length - burst.sizes.length + i + 1;
    }
    if (burst.waitDurable && outcome.failedAt === undefined) {
      const tsn = binlog.lastTsn;
      await binlog.waitDurable(tsn).then(() => (outcome.durable = tsn), () => (outcome.failedAt ??= tsn));
    }
  }
  if (outcome.failedAt !== undefined) {
    const error = await binlog.append(binlog.lastTsn + 1, Buffer.alloc(1)).then(() => null, (reason: unknown) => reason);
    const code = (error as DocketError | null)?.code;
    if (code !== DocketErrorCode.READ_ONLY) return `an append after the failure got ${code ?? 'no error'}, not READ_ONLY`;
    if (!((error as DocketError).cause instanceof Error)) return 'READ_ONLY carries no cause';
  }
  await binlog.close().catch(() => undefined);
  return outcome;
}

async function checkFault(policy: SyncPolicy, operation: number, kind: FaultKind, persistent: boolean): Promise<string | undefined> {
  const fs = new SimFileSystem();
  fs.injectFault({ operation, kind, persistent });
  const outcome = await runFaulty(fs, policy, workload(11));
  if (fs.faultsFired > 0) reached.faults++;
  if (typeof outcome === 'string') return outcome;
  if (outcome.problem !== undefined) return outcome.problem;
  fs.clearFaults();
  try {
    const binlog = await Binlog.open(options(fs.image(11, 'drop-unsynced'), policy, CRASH_SEGMENT_BYTES));
    const records = await readAll(binlog, 1);
    await binlog.close();
    return checkContent(records, outcome, policy.mode === 'immediate' ? outcome.acknowledged : outcome.durable, binlog.lastTsn);
  } catch (error) {
    return `reopening the healthy image threw ${(error as Error).stack}`;
  }
}

if (faultOnly !== undefined) {
  t.test(`replay fault ${faultOnly}`, async (t) => {
    const [policy, operation, kind, persistent] = faultOnly.split(':');
    t.equal(await checkFault(POLICIES[policy!]!, Number(operation), kind as FaultKind, persistent === 'true'), undefined);
  });
} else if (crashOnly === undefined) {
  for (const [name, policy] of Object.entries(POLICIES)) {
    const title = `every I/O error at every operation under ${name}: coded errors, then READ_ONLY, nothing acknowledged after or lost`;
    t.test(title, async (t) => {
      const clean = new SimFileSystem();
      await runWorkload(clean, policy, workload(11));
      const failures: string[] = [];
      let executions = 0;
      const faultsBefore = reached.faults;
      for (let operation = 1; operation <= clean.operationCount; operation++) {
        for (const kind of FAULT_KINDS) {
          for (const persistent of [false, true]) {
            const failure = await checkFault(policy, operation, kind, persistent);
            executions++;
            if (failure) failures.push(`DOCKET_BINLOG_FAULT_ONLY="${name}:${operation}:${kind}:${persistent}" → ${failure}`);
          }
        }
      }
      t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} fault executions failed`);
      t.equal(reached.faults - faultsBefore, executions, `the fault fired in ${reached.faults - faultsBefore} of ${executions} runs`);
      t.ok(executions >= clean.operationCount * 6, `${executions} fault executions over ${clean.operationCount} operations`);
    });
  }
}

t.test('a failed write rejects its group with the I/O error, then every call with READ_ONLY', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs));
  await binlog.append(1, payloadOf(1, 10));
  fs.injectFault({ operation: 1, kind: 'EIO', persistent: false, call: 'write', path: '.binlog' });
  const group = [2, 3, 4].map((tsn) => binlog.append(tsn, payloadOf(tsn, 10)));
  for (const append of group) await t.rejects(append, { code: StorageErrorCode.IO });
  const later = await binlog.append(5, payloadOf(5, 10)).catch((error: DocketError) => error);
  t.equal((later as DocketError).code, DocketErrorCode.READ_ONLY);
  t.equal(((later as DocketError).cause as StorageError).code, StorageErrorCode.IO, 'the cause is attached');
  await t.rejects(binlog.waitDurable(5), { code: DocketErrorCode.READ_ONLY });
  await t.rejects(binlog.sync(), { code: DocketErrorCode.READ_ONLY });
  t.equal(binlog.durableTsn, 1);
  await binlog.close();
  const reopened = await Binlog.open(options(fs.image(1, 'drop-unsynced')));
  t.equal(reopened.lastTsn, 1, 'the acknowledged record survives');
  await reopened.close();
});

t.test('a failed sync (disk full) is not retried: the group rejects with NO_SPACE and the log stays failed', async (t) => {
  const fs = new SimFileSystem();
  const binlog = await Binlog.open(options(fs));
  await binlog.append(1, payloadOf(1, 10));
  fs.injectFault({ operation: 1, kind: 'ENOSPC', persistent: false, call: 'sync', path: '.binlog' });
  await t.rejects(binlog.append(2, payloadOf(2, 10)), { code: StorageErrorCode.NO_SPACE });
  const operations = fs.operationCount;
  await t.rejects(binlog.append(3, payloadOf(3, 10)), { code: DocketErrorCode.READ_ONLY });
  await t.rejects(binlog.sync(), { code: DocketErrorCode.READ_ONLY });
  t.equal(fs.operationCount, operations, 'no write or sync was tried after the failure');
  await binlog.close();
});
