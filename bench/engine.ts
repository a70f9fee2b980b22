// The engine benchmark (`npm run bench:engine [-- --quick]`).
//
// Docket's engine against two baselines on the same machine in the same run, each system in
// its own child process so that peak RSS is per system:
//   - Docket: fill N random keys (16-byte keys, 1,200-byte values, batches of 100, one await
//     per batch, no WAL, one column family), flush; then, in a fresh process on the same data,
//     random reads (32 in flight, keys that exist), a full scan, and read-while-writing (one
//     writer of batches of 100 new keys, 32 readers) with put latency per batch.
//   - RocksDB's db_bench (Debian's rocksdb-tools, installed with apt-get if missing):
//     fillrandom --disable_wal=1, then readrandom, one thread, db_bench's default compression
//     (snappy, values generated to compress to 0.5).
//   - LevelDB through classic-level: the same fill with batches of 1,000 and of 100, then gets
//     with 32 in flight (LevelDB's defaults: snappy, 4 MiB write buffer, unsynced WAL on).
// Values everywhere are db_bench-style half-compressible bytes (each 100-byte piece is 50 random
// printable bytes written twice), so the compressing baselines see the data they usually see;
// Docket does not compress. Keys come from a seeded PRNG, so every run writes the same data.
// Fill rates cover the writes only, not the final flush or the wait for compaction at close
// (db_bench's do the same); write amplification is taken after close, counting flushes and
// compactions (compressed bytes for the baselines; LevelDB's unsynced WAL is not counted).
//
// Environment: BENCH_KEYS (default 1,000,000), BENCH_ROUNDS (3), BENCH_READS (200,000),
// BENCH_RWW_SECONDS (20). --quick: 100,000 keys, 1 round, 50,000 reads, 5 s read-while-writing
// unless the environment says otherwise. The machine is noisy, so each round runs the systems
// alternately (docket, leveldb, rocksdb) and the summary quotes medians across rounds and the
// median of the per-round Docket/baseline ratios. Data lives in bench/.work/ (gitignored) and is
// deleted between runs; the summary also goes to bench/.work/engine-results.json.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { setImmediate, setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Engine, limits, WriteBatch } from '../storage/index.js';

// ---- configuration ----

const KEY_BYTES = 16;
const VALUE_BYTES = 1200;
const FILL_BATCH = 100;
const IN_FLIGHT = 32;
const FAMILY = 'bench';
const SEED_KEYS = 1;
const SEED_VALUES = 2;
const SEED_READS = 3;
const SEED_NEW_KEYS = 4;
const MIB = 1024 * 1024;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, HERE.split(path.sep).includes('dist') ? '../..' : '..');
const WORK = path.join(ROOT, 'bench', '.work');

interface Config {
  readonly keys: number;
  readonly rounds: number;
  readonly reads: number;
  readonly rwwSeconds: number;
}

