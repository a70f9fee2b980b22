// The durability benchmark (`npm run bench:durability [-- --docs N --rounds R --recovery-mb M]`).
//
// Loads Reddit-comment documents (bench/reddit.ts, seeded) through the document layer, no HTTP,
// with 32 concurrent writers, under four configurations side by side in one run:
//   passive | double  ×  immediate | periodic (100 ms)
// and reports documents/s and what the engine wrote (flush + compaction + its own WAL). Each
// configuration runs in its own child process on a fresh data directory; rounds alternate the
// order, and the summary quotes medians and per-round ratios (the machine is noisy).
//
// Recovery: a child loads with memtables large enough that nothing is flushed until the binlog
// holds --recovery-mb MB, then is SIGKILLed; a fresh process reopens the store and reports how
// long replay took, in MB/s and as a multiple of the load rate.
//
// Data lives in bench/.work/durability (gitignored); results in bench/.work/durability-results.json.

import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DocumentStore, type Durability, type StoreOptions } from '../src/store.js';
import { RedditGenerator } from './reddit.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', '.work', 'durability');
const COLLECTION = 'comments';
const SEED = 20261121;

interface Config {
  readonly name: string;
  readonly durability: Durability;
  readonly sync: StoreOptions['sync'];
}

const CONFIGS: readonly Config[] = [
  { name: 'passive-immediate', durability: 'passive', sync: { mode: 'immediate' } },
  { name: 'double-immediate', durability: 'double', sync: { mode: 'immediate' } },
  { name: 'passive-periodic', durability: 'passive', sync: { mode: 'periodic', intervalMs: 100 } },
  { name: 'double-periodic', durability: 'double', sync: { mode: 'periodic', intervalMs: 100 } },
];

interface LoadResult {
  readonly config: string;
  readonly docs: number;
  readonly seconds: number;
  readonly docsPerSecond: number;
  readonly inputMb: number;
  readonly binlogMb: number;
  readonly engineMb: { flush: number; compaction: number; wal: number; total: number };
  readonly binlogSyncs: number;
  readonly peakRssMb: number;
}

function argument(argv: readonly string[], name: string, fallback: number): number {
  const index = argv.indexOf(name);
  const value = index >= 0 ? Number(argv[index + 1]) : Number(process.env[`BENCH_${name.slice(2).toUpperCase().replace(/-/g, '_')}`] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

const MB = 1024 * 1024;
const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

// ---- children ----

/** Loads `docs` documents with `writers` concurrent writers; the store stays open for the caller. */
async function load(store: DocumentStore, docs: number, writers: number, until?: () => boolean): Promise<{ loaded: number; seconds: number; inputBytes: number }> {
  const generator = new RedditGenerator(SEED);
  let issued = 0;
  let inputBytes = 0;
  const started = process.hrtime.bigint();
  const writer = async (): Promise<void> => {
    while (issued < docs && !until?.()) {
      issued++;
      const doc = generator.next();
      inputBytes += JSON.stringify(doc).length;
      await store.put(COLLECTION, doc.id, doc);
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  return { loaded: issued, seconds: Number(process.hrtime.bigint() - started) / 1e9, inputBytes };
}

async function childLoad(config: Config, dir: string, docs: number, writers: number): Promise<LoadResult> {
  const store = await DocumentStore.open({ directory: dir, durability: config.durability, sync: config.sync });
  await store.createCollection(COLLECTION);
  const { loaded, seconds, inputBytes } = await load(store, docs, writers);
  const { engine, binlog } = store.stats();
  await store.close();
  const written = engine.bytesWritten;
  return {
    config: config.name,
    docs: loaded,
    seconds,
    docsPerSecond: loaded / seconds,
    inputMb: inputBytes / MB,
    binlogMb: binlog.bytesWritten / MB,
    engineMb: { flush: written.flush / MB, compaction: written.compaction / MB, wal: written.wal / MB, total: (written.flush + written.compaction + written.wal) / MB },
    binlogSyncs: binlog.syncs,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
  };
}

/** Loads until the binlog holds `targetMb`, with nothing flushed, then waits to be killed. */
/**
 * Nothing is flushed before the crash, so recovery replays the whole binlog: memtables of 3 GiB
 * and a write buffer (the store-wide memtable budget) of 16 GiB, against 16 MiB and 256 MiB by
 * default.
 */
const RECOVERY_ENGINE = { memtableSizeBytes: 3 * 1024 * MB, writeBufferBytes: 16 * 1024 * MB, autoCompaction: false };

async function childCrashLoad(dir: string, targetMb: number, writers: number): Promise<never> {
  const store = await DocumentStore.open({ directory: dir, engine: RECOVERY_ENGINE, epochCheckIntervalMs: 0 });
  await store.createCollection(COLLECTION);
  const full = () => store.stats().binlog.bytesWritten >= targetMb * MB;
  const { loaded, seconds } = await load(store, Number.MAX_SAFE_INTEGER, writers, full);
  const { binlog, engine } = store.stats();
  process.stdout.write(JSON.stringify({ ready: true, docs: loaded, seconds, binlogMb: binlog.bytesWritten / MB, flushes: engine.flushes }) + '\n');
  return new Promise<never>(() => setInterval(() => undefined, 1 << 30));
}

async function childReopen(dir: string): Promise<unknown> {
  const started = process.hrtime.bigint();
  const store = await DocumentStore.open({ directory: dir, engine: RECOVERY_ENGINE, epochCheckIntervalMs: 0 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const replay = store.stats().recovery.replay;
  await store.close();
  return { seconds, replay, peakRssMb: process.resourceUsage().maxRSS / 1024 };
}

// ---- the parent ----

function spawnChild(args: string[], onLine?: (line: string, kill: () => void) => void): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=16384', fileURLToPath(import.meta.url), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let last: unknown;
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        last = JSON.parse(line);
        onLine?.(line, () => child.kill('SIGKILL'));
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 || signal === 'SIGKILL' ? resolve(last) : reject(new Error(`child ${args.join(' ')} exited with ${code ?? signal}`))));
  });
}

async function runLoads(docs: number, writers: number, rounds: number): Promise<LoadResult[][]> {
  const results: LoadResult[][] = [];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? CONFIGS : [...CONFIGS].reverse();
    const row: LoadResult[] = [];
    for (const config of order) {
      const dir = path.join(ROOT, config.name);
      await rm(dir, { recursive: true, force: true });
      process.stderr.write(`round ${round + 1}/${rounds}: ${config.name}, ${docs} documents, ${writers} writers\n`);
      const result = (await spawnChild(['--child', 'load', '--config', config.name, '--dir', dir, '--docs', String(docs), '--writers', String(writers)])) as LoadResult;
      process.stderr.write(`  ${result.docsPerSecond.toFixed(0)} docs/s, engine wrote ${result.engineMb.total.toFixed(0)} MB, binlog ${result.binlogMb.toFixed(0)} MB, peak RSS ${result.peakRssMb.toFixed(0)} MB\n`);
      row.push(result);
      await rm(dir, { recursive: true, force: true });
    }
    results.push(CONFIGS.map((config) => row.find((r) => r.config === config.name)!));
  }
  return results;
}

