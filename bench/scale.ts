// The scale benchmark (`npm run bench:scale [-- --documents N --step S --out F]`).
//
// Loads N generated Reddit comments (bench/reddit.ts, seeded) into one `docket serve --sync
// immediate` in steps of S documents. Each step pipes `node dist/bench/reddit.js --count S
// --seed SEED --start FIRST` into `docket load - --json`, so a step's documents/s is the
// loader's own figure. The generator can only reach document FIRST by generating and dropping
// the ones before it (reddit.ts says why), so each step's loader is started only once the
// generator has produced its first bytes: that wait, which grows with FIRST, is reported apart
// and is in no rate. The bytes pass through this process on their way (to see each step's first
// and last line); that relay costs little next to the load.
//
// Measured: documents/s per step and the last step's rate ÷ the first's (goal ≥ 0.8); the
// server's VmRSS sampled every second and its VmHWM (goal ≤ 1 GiB); bytes on disk of the binlog
// and the engine (allocated blocks, and apparent sizes) against the input NDJSON bytes; write
// amplification from GET /stats at the end of the load:
//   (binlog bytes written + engine WAL + flush + compaction bytes written) ÷ input NDJSON bytes,
// preallocated binlog zeros not counted (reported apart); and the time to reopen: SIGTERM, start
// again, time until /healthz is 200, then GET each step's first and last document and compare
// them with the lines that were loaded.
//
// The data directory lives in --work-dir (deleted at exit, however it comes; 10 million
// documents need about 12 GB of input and several times that on disk); results go to --out
// (default bench/.work/scale-results.json).

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import type { LoadSummary } from '../loader/command.js';
import { CLI, environment, fmt, HOST, integerOption, markdownTable, MB, memoryKb, parseBenchArgs, REDDIT_CLI, ROOT, runBenchmark, type Server, startDocket, track } from './common.js';

// ---- configuration ----

const COLLECTION = 'comments';
const SEED_DEFAULT = 20261211;
const RSS_SAMPLE_INTERVAL_MS = 1000;
const OUTPUT_TAIL_CHARS_MAX = 16 * 1024;
/** The relay keeps this much of a step's last bytes to find its last line (a line is at most ~12 KB). */
const TAIL_BYTES_KEPT = 256 * 1024;
const GOAL_RATE_RATIO_MIN = 0.8;
const GOAL_PEAK_RSS_BYTES_MAX = 1024 * MB;

interface Options {
  readonly documents: number;
  readonly step: number;
  readonly seed: number;
  readonly workDir: string;
  readonly out: string;
}

const USAGE = `Usage: node dist/bench/scale.js [options]
  --documents N   comments loaded in all (default 10000000)
  --step N        comments per step, each its own loader run (default 1000000)
  --seed S        the generator's seed (default ${SEED_DEFAULT})
  --work-dir DIR  the server's data directory goes here; deleted at exit (default ${path.join(os.tmpdir(), 'docket-scale-<pid>')})
  --out FILE      JSON results (default bench/.work/scale-results.json)
A quick check: --documents 200000 --step 50000
`;

function optionsFrom(argv: string[]): Options {
  const values = parseBenchArgs(argv, USAGE, {
    documents: { type: 'string', default: '10000000' },
    step: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: String(SEED_DEFAULT) },
    'work-dir': { type: 'string', default: path.join(os.tmpdir(), `docket-scale-${process.pid}`) },
    out: { type: 'string', default: path.join(ROOT, 'bench', '.work', 'scale-results.json') },
  });
  const integer = integerOption;
  const documents = integer('documents', values.documents, 1);
  const step = Math.min(documents, integer('step', values.step, 1));
  return { documents, step, seed: integer('seed', values.seed, 0), workDir: path.resolve(values['work-dir']), out: path.resolve(values.out) };
}

// ---- the server's memory ----

/** Samples a process's VmRSS every RSS_SAMPLE_INTERVAL_MS; VmHWM gives the peak between samples. */
class MemorySampler {
  readonly samples: [seconds: number, rssMb: number][] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();
  private windowPeakKb = 0;
  hwmKb = 0;

