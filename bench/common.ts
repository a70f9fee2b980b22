// Helpers the HTTP-level benchmarks share (bench/http.ts, bench/peers.ts, bench/query.ts,
// bench/scale.ts): where the built CLI is, child processes that are killed however the benchmark
// ends (and ones run to completion), a Docket server started on a free loopback port, the
// generated dataset as NDJSON and `docket load` of it, memory read from /proc, and medians and
// markdown tables.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LoadSummary } from '../loader/command.js';
import { RedditGenerator, type RedditComment } from './reddit.js';

// ---- configuration ----

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, HERE.split(path.sep).includes('dist') ? '../..' : '..');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
export const REDDIT_CLI = path.join(ROOT, 'dist', 'bench', 'reddit.js');
/** Every server a benchmark starts listens here, and only here. */
export const HOST = '127.0.0.1';
export const READY_TIMEOUT_MS = 120_000;
export const STOP_TIMEOUT_MS = 60_000;
/** MB in every benchmark figure is 2^20 bytes. */
export const MB = 1024 * 1024;
const EXIT_WAIT_MS = 5_000;
const PROCESS_OUTPUT_CHARS_MAX = 64 * 1024;

// ---- child processes that do not outlive the benchmark ----

/** Children still running, each with the signal that ends it at once when the benchmark exits. */
const live = new Map<ChildProcess, NodeJS.Signals>();

/** Registers a child so that killLiveChildren() ends it; it is forgotten when it exits. */
export function track(child: ChildProcess, exitSignal: NodeJS.Signals = 'SIGKILL'): ChildProcess {
  live.set(child, exitSignal);
  child.once('exit', () => live.delete(child));
  return child;
}

/**
 * Signals every child still running and waits (synchronously, at most EXIT_WAIT_MS) until each
 * has gone, so that the caller can delete their directories next. Safe to call from an 'exit'
 * handler, where no event loop runs: an unreaped child counts as gone once it is a zombie.
 */
export function killLiveChildren(): void {
  const pids: number[] = [];
  for (const [child, signal] of live) {
    child.kill(signal);
    if (child.pid !== undefined) pids.push(child.pid);
  }
  const deadline = Date.now() + EXIT_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  while (pids.some(isRunning) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 20);
}

function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** A process's resident set now (VmRSS) and at its peak so far (VmHWM), in KiB; undefined once it has gone. */
export function memoryKb(pid: number | undefined): { rssKb: number; hwmKb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+) kB/.exec(status);
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
    return rss && hwm ? { rssKb: Number(rss[1]), hwmKb: Number(hwm[1]) } : undefined;
  } catch {
    return undefined;
  }
}

/** A server in a child process: its port, its recent output, and how to stop it. */
export class Server {
  private readonly tail: string[] = [];
  readonly exited: Promise<number | string>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    public port = 0,
    exitSignal: NodeJS.Signals = 'SIGKILL',
  ) {
    track(child, exitSignal);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
    const keep = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') this.tail.push(line);
      if (this.tail.length > 40) this.tail.splice(0, this.tail.length - 40);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Its last lines of output (pino JSON at warn and above), each cut to 300 characters. */
  output(): string {
    if (this.tail.length === 0) return '    (no output)';
    return this.tail.slice(-12).map((line) => `    ${line.length > 300 ? `${line.slice(0, 300)}…` : line}`).join('\n');
  }

  /** The child's peak resident set so far (VmHWM), in MiB; NaN once it has gone. */
  peakRssMb(): number {
    const memory = memoryKb(this.child.pid);
    return memory ? memory.hwmKb / 1024 : Number.NaN;
  }

  /** `signal` (SIGTERM: a clean shutdown), then SIGKILL if it takes longer than `timeoutMs`. */
  async stop(timeoutMs = STOP_TIMEOUT_MS, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Polls `http://HOST:port{urlPath}` until it answers 200; fails if the server exits or READY_TIMEOUT_MS passes. */
export async function waitUntilReady(server: Server, urlPath = '/healthz'): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (!server.running) throw new Error(`${server.name}: the server exited (${await server.exited}) before it was ready:\n${server.output()}`);
    if (Date.now() > deadline) {
      await server.stop(1000);
      throw new Error(`${server.name}: not ready after ${READY_TIMEOUT_MS / 1000} s:\n${server.output()}`);
    }
    const status = await fetch(`http://${HOST}:${server.port}${urlPath}`).then(
      async (response) => (await response.arrayBuffer(), response.status),
      () => 0,
    );
    if (status === 200) return;
    await sleep(50);
  }
}

/** `docket serve` on a free port; resolves once /healthz says 200 (it answers 503 while the store recovers). */
export async function startDocket(name: string, dataDir: string, sync: 'immediate' | 'periodic', syncIntervalMs?: number): Promise<Server> {
  const port = await freePort();
  const args = [CLI, 'serve', '--host', HOST, '--port', String(port), '--data-dir', dataDir, '--sync', sync, '--log-level', 'warn'];
  if (sync === 'periodic' && syncIntervalMs !== undefined) args.push('--sync-interval-ms', String(syncIntervalMs));
  const server = new Server(name, spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }), port);
  await waitUntilReady(server);
  return server;
}

// ---- child processes run to completion ----