function configFrom(argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const quick = argv.includes('--quick');
  const number = (name: string, normal: number, small: number): number => {
    const text = env[name];
    const value = text === undefined || text === '' ? (quick ? small : normal) : Number(text);
    if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not ${text}`);
    return value;
  };
  return {
    keys: number('BENCH_KEYS', 1_000_000, 100_000),
    rounds: number('BENCH_ROUNDS', 3, 1),
    reads: number('BENCH_READS', 200_000, 50_000),
    rwwSeconds: number('BENCH_RWW_SECONDS', 20, 5),
  };
}

/** What the parent hands a child: the resolved config, as environment variables. */
function configEnv(config: Config): NodeJS.ProcessEnv {
  return {
    ...process.env,
    BENCH_KEYS: String(config.keys),
    BENCH_ROUNDS: String(config.rounds),
    BENCH_READS: String(config.reads),
    BENCH_RWW_SECONDS: String(config.rwwSeconds),
  };
}

// ---- results ----

/** One measured phase of one system. */
interface Row {
  readonly system: string;
  readonly phase: string;
  readonly opsPerSec: number;
  readonly mbPerSec?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly maxMs?: number;
  readonly note?: string;
}

/** What one child process (or one db_bench invocation pair) reports. */
interface ChildResult {
  readonly rows: Row[];
  /** Bytes written by flushes and compactions (and the WAL, if any) per user byte. */
  readonly writeAmp?: number;
  readonly peakRssMb: number;
  readonly detail?: Record<string, unknown>;
}

interface SystemResult {
  readonly system: string;
  readonly rows: Row[];
  readonly writeAmp?: number;
  readonly peakRssMb: number;
  readonly detail: Record<string, unknown>;
  /** Set when a child failed; the round goes on with the other systems. */
  readonly error?: string;
}

// ---- data: seeded keys and db_bench-style values ----

/** mulberry32: small, fast and deterministic; plenty for benchmark keys. */
class Rng {
  constructor(private state: number) {}

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.next() / 2 ** 32) * n);
  }

  /** A fresh 16-byte key. */
  key(): Buffer {
    const key = Buffer.allocUnsafe(KEY_BYTES);
    for (let i = 0; i < KEY_BYTES; i += 4) key.writeUInt32LE(this.next(), i);
    return key;
  }
}

/** All fill keys, back to back: key i is bytes [16i, 16i + 16). */
function makeKeys(count: number): Buffer {
  const rng = new Rng(SEED_KEYS);
  const keys = Buffer.allocUnsafe(count * KEY_BYTES);
  for (let i = 0; i < keys.length; i += 4) keys.writeUInt32LE(rng.next(), i);
  return keys;
}

function keyAt(keys: Buffer, index: number): Buffer {
  return keys.subarray(index * KEY_BYTES, (index + 1) * KEY_BYTES);
}

/**
 * Values as db_bench's RandomGenerator makes them at compression ratio 0.5: a 1 MiB pool of
 * 100-byte pieces, each 50 random printable bytes twice, handed out as consecutive slices.
 * Each value is copied into its own buffer, as one arriving from a client would be.
 */
class ValueSource {
  private readonly pool = Buffer.allocUnsafe(MIB);
  private position = 0;

  constructor(seed: number) {
    const rng = new Rng(seed);
    for (let piece = 0; piece + 100 <= this.pool.length; piece += 100) {
      for (let i = 0; i < 50; i++) this.pool[piece + i] = this.pool[piece + 50 + i] = 32 + rng.below(95);
    }
    this.pool.fill(32, this.pool.length - (this.pool.length % 100));
  }

  next(): Buffer {
    if (this.position + VALUE_BYTES > this.pool.length) this.position = 0;
    const value = Buffer.from(this.pool.subarray(this.position, this.position + VALUE_BYTES));
    this.position += VALUE_BYTES;
    return value;
  }
}

// ---- timing helpers ----

function now(): bigint {
  return process.hrtime.bigint();
}

function secondsSince(start: bigint): number {
  return Number(now() - start) / 1e9;
}

function msSince(start: bigint): number {
  return Number(now() - start) / 1e6;
}

/** Per-operation latencies in milliseconds. */
class Latencies {
  private readonly samples: number[] = [];

  add(ms: number): void {
    this.samples.push(ms);
  }

  summary(): { p50Ms: number; p99Ms: number; maxMs: number } {
    const sorted = Float64Array.from(this.samples).sort();
    const at = (q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.length === 0 ? 0 : sorted[sorted.length - 1]! };
  }
}

function mbPerSec(bytes: number, seconds: number): number {
  return bytes / MIB / seconds;
}

/** Runs op(0) .. op(total - 1) with `concurrency` of them in flight at once. */
async function runCount(total: number, concurrency: number, op: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < total; index = next++) await op(index);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Runs op with `concurrency` in flight until `stopped()` says so. */
async function runUntil(stopped: () => boolean, concurrency: number, op: () => Promise<void>): Promise<void> {
  const worker = async (): Promise<void> => {
    while (!stopped()) await op();
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** A progress line on stderr (the parent passes a child's stderr through). */
function progress(text: string): void {
  process.stderr.write(`  ${text}\n`);
}

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** The fill's shared loop: batches of `batchSize` keys, one awaited write per batch. */
async function fillLoop(count: number, batchSize: number, write: (first: number, end: number, values: ValueSource) => Promise<void>): Promise<{ seconds: number; latencies: Latencies }> {
  const values = new ValueSource(SEED_VALUES);
  const latencies = new Latencies();
  const start = now();
  for (let first = 0; first < count; first += batchSize) {
    const began = now();
    await write(first, Math.min(first + batchSize, count), values);
    latencies.add(msSince(began));
  }
  return { seconds: secondsSince(start), latencies };
}

function fillRow(system: string, batchSize: number, count: number, fill: { seconds: number; latencies: Latencies }, note?: string): Row {
  const row: Row = { system, phase: `fill (batch ${batchSize})`, opsPerSec: count / fill.seconds, mbPerSec: mbPerSec(count * (KEY_BYTES + VALUE_BYTES), fill.seconds), ...fill.latencies.summary() };
  return note === undefined ? row : { ...row, note };
}

// ---- Docket ----

async function docketFill(config: Config, dir: string): Promise<ChildResult> {
  await rm(dir, { recursive: true, force: true });
  const engine = await Engine.open({ directory: dir, wal: false });
  await engine.createFamily(FAMILY);
  const keys = makeKeys(config.keys);
  const fill = await fillLoop(config.keys, FILL_BATCH, async (first, end, values) => {
    const batch = new WriteBatch();
    for (let i = first; i < end; i++) batch.put(FAMILY, Buffer.from(keyAt(keys, i)), values.next());
    await engine.write(batch, { tag: first / FILL_BATCH });
  });
  progress(`docket fill: ${fill.seconds.toFixed(1)} s`);
  const flushStart = now();
  await engine.flush();
  const flushSeconds = secondsSince(flushStart);
  await engine.close();
  const closeSeconds = secondsSince(flushStart) - flushSeconds;
  const stats = engine.stats();
  const detail = { flushSeconds, closeSeconds, flushes: stats.flushes, compactions: stats.compactions, trivialMoves: stats.trivialMoves, stallMs: stats.stallMs, slowdowns: stats.slowdowns, levels: stats.families[0]?.levels.map((level) => `${level.files}/${(level.bytes / MIB).toFixed(0)}MiB`).join(' ') };
  const note = `then flush ${flushSeconds.toFixed(1)} s, close ${closeSeconds.toFixed(1)} s; ${stats.compactions} compactions, stalls ${stats.stallMs} ms, ${stats.slowdowns} slowdowns`;
  return { rows: [fillRow('docket', FILL_BATCH, config.keys, fill, note)], writeAmp: stats.writeAmplification, peakRssMb: peakRssMb(), detail };
}

async function docketRandomReads(engine: Engine, keys: Buffer, config: Config): Promise<Row> {
  const rng = new Rng(SEED_READS);
  const order = Uint32Array.from({ length: config.reads }, () => rng.below(config.keys));
  let missing = 0;
  let bytes = 0;
  const start = now();
  await runCount(config.reads, IN_FLIGHT, async (i) => {
    const value = await engine.get(FAMILY, keyAt(keys, order[i]!));
    if (value === undefined) missing++;
    else bytes += KEY_BYTES + value.length;
  });
  const seconds = secondsSince(start);
  const note = missing === 0 ? `${IN_FLIGHT} in flight` : `${IN_FLIGHT} in flight; ${missing} MISSING`;
  return { system: 'docket', phase: 'random reads', opsPerSec: config.reads / seconds, mbPerSec: mbPerSec(bytes, seconds), note };
}

function docketScanPhase(engine: Engine, _keys: Buffer, config: Config): Promise<Row> {
  return docketScan(engine, config.keys);
}

async function docketScan(engine: Engine, expected: number): Promise<Row> {
  let entries = 0;
  let bytes = 0;
  const start = now();
  for await (const { key, value } of engine.iterator(FAMILY)) {
    entries++;
    bytes += key.length + value.length;
  }
  const seconds = secondsSince(start);
  const note = entries === expected ? `${entries} entries` : `${entries} entries, expected ${expected}`;
  return { system: 'docket', phase: 'full scan', opsPerSec: entries / seconds, mbPerSec: mbPerSec(bytes, seconds), note };
}

/**
 * One writer of batches of 100 new keys and 32 readers of existing keys, for a fixed time.
 * Each operation starts from a fresh event-loop turn, as a request arriving on a socket would:
 * reads served from the block cache never leave the microtask queue, so without that yield
 * the readers would starve timers and the engine's background I/O.
 */
async function docketReadWhileWriting(engine: Engine, keys: Buffer, config: Config): Promise<Row[]> {
  const before = engine.stats();
  const readRng = new Rng(SEED_READS + 100);
  const deadline = now() + BigInt(config.rwwSeconds * 1e9);
  const stopped = (): boolean => now() >= deadline;
  let reads = 0;
  const start = now();
  const writer = docketWriter(engine, Math.ceil(config.keys / FILL_BATCH), stopped);
  const readers = runUntil(stopped, IN_FLIGHT, async () => {
    await setImmediate();
    await engine.get(FAMILY, keyAt(keys, readRng.below(config.keys)));
    reads++;
  });
  const [written] = await Promise.all([writer, readers]);
  const seconds = secondsSince(start);
  const after = engine.stats();
  const compactedMb = (after.bytesWritten.compaction - before.bytesWritten.compaction) / MIB;
  const note = `${after.flushes - before.flushes} flushes, ${after.compactions - before.compactions} compactions done, ${compactedMb.toFixed(0)} MiB compacted, stalls ${after.stallMs - before.stallMs} ms, ${after.slowdowns - before.slowdowns} slowdowns`;
  return [
    { system: 'docket', phase: 'rww: reads', opsPerSec: reads / seconds, mbPerSec: mbPerSec(reads * (KEY_BYTES + VALUE_BYTES), seconds), note: `${IN_FLIGHT} readers, ${seconds.toFixed(1)} s` },
    { system: 'docket', phase: 'rww: writes (batch 100)', opsPerSec: written.count / seconds, mbPerSec: mbPerSec(written.count * (KEY_BYTES + VALUE_BYTES), seconds), ...written.latencies.summary(), note },
  ];
}

/** The read-while-writing writer: batches of 100 new random keys, tags after the fill's. */
async function docketWriter(engine: Engine, firstTag: number, stopped: () => boolean): Promise<{ count: number; latencies: Latencies }> {
  const newKeys = new Rng(SEED_NEW_KEYS);
  const values = new ValueSource(SEED_VALUES + 1);
  const latencies = new Latencies();
  let count = 0;
  for (let tag = firstTag; !stopped(); tag++) {
    await setImmediate();
    const batch = new WriteBatch();
    for (let i = 0; i < FILL_BATCH; i++) batch.put(FAMILY, newKeys.key(), values.next());
    const began = now();
    await engine.write(batch, { tag });
    latencies.add(msSince(began));
    count += FILL_BATCH;
  }
  return { count, latencies };
}

/** True while some level is over its compaction trigger (the picker's rule: score >= 1). */
function wantsCompaction(levels: readonly { files: number; bytes: number }[]): boolean {
  return levels.some((level, i) => {
    if (i === levels.length - 1) return false;
    if (i === 0) return level.files >= limits.L0_COMPACTION_TRIGGER_FILES;
    return level.bytes >= limits.LEVEL1_SIZE_BYTES * limits.LEVEL_SIZE_RATIO ** (i - 1);
  });
}

/**
 * Waits (at most `limitSeconds`) for the compactions the fill left owing: the fill's close
 * waits only for the job running then, and the rest would run during the read phases.
 */
async function waitForCompactions(engine: Engine, limitSeconds: number): Promise<number> {
  const start = now();
  while (secondsSince(start) < limitSeconds && wantsCompaction(engine.stats().families[0]!.levels)) await sleep(100);
  return secondsSince(start);
}

async function docketRead(config: Config, dir: string): Promise<ChildResult> {
  const engine = await Engine.open({ directory: dir, wal: false });
  const keys = makeKeys(config.keys);
  const settleSeconds = await waitForCompactions(engine, 600);
  const settledCompactions = engine.stats().compactions;
  progress(`docket compaction settle before reads: ${settleSeconds.toFixed(1)} s, ${settledCompactions} compactions`);
  const rows: Row[] = [];
  for (const phase of [docketRandomReads, docketScanPhase, docketReadWhileWriting]) {
    const start = now();
    rows.push(...[await phase(engine, keys, config)].flat());
    progress(`docket ${rows[rows.length - 1]!.phase}: ${secondsSince(start).toFixed(1)} s`);
  }
  rows[0] = { ...rows[0]!, note: `${rows[0]!.note ?? ''}; after ${settleSeconds.toFixed(1)} s compaction settle` };
  const beforeClose = engine.stats();
  const closeStart = now();
  await engine.close();
  const closeSeconds = secondsSince(closeStart);
  const stats = engine.stats();
  // close() waits for a running compaction: one that finishes here was running during rww.
  progress(`docket close after rww: ${closeSeconds.toFixed(1)} s, ${stats.compactions - beforeClose.compactions} compactions finished meanwhile`);
  const detail = { settleSeconds, settledCompactions, closeSeconds, compactionsFinishedAtClose: stats.compactions - beforeClose.compactions, rwwWriteAmp: stats.writeAmplification, blockCacheHitRatio: stats.blockCache.hitRatio, levels: stats.families[0]?.levels.map((level) => level.files).join(' ') };
  return { rows, peakRssMb: peakRssMb(), detail };
}

// ---- LevelDB through classic-level ----

type Level = import('classic-level').ClassicLevel<Buffer, Buffer>;

async function openLevel(dir: string): Promise<Level> {
  const { ClassicLevel } = await import('classic-level');
  const db = new ClassicLevel<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  return db;
}

/** Sum of LevelDB's per-level "Write(MB)" column (flushes and compactions, compressed bytes). */
function levelWrittenMb(stats: string): number {
  let total = 0;
  for (const line of stats.split('\n')) {
    const match = /^\s*\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+(\d+)\s*$/.exec(line);
    if (match) total += Number(match[1]);
  }
  return total;
}

async function leveldbFill(config: Config, dir: string, batchSize: number): Promise<ChildResult> {
  await rm(dir, { recursive: true, force: true });
  const db = await openLevel(dir);
  const keys = makeKeys(config.keys);
  const fill = await fillLoop(config.keys, batchSize, async (first, end, values) => {
    const ops = [];
    for (let i = first; i < end; i++) ops.push({ type: 'put' as const, key: Buffer.from(keyAt(keys, i)), value: values.next() });
    await db.batch(ops);
  });
  progress(`leveldb fill (batch ${batchSize}): ${fill.seconds.toFixed(1)} s`);
  const stats = db.getProperty('leveldb.stats');
  await db.close();
  const writeAmp = (levelWrittenMb(stats) * MIB) / (config.keys * (KEY_BYTES + VALUE_BYTES));
  return { rows: [fillRow(`leveldb`, batchSize, config.keys, fill, 'unsynced WAL on')], writeAmp, peakRssMb: peakRssMb() };
}

async function leveldbRead(config: Config, dir: string): Promise<ChildResult> {
  const db = await openLevel(dir);
  const keys = makeKeys(config.keys);
  const rng = new Rng(SEED_READS);
  const order = Uint32Array.from({ length: config.reads }, () => rng.below(config.keys));
  let missing = 0;
  const start = now();
  await runCount(config.reads, IN_FLIGHT, async (i) => {
    if ((await db.get(keyAt(keys, order[i]!))) === undefined) missing++;
  });
  const seconds = secondsSince(start);
  const rows: Row[] = [{ system: 'leveldb', phase: 'random reads', opsPerSec: config.reads / seconds, mbPerSec: mbPerSec((config.reads - missing) * (KEY_BYTES + VALUE_BYTES), seconds), note: missing === 0 ? `${IN_FLIGHT} in flight` : `${missing} MISSING` }];
  rows.push(await leveldbScan(db));
  await db.close();
  return { rows, peakRssMb: peakRssMb() };
}

async function leveldbScan(db: Level): Promise<Row> {
  let entries = 0;
  let bytes = 0;
  const start = now();
  for await (const [key, value] of db.iterator()) {
    entries++;
    bytes += key.length + value.length;
  }
  const seconds = secondsSince(start);
  return { system: 'leveldb', phase: 'full scan', opsPerSec: entries / seconds, mbPerSec: mbPerSec(bytes, seconds), note: `${entries} entries` };
}

// ---- child processes ----

/** Child entry point: `--child KIND --dir DIR [--batch N]`; prints one JSON line. */
async function childMain(argv: readonly string[]): Promise<void> {
  const arg = (name: string): string => {
    const at = argv.indexOf(name);
    if (at < 0 || at + 1 >= argv.length) throw new Error(`missing ${name}`);
    return argv[at + 1]!;
  };
  const config = configFrom([], process.env);
  const kind = arg('--child');
  const dir = arg('--dir');
  let result: ChildResult;
  if (kind === 'docket-fill') result = await docketFill(config, dir);
  else if (kind === 'docket-read') result = await docketRead(config, dir);
  else if (kind === 'leveldb-fill') result = await leveldbFill(config, dir, Number(arg('--batch')));
  else if (kind === 'leveldb-read') result = await leveldbRead(config, dir);
  else throw new Error(`unknown child kind ${kind}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

interface ProcessOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Peak resident set (VmHWM), sampled from /proc every 100 ms; 0 if never sampled. */
  readonly peakRssKb: number;
}

function sampleHwmKb(pid: number | undefined): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Runs a command to completion, collecting its output and sampling its peak RSS. */
function runProcess(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, echoStderr = false): Promise<ProcessOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakRssKb = 0;
    const sampler = setInterval(() => (peakRssKb = Math.max(peakRssKb, sampleHwmKb(child.pid))), 100);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (echoStderr) process.stderr.write(chunk);
    });
    child.on('error', (error) => {
      clearInterval(sampler);
      reject(error);
    });
    child.on('close', (code) => {
      clearInterval(sampler);
      resolve({ code, stdout, stderr, peakRssKb });
    });
  });
}