  constructor(private readonly pid: number | undefined) {
    this.timer = setInterval(() => this.sample(), RSS_SAMPLE_INTERVAL_MS);
    this.sample();
  }

  private sample(): void {
    const memory = memoryKb(this.pid);
    if (!memory) return;
    this.samples.push([(Date.now() - this.started) / 1000, memory.rssKb / 1024]);
    this.windowPeakKb = Math.max(this.windowPeakKb, memory.rssKb);
    this.hwmKb = Math.max(this.hwmKb, memory.hwmKb);
  }

  /** The highest VmRSS sampled since the last call, in MiB. */
  takeWindowPeakMb(): number {
    this.sample();
    const peak = this.windowPeakKb / 1024;
    this.windowPeakKb = 0;
    return peak;
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

// ---- bytes on disk ----

interface DiskUsage {
  /** Allocated blocks (what du reports). */
  readonly allocatedBytes: number;
  /** File sizes (du --apparent-size); preallocated binlog segments count whole. */
  readonly apparentBytes: number;
  readonly files: number;
}

function diskUsage(dir: string): DiskUsage {
  let allocatedBytes = 0;
  let apparentBytes = 0;
  let files = 0;
  const walk = (at: string): void => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const stat = statSync(full);
        allocatedBytes += stat.blocks * 512;
        apparentBytes += stat.size;
        files++;
      }
    }
  };
  try {
    walk(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return { allocatedBytes, apparentBytes, files };
}

function dataDirUsage(dataDir: string): { binlog: DiskUsage; engine: DiskUsage; total: DiskUsage } {
  return { binlog: diskUsage(path.join(dataDir, 'binlog')), engine: diskUsage(path.join(dataDir, 'engine')), total: diskUsage(dataDir) };
}

// ---- one step: generator | relay | loader ----

interface Step {
  readonly step: number;
  readonly first: number;
  readonly documents: number;
  /** How long the generator took to reach `first` (generating and dropping), before the loader started. */
  readonly generatorSkipSeconds: number;
  readonly loader: LoadSummary;
  readonly documentsPerSecond: number;
  /** The loader's bytes ÷ 2^20 ÷ its seconds. */
  readonly megabytesPerSecond: number;
  /** The highest VmRSS sampled during the step, and VmHWM at its end, in MiB. */
  readonly serverRssPeakMb: number;
  readonly serverHwmMb: number;
  readonly dataDirAllocatedBytes: number;
  readonly firstLine: string;
  readonly lastLine: string;
}

function childOutput(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => (text = (text + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS_MAX)));
  return () => text.trim().split('\n').slice(-5).join(' / ');
}

function exitOf(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode ?? 'unknown');
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
}

/**
 * Starts the generator for documents [first, first + count) and waits until its first bytes can
 * be read, without reading them ('readable' leaves them in the stream for the relay).
 */