export interface Finished {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs a command to its end, keeping the last PROCESS_OUTPUT_CHARS_MAX characters of each output. */
export function run(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = track(spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options }));
    const outputs = { stdout: '', stderr: '' };
    const keep = (which: 'stdout' | 'stderr') => (chunk: Buffer): void => {
      outputs[which] = (outputs[which] + chunk.toString('utf8')).slice(-PROCESS_OUTPUT_CHARS_MAX);
    };
    child.stdout?.on('data', keep('stdout'));
    child.stderr?.on('data', keep('stderr'));
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', ...outputs, seconds: Number(process.hrtime.bigint() - started) / 1e9 }));
  });
}

/** The last lines of a failed command's output, for an error message. */
export function lastLines(finished: Finished, count = 5): string {
  return `${finished.stderr}\n${finished.stdout}`.trim().split('\n').slice(-count).join(' / ');
}

export function requireSuccess(what: string, finished: Finished): Finished {
  if (finished.code !== 0) throw new Error(`${what} failed (exit ${finished.code}): ${lastLines(finished)}`);
  return finished;
}

// ---- the dataset: generated Reddit comments as NDJSON ----

export interface Dataset {
  readonly file: string;
  readonly lines: number;
  readonly bytes: number;
}

/**
 * Writes `documents` generated comments of `seed` (bench/reddit.ts) as NDJSON to `file`; each
 * comment is shown to `look` first (a benchmark picks its query values there).
 */
export async function writeDataset(file: string, seed: number, documents: number, look?: (comment: RedditComment, index: number) => void): Promise<Dataset> {
  const generator = new RedditGenerator(seed);
  const out = createWriteStream(file);
  let bytes = 0;
  const LINES_PER_WRITE = 1000;
  for (let first = 0; first < documents; first += LINES_PER_WRITE) {
    let chunk = '';
    for (let i = first; i < Math.min(documents, first + LINES_PER_WRITE); i++) {
      const comment = generator.next();
      look?.(comment, i);
      chunk += `${JSON.stringify(comment)}\n`;
    }
    bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return { file, lines: documents, bytes };
}

/** The dataset's lines in groups of `size`, read back from the file (each line without its newline). */
export async function* batchesOf(file: string, size: number): AsyncGenerator<string[]> {
  let batch: string[] = [];
  let partial = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1024 * 1024 })) {
    const lines = (partial + (chunk as string)).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (line === '') continue;
      batch.push(line);
      if (batch.length === size) {
        yield batch;
        batch = [];
      }
    }
  }
  if (partial !== '') batch.push(partial);
  if (batch.length > 0) yield batch;
}

export const idOf = (line: string): string => (JSON.parse(line) as { id: string }).id;

/** `docket load FILE --json` against a server, with its defaults; its last stdout line is its report. */
export async function runLoader(port: number, file: string, collection: string, checkpoint: string): Promise<{ report: LoadSummary; processSeconds: number }> {
  const args = [CLI, 'load', file, '--collection', collection, '--url', `http://${HOST}:${port}`, '--checkpoint', checkpoint, '--quiet', '--json'];
  const finished = await run(process.execPath, args);
  const last = finished.stdout.trim().split('\n').pop() ?? '';
  if (finished.code !== 0 || !last.startsWith('{')) throw new Error(`docket load failed (exit ${finished.code}): ${lastLines(finished)}`);
  return { report: JSON.parse(last) as LoadSummary, processSeconds: finished.seconds };
}

// ---- reporting ----

export const fmt = (value: number | undefined, digits = 0): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));

export function median(values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], rightFrom = 1): string {
  const widths = header.map((title, i) => Math.max(title.length, 3, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((cell, i) => (i >= rightFrom ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((width, i) => (i >= rightFrom ? `${'-'.repeat(width + 1)}:` : `:${'-'.repeat(width + 1)}`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** The machine a results file was measured on: date, Node, CPUs, load before and after. */
export function environment(loadBefore: number[]): Record<string, unknown> {
  return { date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, loadAverage: { before: loadBefore, after: os.loadavg() } };
}

// ---- command lines ----

/** Parses a benchmark's flags (all strings with defaults) strictly; --help prints `usage` and exits. */
export function parseBenchArgs<T extends Record<string, { readonly type: 'string'; readonly default: string }>>(argv: string[], usage: string, options: T): { [K in keyof T]: string } {
  const { values } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', default: false } }, strict: true }) as { values: Record<string, string | boolean> };
  if (values['help'] === true) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return values as unknown as { [K in keyof T]: string };
}

/** A whole-number flag value, at least `min`; throws the message a usage error prints. */
export function integerOption(name: string, text: string, min: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * Runs a benchmark's main with the clean-up every one needs: usage errors exit 2, children are
 * killed and the work directory removed however the process exits, signals exit 130.
 */
export async function runBenchmark<O extends { readonly workDir: string }>(name: string, usage: string, parse: () => O, main: (options: O) => Promise<boolean>): Promise<never> {
  let options: O;
  try {
    options = parse();
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
  const workDir = options.workDir;
  process.on('exit', () => {
    killLiveChildren();
    rmSync(workDir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130));
  try {
    process.exit((await main(options)) ? 0 : 1);
  } catch (error) {
    process.stderr.write(`\n${name} FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