function lastErrorLine(stderr: string): string {
  return stderr.split('\n').find((line) => /Error|error:/.test(line))?.trim() ?? stderr.trim().split('\n').pop() ?? '';
}

async function runChild(config: Config, kind: string, dir: string, extra: string[] = []): Promise<ChildResult> {
  const outcome = await runProcess(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, '--dir', dir, ...extra], configEnv(config), true);
  const line = outcome.stdout.trim().split('\n').pop() ?? '';
  if (outcome.code !== 0 || !line.startsWith('{')) throw new Error(`child ${kind} failed (exit ${outcome.code}): ${lastErrorLine(outcome.stderr)}`);
  return JSON.parse(line) as ChildResult;
}

// ---- RocksDB's db_bench ----

function findOnPath(names: readonly string[]): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    for (const name of names) if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}

/** db_bench from PATH, installing Debian's rocksdb-tools if missing; undefined if that fails. */
async function ensureDbBench(): Promise<string | undefined> {
  const names = ['db_bench', 'rocksdb_db_bench'];
  const found = findOnPath(names);
  if (found) return found;
  console.log('db_bench not found: installing rocksdb-tools with apt-get ...');
  const sudo = process.getuid?.() === 0 ? '' : 'sudo -n ';
  const script = `${sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo}apt-get install -y -qq rocksdb-tools`;
  const outcome = await runProcess('sh', ['-c', script], { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }).catch((error: Error) => ({ code: 1, stdout: '', stderr: error.message, peakRssKb: 0 }));
  const installed = findOnPath(names);
  if (!installed) {
    console.log(`WARNING: could not install rocksdb-tools (exit ${outcome.code}): ${outcome.stderr.trim().split('\n').slice(-3).join(' / ')}`);
    console.log('WARNING: continuing without the RocksDB baseline.');
  }
  return installed;
}