async function startGenerator(first: number, count: number, options: Options): Promise<{ generator: ChildProcess; skipSeconds: number }> {
  const started = process.hrtime.bigint();
  const generator = track(spawn(process.execPath, [REDDIT_CLI, '--count', String(count), '--seed', String(options.seed), '--start', String(first)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const stderr = childOutput(generator);
  await Promise.race([
    once(generator.stdout!, 'readable'),
    exitOf(generator).then((code) => Promise.reject(new Error(`the generator exited (${code}) before writing: ${stderr()}`))),
  ]);
  return { generator, skipSeconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

function drainedOrClosed(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Copies the generator's output to the loader's input, keeping the first line and the last bytes. */
async function relay(generator: ChildProcess, loader: ChildProcess): Promise<{ firstLine: string; lastLine: string }> {
  const input = loader.stdin!;
  input.on('error', () => undefined); // A loader that dies early is reported by its exit status.
  let head = Buffer.alloc(0);
  let tail = Buffer.alloc(0);
  for await (const chunk of generator.stdout! as AsyncIterable<Buffer>) {
    if (head.indexOf(10) < 0) head = Buffer.concat([head, chunk]);
    tail = Buffer.concat([tail, chunk]);
    if (tail.length > TAIL_BYTES_KEPT) tail = tail.subarray(-TAIL_BYTES_KEPT);
    if (!input.write(chunk)) await drainedOrClosed(input);
  }
  input.end();
  const text = tail.toString('utf8').trimEnd();
  return { firstLine: head.subarray(0, head.indexOf(10)).toString('utf8'), lastLine: text.slice(text.lastIndexOf('\n') + 1) };
}

async function runStep(index: number, server: Server, sampler: MemorySampler, dataDir: string, options: Options): Promise<Step> {
  const first = index * options.step;
  const count = Math.min(options.step, options.documents - first);
  const { generator, skipSeconds } = await startGenerator(first, count, options);
  const checkpoint = path.join(options.workDir, `load-step-${index}.checkpoint.json`);
  const args = [CLI, 'load', '-', '--collection', COLLECTION, '--url', `http://${HOST}:${server.port}`, '--checkpoint', checkpoint, '--quiet', '--json'];
  const loader = track(spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] }));
  const loaderStderr = childOutput(loader);
  let stdout = '';
  loader.stdout!.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS_MAX)));
  const [lines, loaderExit, generatorExit] = await Promise.all([relay(generator, loader), exitOf(loader), exitOf(generator)]);
  const last = stdout.trim().split('\n').pop() ?? '';
  if (generatorExit !== 0) throw new Error(`step ${index + 1}: the generator exited with ${generatorExit}`);
  if (loaderExit !== 0 || !last.startsWith('{')) throw new Error(`step ${index + 1}: docket load exited with ${loaderExit}: ${loaderStderr()}`);
  const loaded = JSON.parse(last) as LoadSummary;
  if (loaded.stored !== count || loaded.failed !== 0) throw new Error(`step ${index + 1}: the loader stored ${loaded.stored} and failed ${loaded.failed} of ${count} lines`);
  await rm(checkpoint, { force: true });
  return {
    step: index + 1,
    first,
    documents: count,
    generatorSkipSeconds: skipSeconds,
    loader: loaded,
    documentsPerSecond: loaded.documentsPerSecond,
    megabytesPerSecond: loaded.bytes / MB / loaded.seconds,
    serverRssPeakMb: sampler.takeWindowPeakMb(),
    serverHwmMb: sampler.hwmKb / 1024,
    dataDirAllocatedBytes: dataDirUsage(dataDir).total.allocatedBytes,
    ...lines,
  };
}

// ---- after the load: stats, reopen, read back ----

interface Stats {
  readonly binlog: { bytesWritten: number; bytesPreallocated: number; syncs: number; groups: number; records: number };
  readonly engine: { bytesWritten: { user: number; wal: number; flush: number; compaction: number }; writeAmplification: number; flushes: number; compactions: number; stallMs: number };
}

async function getJson<T>(port: number, urlPath: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`http://${HOST}:${port}${urlPath}`);
  return { status: response.status, body: (await response.json()) as T };
}

interface Reopen {
  readonly stopSeconds: number;
  /** From spawning the server to /healthz answering 200. */
  readonly openSeconds: number;
  readonly rssAfterOpenMb: number;
  readonly checked: { id: string; index: number; status: number; equal: boolean }[];
  readonly stats: unknown;
}