async function runRecovery(targetMb: number, writers: number): Promise<unknown> {
  const dir = path.join(ROOT, 'recovery');
  await rm(dir, { recursive: true, force: true });
  process.stderr.write(`recovery: loading until the binlog holds ${targetMb} MB, then SIGKILL\n`);
  const loaded = (await spawnChild(['--child', 'crash-load', '--dir', dir, '--mb', String(targetMb), '--writers', String(writers)], (line, kill) => {
    if ((JSON.parse(line) as { ready?: boolean }).ready) kill();
  })) as { docs: number; seconds: number; binlogMb: number; flushes: number };
  const reopened = (await spawnChild(['--child', 'reopen', '--dir', dir])) as { seconds: number; replay: { bytes: number; records: number } };
  await rm(dir, { recursive: true, force: true });
  const loadMbPerSecond = loaded.binlogMb / loaded.seconds;
  const replayMbPerSecond = reopened.replay.bytes / MB / reopened.seconds;
  return { loaded, reopened, loadMbPerSecond, replayMbPerSecond, replayToLoad: replayMbPerSecond / loadMbPerSecond };
}

function summarize(results: LoadResult[][]): Record<string, unknown> {
  const by = (name: string) => results.map((row) => row.find((r) => r.config === name)!);
  const ratio = (a: string, b: string, f: (r: LoadResult) => number) => median(results.map((_, i) => f(by(a)[i]!) / f(by(b)[i]!)));
  const perConfig = Object.fromEntries(CONFIGS.map(({ name }) => [name, { docsPerSecond: median(by(name).map((r) => r.docsPerSecond)), engineMb: median(by(name).map((r) => r.engineMb.total)), peakRssMb: median(by(name).map((r) => r.peakRssMb)) }]));
  return {
    perConfig,
    passiveOverDoubleThroughput: { immediate: ratio('passive-immediate', 'double-immediate', (r) => r.docsPerSecond), periodic: ratio('passive-periodic', 'double-periodic', (r) => r.docsPerSecond) },
    passiveOverDoubleEngineIo: { immediate: ratio('passive-immediate', 'double-immediate', (r) => r.engineMb.total), periodic: ratio('passive-periodic', 'double-periodic', (r) => r.engineMb.total) },
    immediateOverPeriodic: { passive: ratio('passive-immediate', 'passive-periodic', (r) => r.docsPerSecond), double: ratio('double-immediate', 'double-periodic', (r) => r.docsPerSecond) },
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const child = argv.indexOf('--child') >= 0 ? argv[argv.indexOf('--child') + 1] : undefined;
  const writers = argument(argv, '--writers', 32);
  const dirIndex = argv.indexOf('--dir');
  const dir = dirIndex >= 0 ? argv[dirIndex + 1]! : '';
  if (child === 'load') {
    const config = CONFIGS.find((c) => c.name === argv[argv.indexOf('--config') + 1])!;
    process.stdout.write(JSON.stringify(await childLoad(config, dir, argument(argv, '--docs', 1_000_000), writers)) + '\n');
    return;
  }
  if (child === 'crash-load') return childCrashLoad(dir, argument(argv, '--mb', 1024), writers);
  if (child === 'reopen') {
    process.stdout.write(JSON.stringify(await childReopen(dir)) + '\n');
    return;
  }
  await mkdir(ROOT, { recursive: true });
  const loads = await runLoads(argument(argv, '--docs', 1_000_000), writers, argument(argv, '--rounds', 1));
  const recovery = argv.includes('--no-recovery') ? undefined : await runRecovery(argument(argv, '--recovery-mb', 1024), writers);
  const summary = { date: new Date().toISOString(), writers, summary: summarize(loads), recovery, loads };
  await writeFile(path.join(ROOT, '..', 'durability-results.json'), JSON.stringify(summary, null, 2));
  process.stdout.write(JSON.stringify({ summary: summary.summary, recovery }, null, 2) + '\n');
}

await main(process.argv.slice(2));