/** Parses `name : X micros/op Y ops/sec ... Z MB/s (F of T found)` from db_bench's output. */
function parseDbBench(stdout: string, benchmark: string): { opsPerSec: number; mbPerSec?: number; found?: string } {
  const line = stdout.split('\n').find((text) => text.startsWith(`${benchmark} `) && text.includes('ops/sec'));
  const ops = line && /([\d.]+) ops\/sec/.exec(line);
  if (!line || !ops) throw new Error(`no "${benchmark}" result in db_bench output:\n${stdout.slice(-2000)}`);
  const mb = /([\d.]+) MB\/s/.exec(line);
  const found = /\((\d+ of \d+ found)\)/.exec(line);
  return { opsPerSec: Number(ops[1]), ...(mb ? { mbPerSec: Number(mb[1]) } : {}), ...(found ? { found: found[1] } : {}) };
}

/** Bytes of every table file that flushes and compactions created, from the DB's LOG. */
function rocksdbTableBytes(log: string): number {
  let total = 0;
  for (const line of log.split('\n')) {
    if (!line.includes('"table_file_creation"')) continue;
    const size = /"file_size": (\d+)/.exec(line);
    if (size) total += Number(size[1]);
  }
  return total;
}

async function runRocksdb(config: Config, bin: string, dir: string): Promise<ChildResult> {
  await rm(dir, { recursive: true, force: true });
  const common = [`--db=${dir}`, `--key_size=${KEY_BYTES}`, `--value_size=${VALUE_BYTES}`, `--num=${config.keys}`, '--threads=1'];
  const fill = await runProcess(bin, ['--benchmarks=fillrandom', '--disable_wal=1', '--seed=1', ...common]);
  if (fill.code !== 0) throw new Error(`db_bench fillrandom failed (exit ${fill.code}):\n${fill.stderr.slice(-2000)}`);
  const log = await readFile(path.join(dir, 'LOG'), 'utf8');
  const writeAmp = rocksdbTableBytes(log) / (config.keys * (KEY_BYTES + VALUE_BYTES));
  const read = await runProcess(bin, ['--benchmarks=readrandom', '--use_existing_db=1', `--reads=${config.reads}`, '--seed=2', ...common]);
  if (read.code !== 0) throw new Error(`db_bench readrandom failed (exit ${read.code}):\n${read.stderr.slice(-2000)}`);
  const version = /RocksDB:\s+version (\S+)/.exec(fill.stdout)?.[1];
  const filled = parseDbBench(fill.stdout, 'fillrandom');
  const got = parseDbBench(read.stdout, 'readrandom');
  const rows: Row[] = [
    { system: 'rocksdb', phase: 'fill (batch 1)', ...filled, note: 'db_bench fillrandom, no WAL, snappy' },
    { system: 'rocksdb', phase: 'random reads', opsPerSec: got.opsPerSec, ...(got.mbPerSec === undefined ? {} : { mbPerSec: got.mbPerSec }), note: `1 thread; ${got.found ?? '?'}` },
  ];
  return { rows, writeAmp, peakRssMb: Math.max(fill.peakRssKb, read.peakRssKb) / 1024, detail: { version, fillPeakRssMb: fill.peakRssKb / 1024, readPeakRssMb: read.peakRssKb / 1024 } };
}