async function reopen(server: Server, dataDir: string, steps: readonly Step[]): Promise<Reopen> {
  let started = process.hrtime.bigint();
  await server.stop();
  const stopSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  started = process.hrtime.bigint();
  const reopened = await startDocket('scale (reopened)', dataDir, 'immediate');
  try {
    const openSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const rssAfterOpenMb = (memoryKb(reopened.child.pid)?.rssKb ?? Number.NaN) / 1024;
    const wanted = steps.flatMap((step) => [
      { index: step.first, line: step.firstLine },
      { index: step.first + step.documents - 1, line: step.lastLine },
    ]);
    const checked = [];
    for (const { index, line } of wanted) {
      const expected = JSON.parse(line) as { id: string };
      const read = await getJson<unknown>(reopened.port, `/collections/${COLLECTION}/docs/${encodeURIComponent(expected.id)}`);
      checked.push({ id: expected.id, index, status: read.status, equal: read.status === 200 && isDeepStrictEqual(read.body, expected) });
    }
    const stats = (await getJson<unknown>(reopened.port, '/stats')).body;
    return { stopSeconds, openSeconds, rssAfterOpenMb, checked, stats };
  } finally {
    await reopened.stop();
  }
}

// ---- reporting ----

interface Summary {
  readonly inputBytes: number;
  readonly firstRate: number;
  readonly lastRate: number;
  readonly lastOverFirst: number;
  readonly peakRssMb: number;
  readonly writeAmplification: number;
  readonly engineWriteAmplification: number;
}

function summarize(steps: readonly Step[], stats: Stats, peakRssMb: number): Summary {
  const inputBytes = steps.reduce((sum, step) => sum + step.loader.bytes, 0);
  const written = stats.engine.bytesWritten;
  const firstRate = steps[0]!.documentsPerSecond;
  const lastRate = steps[steps.length - 1]!.documentsPerSecond;
  return {
    inputBytes,
    firstRate,
    lastRate,
    lastOverFirst: lastRate / firstRate,
    peakRssMb,
    writeAmplification: (stats.binlog.bytesWritten + written.wal + written.flush + written.compaction) / inputBytes,
    engineWriteAmplification: (written.wal + written.flush + written.compaction) / inputBytes,
  };
}

const mb = (bytes: number): string => fmt(bytes / MB);

function report(steps: readonly Step[], summary: Summary, stats: Stats, disk: ReturnType<typeof dataDirUsage>, reopened: Reopen): void {
  console.log(`\n### Scale: ${fmt(steps.reduce((sum, s) => sum + s.documents, 0))} comments in ${steps.length} steps, --sync immediate\n`);
  console.log(markdownTable(
    ['step', 'documents', 'docs/s', 'MB/s', 'load s', 'generator skip s', 'server RSS peak MB', 'data dir MB'],
    steps.map((s) => [String(s.step), `${fmt(s.first)}–${fmt(s.first + s.documents - 1)}`, fmt(s.documentsPerSecond), fmt(s.megabytesPerSecond, 2), fmt(s.loader.seconds, 1), fmt(s.generatorSkipSeconds, 1), fmt(s.serverRssPeakMb), mb(s.dataDirAllocatedBytes)]),
    2,
  ));
  const written = stats.engine.bytesWritten;
  const found = reopened.checked.filter((c) => c.equal).length;
  const ok = (met: boolean): string => (met ? 'met' : '**missed**');
  console.log('');
  console.log(markdownTable(['measure', 'value', 'goal'], [
    ['last step ÷ first step, docs/s', `${fmt(summary.lastOverFirst, 2)} (${fmt(summary.lastRate)} / ${fmt(summary.firstRate)})`, `≥ ${GOAL_RATE_RATIO_MIN}: ${ok(summary.lastOverFirst >= GOAL_RATE_RATIO_MIN)}`],
    ['server peak RSS (VmHWM)', `${fmt(summary.peakRssMb)} MB`, `≤ 1,024 MB: ${ok(summary.peakRssMb * MB <= GOAL_PEAK_RSS_BYTES_MAX)}`],
    ['input NDJSON', `${mb(summary.inputBytes)} MB`, ''],
    ['on disk after the stop: binlog', `${mb(disk.binlog.allocatedBytes)} MB (apparent ${mb(disk.binlog.apparentBytes)} MB)`, ''],
    ['on disk after the stop: engine', `${mb(disk.engine.allocatedBytes)} MB (${fmt(disk.engine.files)} files)`, ''],
    ['on disk after the stop: total ÷ input', `${mb(disk.total.allocatedBytes)} MB, ${fmt(disk.total.allocatedBytes / summary.inputBytes, 2)}×`, ''],
    ['written at the end of the load: binlog', `${mb(stats.binlog.bytesWritten)} MB (+ ${mb(stats.binlog.bytesPreallocated)} MB preallocated zeros)`, ''],
    ['written at the end of the load: engine WAL / flush / compaction', `${mb(written.wal)} / ${mb(written.flush)} / ${mb(written.compaction)} MB`, ''],
    ['write amplification (binlog + engine) ÷ input', `${fmt(summary.writeAmplification, 2)}× (engine alone ${fmt(summary.engineWriteAmplification, 2)}×)`, ''],
    ['stop (SIGTERM to exit)', `${fmt(reopened.stopSeconds, 2)} s`, ''],
    ['reopen (spawn to /healthz 200)', `${fmt(reopened.openSeconds, 2)} s, RSS then ${fmt(reopened.rssAfterOpenMb)} MB`, ''],
    ['documents read back after reopening', `${found} of ${reopened.checked.length} (each step's first and last)`, ok(found === reopened.checked.length)],
  ], 1));
}