// ---- one round ----

/** One system's result from its children's: rows in order, peak RSS the largest, details per child. */
function merge(system: string, parts: ChildResult[], writeAmpFrom?: ChildResult): SystemResult {
  const detail = { children: parts.map((part) => ({ phases: part.rows.map((row) => row.phase).join(', '), peakRssMb: part.peakRssMb, ...part.detail })) };
  const writeAmp = writeAmpFrom?.writeAmp;
  return { system, rows: parts.flatMap((part) => part.rows), ...(writeAmp === undefined ? {} : { writeAmp }), peakRssMb: Math.max(...parts.map((part) => part.peakRssMb)), detail };
}

async function runDocket(config: Config): Promise<SystemResult> {
  const dir = path.join(WORK, 'docket');
  try {
    const fill = await runChild(config, 'docket-fill', dir);
    const read = await runChild(config, 'docket-read', dir);
    return merge('docket', [fill, read], fill);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runLeveldb(config: Config): Promise<SystemResult> {
  const dir = path.join(WORK, 'leveldb');
  try {
    const small = await runChild(config, 'leveldb-fill', dir, ['--batch', String(FILL_BATCH)]);
    const large = await runChild(config, 'leveldb-fill', dir, ['--batch', '1000']);
    const read = await runChild(config, 'leveldb-read', dir);
    const merged = merge('leveldb', [small, large, read], large);
    return { ...merged, detail: { ...merged.detail, writeAmpBatch100: small.writeAmp } };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runRocksdbSystem(config: Config, bin: string): Promise<SystemResult> {
  const dir = path.join(WORK, 'rocksdb');
  try {
    const part = await runRocksdb(config, bin, dir);
    return merge('rocksdb', [part], part);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runRound(config: Config, dbBench: string | undefined, round: number): Promise<SystemResult[]> {
  const results: SystemResult[] = [];
  const runners: [string, () => Promise<SystemResult>][] = [['docket', () => runDocket(config)], ['leveldb', () => runLeveldb(config)]];
  if (dbBench) runners.push(['rocksdb', () => runRocksdbSystem(config, dbBench)]);
  for (const [name, run] of runners) {
    const start = now();
    process.stderr.write(`round ${round}: ${name} ...\n`);
    const result = await run().catch((error: unknown): SystemResult => {
      const message = error instanceof Error ? error.message.split('\n')[0]! : String(error);
      return { system: name, rows: [], peakRssMb: Number.NaN, detail: {}, error: message };
    });
    process.stderr.write(`round ${round}: ${name} ${result.error ? 'FAILED' : 'done'} in ${secondsSince(start).toFixed(0)} s\n`);
    results.push(result);
  }
  return results;
}

// ---- reporting ----

const fmt = (value: number | undefined, digits = 0): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));

function printRows(rows: readonly Row[]): void {
  const header = ['system', 'phase', 'ops/s', 'MB/s', 'p50 ms', 'p99 ms', 'max ms', 'note'];
  const lines = rows.map((row) => [row.system, row.phase, fmt(row.opsPerSec), fmt(row.mbPerSec, 1), fmt(row.p50Ms, 2), fmt(row.p99Ms, 2), fmt(row.maxMs, 2), row.note ?? '']);
  printTable(header, lines);
}

function printTable(header: string[], lines: string[][]): void {
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
  const render = (cells: string[]): string => cells.map((cell, i) => (i < 2 || i === cells.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  console.log(render(header));
  for (const line of lines) console.log(render(line));
}

function printRound(round: number, results: readonly SystemResult[]): void {
  console.log(`\n== round ${round} ==`);
  printRows(results.flatMap((result) => result.rows));
  printTable(['system', 'write amp', 'peak RSS MB'], results.map((r) => [r.system, fmt(r.writeAmp, 2), fmt(r.peakRssMb)]));
  for (const result of results) if (result.error) console.log(`${result.system} FAILED: ${result.error} (its output is above)`);
}

function median(values: readonly number[]): number | undefined {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function findRow(results: readonly SystemResult[], system: string, phase: string): Row | undefined {
  return results.find((result) => result.system === system)?.rows.find((row) => row.phase === phase);
}

/** Median across rounds of one numeric field of one system's phase. */
function medianOf(rounds: readonly SystemResult[][], system: string, phase: string, field: keyof Row): number | undefined {
  return median(rounds.map((results) => findRow(results, system, phase)?.[field]).filter((v): v is number => typeof v === 'number'));
}

/** Median across rounds of the per-round ratio docket/baseline of ops/s. */
function ratioOf(rounds: readonly SystemResult[][], docketPhase: string, system: string, phase: string): number | undefined {
  return median(rounds.flatMap((results) => {
    const ours = findRow(results, 'docket', docketPhase)?.opsPerSec;
    const theirs = findRow(results, system, phase)?.opsPerSec;
    return ours === undefined || theirs === undefined ? [] : [ours / theirs];
  }));
}

interface Goal {
  readonly name: string;
  readonly value: number | undefined;
  readonly target: string;
  readonly met: boolean | undefined;
}

function goalsOf(rounds: readonly SystemResult[][]): Goal[] {
  const fill = 'fill (batch 100)';
  const goal = (name: string, value: number | undefined, target: string, test: (v: number) => boolean): Goal => ({ name, value, target, met: value === undefined ? undefined : test(value) });
  return [
    goal('fill: docket / rocksdb fillrandom', ratioOf(rounds, fill, 'rocksdb', 'fill (batch 1)'), '>= 0.5', (v) => v >= 0.5),
    goal('fill: docket / leveldb batch 1000', ratioOf(rounds, fill, 'leveldb', 'fill (batch 1000)'), '>= 3', (v) => v >= 3),
    goal('fill: docket / leveldb batch 100', ratioOf(rounds, fill, 'leveldb', 'fill (batch 100)'), '(info)', () => true),
    goal('random reads: docket / leveldb', ratioOf(rounds, 'random reads', 'leveldb', 'random reads'), '>= 1', (v) => v >= 1),
    goal('random reads: docket / rocksdb', ratioOf(rounds, 'random reads', 'rocksdb', 'random reads'), '(info)', () => true),
    goal('p99 put latency (rww), ms', medianOf(rounds, 'docket', 'rww: writes (batch 100)', 'p99Ms'), '< 20', (v) => v < 20),
    goal('p99 put latency (fill), ms', medianOf(rounds, 'docket', fill, 'p99Ms'), '(info)', () => true),
  ];
}

function medianRows(rounds: readonly SystemResult[][]): Row[] {
  const fields = ['opsPerSec', 'mbPerSec', 'p50Ms', 'p99Ms', 'maxMs'] as const;
  const seen = new Map<string, Row>();
  for (const row of rounds.flat().flatMap((result) => result.rows)) if (!seen.has(`${row.system}/${row.phase}`)) seen.set(`${row.system}/${row.phase}`, row);
  return [...seen.values()].map((row) => {
    const medians: Record<string, number> = {};
    for (const field of fields) {
      const value = medianOf(rounds, row.system, row.phase, field);
      if (value !== undefined) medians[field] = value;
    }
    return { system: row.system, phase: row.phase, opsPerSec: 0, ...medians };
  });
}

function systemMedians(rounds: readonly SystemResult[][]): { system: string; writeAmp: number | undefined; peakRssMb: number | undefined }[] {
  const systems = [...new Set(rounds.flat().map((result) => result.system))];
  return systems.map((system) => {
    const each = rounds.map((results) => results.find((result) => result.system === system));
    return {
      system,
      writeAmp: median(each.map((result) => result?.writeAmp).filter((v): v is number => v !== undefined)),
      peakRssMb: median(each.map((result) => result?.peakRssMb).filter((v): v is number => v !== undefined)),
    };
  });
}

function printSummary(config: Config, rounds: readonly SystemResult[][], goals: readonly Goal[]): void {
  console.log(`\n== summary: medians over ${rounds.length} round(s), ${fmt(config.keys)} keys ==`);
  printRows(medianRows(rounds));
  printTable(['system', 'write amp', 'peak RSS MB'], systemMedians(rounds).map((s) => [s.system, fmt(s.writeAmp, 2), fmt(s.peakRssMb)]));
  console.log('\nratios are medians of per-round ratios of ops/s');
  const verdict = (met: boolean | undefined): string => (met === undefined ? 'n/a' : met ? 'ok' : 'MISSED');
  printTable(['goal', '', 'value', 'target', 'met'], goals.map((g) => [g.name, '', fmt(g.value, 2), g.target, g.target === '(info)' ? '' : verdict(g.met)]));
}

async function parentMain(argv: readonly string[]): Promise<void> {
  const config = configFrom(argv, process.env);
  await rm(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  const dbBench = await ensureDbBench();
  console.log(`engine bench: ${fmt(config.keys)} keys x ${VALUE_BYTES} B values, ${config.rounds} round(s), ${fmt(config.reads)} reads, ${config.rwwSeconds} s read-while-writing; db_bench: ${dbBench ?? 'none'}`);
  const started = now();
  const rounds: SystemResult[][] = [];
  for (let round = 1; round <= config.rounds; round++) {
    const results = await runRound(config, dbBench, round);
    rounds.push(results);
    printRound(round, results);
  }
  const goals = goalsOf(rounds);
  printSummary(config, rounds, goals);
  const seconds = secondsSince(started);
  const summary = { date: new Date().toISOString(), node: process.version, config, seconds, medians: medianRows(rounds), systems: systemMedians(rounds), goals, rounds };
  await writeFile(path.join(WORK, 'engine-results.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`\ntook ${(seconds / 60).toFixed(1)} min; results in ${path.relative(process.cwd(), path.join(WORK, 'engine-results.json'))}`);
}

const argv = process.argv.slice(2);
const main = argv.includes('--child') ? childMain(argv) : parentMain(argv);
main.catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