// ---- main ----

async function parentMain(options: Options): Promise<boolean> {
  await rm(options.workDir, { recursive: true, force: true });
  await mkdir(options.workDir, { recursive: true });
  const dataDir = path.join(options.workDir, 'data');
  const started = process.hrtime.bigint();
  const loadBefore = os.loadavg();
  const stepCount = Math.ceil(options.documents / options.step);
  console.log(`scale bench: ${fmt(options.documents)} documents in ${stepCount} steps of ${fmt(options.step)}, seed ${options.seed}, --sync immediate; ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  const server = await startDocket('scale', dataDir, 'immediate');
  const sampler = new MemorySampler(server.child.pid);
  const steps: Step[] = [];
  let stats: Stats;
  try {
    for (let index = 0; index < stepCount; index++) {
      process.stderr.write(`step ${index + 1}/${stepCount} ...`);
      const step = await runStep(index, server, sampler, dataDir, options);
      process.stderr.write(` ${fmt(step.documentsPerSecond)} docs/s, ${fmt(step.megabytesPerSecond, 2)} MB/s (generator skip ${step.generatorSkipSeconds.toFixed(1)} s), RSS peak ${fmt(step.serverRssPeakMb)} MB, data dir ${mb(step.dataDirAllocatedBytes)} MB\n`);
      steps.push(step);
    }
    stats = (await getJson<Stats>(server.port, '/stats')).body;
  } finally {
    sampler.stop();
  }
  const diskAtEnd = dataDirUsage(dataDir);
  process.stderr.write('stopping, reopening, reading back ...');
  const reopened = await reopen(server, dataDir, steps);
  process.stderr.write(` open in ${reopened.openSeconds.toFixed(2)} s\n`);
  const disk = dataDirUsage(dataDir);
  const summary = summarize(steps, stats, sampler.hwmKb / 1024);
  report(steps, summary, stats, disk, reopened);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const results = {
    ...environment(loadBefore),
    options,
    seconds,
    summary,
    steps: steps.map(({ firstLine, lastLine, ...step }) => ({ ...step, firstId: (JSON.parse(firstLine) as { id: string }).id, lastId: (JSON.parse(lastLine) as { id: string }).id })),
    disk: { atEndOfLoad: diskAtEnd, afterStop: disk },
    statsAtEndOfLoad: stats,
    reopen: reopened,
    rssSamples: sampler.samples,
  };
  await mkdir(path.dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\ntook ${(seconds / 60).toFixed(1)} min; results in ${path.relative(process.cwd(), options.out)}`);
  return reopened.checked.every((c) => c.equal);
}

await runBenchmark('bench:scale', USAGE, () => optionsFrom(process.argv.slice(2)), parentMain);
