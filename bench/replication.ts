// The replication benchmark (`npm run bench:replication [-- --seconds S --rounds R --connections C --only all|replay|lag --profile-dir DIR --out F]`).
//
// Everything runs on this machine (2 cores shared by the primary, the standbys and the load
// client, so each standby takes CPU from the primary: the ratios are upper bounds of the cost).
// Per round, in alternating order, for each configuration:
//   standalone                     a primary, no standby
//   1-local, 2-local               a primary at --commit-level local with 1 or 2 standbys
//   1-remote_flush, 2-remote_flush a primary at remote_flush, ANY 1 of the standbys
// it measures PUT/s (--connections keep-alive connections, each PUT of a ~1 KB document to a
// random id, for --seconds) and bulk docs/s (POST /bulk of 1,000 such documents, 2 in flight,
// for --seconds), reported as medians and as ratios to standalone in the same round.
// With 1 standby at local it also samples the primary's replay lag of the standby (/stats
// lagMs.replayed, every 20 ms during the PUT load: p50 and p99). Then, once per round:
//   - replay rate: a caught-up standby is paused (SIGSTOP) while the primary writes a backlog
//     (bulk, --seconds), then resumed and timed until it has replayed it all: backlog bytes per
//     second of catch-up over the primary's binlog bytes per second of load (both the primary's
//     figures: the records are the same bytes), and the CPU time (/proc/PID/stat) each process
//     spent per MiB of binlog, the primary taking it in, the standby receiving and replaying it;
//     --profile-dir DIR runs that standby under node --cpu-prof;
//   - time to promote: POST /admin/promote on a caught-up standby, wall time of the request.
// Results go to --out (default bench/.work/replication-results.json).

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Pool } from 'undici';
import { CLI, HOST, MB, ROOT, Server, environment, fmt, freePort, integerOption, markdownTable, median, parseBenchArgs, runBenchmark, waitUntilReady } from './common.js';

const USAGE = 'Usage: npm run bench:replication [-- --seconds S --rounds R --connections C --only all|replay|lag --profile-dir DIR --out FILE]\n';
const CONFIGS = ['standalone', '1-local', '2-local', '1-remote_flush', '2-remote_flush'] as const;
type ConfigName = (typeof CONFIGS)[number];

interface Options {
  readonly seconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly out: string;
  readonly workDir: string;
  /** 'replay': only the catch-up measurement (and promote), not the load configurations; 'lag': only standalone and 1-local (PUT and bulk ratios, replay lag). */
  readonly only: 'all' | 'replay' | 'lag';
  /** Where the catch-up standby writes a CPU profile (node --cpu-prof); '' for none. */
  readonly profileDir: string;
}

const DOC = JSON.stringify({ title: 'x'.repeat(200), body: 'lorem ipsum '.repeat(60), score: 12345, tags: ['a', 'b', 'c'], author: { name: 'someone', karma: 42 } });

let serial = 0;

async function startNode(name: string, dataDir: string, args: string[], nodeArgs: string[] = []): Promise<Server> {
  const port = await freePort();
  const all = [...nodeArgs, CLI, 'serve', '--host', HOST, '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn', ...args];
  const server = new Server(name, spawn(process.execPath, all, { stdio: ['ignore', 'pipe', 'pipe'] }), port);
  await waitUntilReady(server);
  return server;
}

const url = (server: Server, p: string): string => `http://${HOST}:${server.port}${p}`;

async function getJson(server: Server, p: string): Promise<Record<string, any>> {
  const response = await fetch(url(server, p));
  return (await response.json()) as Record<string, any>;
}

/** Waits (polling /stats, bounded) until every standby reports replayed >= the primary's durable TSN. */
async function caughtUp(primary: Server, standbys: readonly Server[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const target = (await getJson(primary, '/stats'))['binlog']['durableTsn'] as number;
  for (const standby of standbys) {
    // A standby still recovering answers 503 (no `replication` yet).
    while (((await getJson(standby, '/stats'))['replication']?.['replayedTsn'] ?? -1) < target) {
      if (Date.now() > deadline) throw new Error(`${standby.name} did not catch up to TSN ${target}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/** PUTs for `seconds` over `connections` connections; returns PUT/s (2xx only) and failures. */
async function putLoad(primary: Server, seconds: number, connections: number, onTick?: () => void): Promise<{ rate: number; failed: number }> {
  const pool = new Pool(url(primary, ''), { connections, pipelining: 1 });
  const end = Date.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const started = Date.now();
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      const id = `p${serial++}`;
      const { statusCode, body } = await pool.request({ method: 'PUT', path: `/collections/c/docs/${id}`, headers: { 'content-type': 'application/json' }, body: DOC });
      await body.arrayBuffer();
      if (statusCode < 300) ok++;
      else failed++;
    }
  };
  const ticker = onTick ? setInterval(onTick, 20) : undefined;
  await Promise.all(Array.from({ length: connections }, () => worker()));
  clearInterval(ticker);
  await pool.close();
  return { rate: ok / ((Date.now() - started) / 1000), failed };
}

/** Bulk loads of 1,000 documents, 2 in flight, for `seconds`; returns documents/s. */
async function bulkLoad(primary: Server, seconds: number): Promise<number> {
  const pool = new Pool(url(primary, ''), { connections: 2, pipelining: 1 });
  const end = Date.now() + seconds * 1000;
  let stored = 0;
  const started = Date.now();
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      let body = '';
      for (let i = 0; i < 1000; i++) body += `{"id":"b${serial++}",${DOC.slice(1)}\n`;
      const response = await pool.request({ method: 'POST', path: '/collections/c/bulk', headers: { 'content-type': 'application/x-ndjson' }, body });
      const report = (await response.body.json()) as { stored?: number };
      stored += report.stored ?? 0;
    }
  };
  await Promise.all([worker(), worker()]);
  await pool.close();
  return stored / ((Date.now() - started) / 1000);
}

async function cluster(config: ConfigName, dir: string): Promise<{ primary: Server; standbys: Server[] }> {
  const [count, level] = config === 'standalone' ? [0, 'local'] : [Number(config[0]), config.slice(2)];
  const primary = await startNode(`${config}-p`, path.join(dir, 'p'), ['--commit-level', level, '--commit-quorum', '1']);
  const standbys: Server[] = [];
  for (let i = 0; i < count; i++) standbys.push(await startNode(`${config}-s${i}`, path.join(dir, `s${i}`), ['--replica-of', url(primary, ''), '--replica-name', `s${i}`]));
  await fetch(url(primary, '/collections/c'), { method: 'PUT', headers: { 'content-type': 'application/json', 'x-docket-commit-level': 'local' }, body: '{}' });
  if (standbys.length > 0) await caughtUp(primary, standbys);
  return { primary, standbys };
}

async function stopAll(servers: readonly Server[]): Promise<void> {
  for (const server of [...servers].reverse()) await server.stop();
}

/** A process's CPU time so far (user + system, all threads), in seconds, from /proc/PID/stat. */
function cpuSeconds(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** CPU seconds so far per thread (/proc/PID/task/TID/stat), named `main` (the event loop) or by thread id. */
function threadCpuSeconds(pid: number | undefined): Map<string, number> {
  const threads = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      threads.set(tid === String(pid) ? 'main' : `thread ${tid}`, (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

/** Per thread name, the CPU seconds spent between two threadCpuSeconds readings, busiest first. */
function threadCpuSpent(before: Map<string, number>, after: Map<string, number>): string {
  const spent = [...after].map(([name, seconds]) => [name, seconds - (before.get(name) ?? 0)] as const).filter(([, s]) => s >= 0.01);
  return spent.sort((a, b) => b[1] - a[1]).map(([name, s]) => `${name} ${fmt(s, 2)} s`).join(', ');
}

/** USER_HZ on Linux. */
const CLOCK_TICKS = 100;

function oneOfOption<T extends string>(name: string, text: string, values: readonly T[]): T {
  if (!(values as readonly string[]).includes(text)) throw new Error(`--${name} must be one of ${values.join(', ')}, got ${JSON.stringify(text)}`);
  return text as T;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(options: Options): Promise<boolean> {
  const loadBefore = os.loadavg();
  await mkdir(options.workDir, { recursive: true });
  const put: Record<ConfigName, number[]> = Object.fromEntries(CONFIGS.map((c) => [c, []])) as unknown as Record<ConfigName, number[]>;
  const bulk: Record<ConfigName, number[]> = Object.fromEntries(CONFIGS.map((c) => [c, []])) as unknown as Record<ConfigName, number[]>;
  const putRatio: Record<ConfigName, number[]> = Object.fromEntries(CONFIGS.map((c) => [c, []])) as unknown as Record<ConfigName, number[]>;
  const bulkRatio: Record<ConfigName, number[]> = Object.fromEntries(CONFIGS.map((c) => [c, []])) as unknown as Record<ConfigName, number[]>;
  const lagSamples: number[] = [];
  const replayMultiples: number[] = [];
  const promoteMs: number[] = [];
  const cpuPerMb: { primary: number; standby: number }[] = [];
  let failures = 0;
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? [...CONFIGS] : [...CONFIGS].reverse();
    const roundPut = new Map<ConfigName, number>();
    const roundBulk = new Map<ConfigName, number>();
    for (const config of options.only === 'replay' ? [] : options.only === 'lag' ? order.filter((c) => c === 'standalone' || c === '1-local') : order) {
      const dir = path.join(options.workDir, `r${round}-${config}`);
      const { primary, standbys } = await cluster(config, dir);
      try {
        const sampleLag = config === '1-local' ? () => void getJson(primary, '/stats').then((s) => { const st = s['replication']['standbys'][0]; if (st) lagSamples.push(st['lagMs']['replayed']); }, () => undefined) : undefined;
        const putResult = await putLoad(primary, options.seconds, options.connections, sampleLag);
        failures += putResult.failed;
        const bulkRate = await bulkLoad(primary, options.seconds);
        roundPut.set(config, putResult.rate);
        roundBulk.set(config, bulkRate);
        process.stdout.write(`round ${round + 1} ${config}: ${fmt(putResult.rate)} PUT/s, ${fmt(bulkRate)} bulk docs/s${putResult.failed > 0 ? `, ${putResult.failed} failed` : ''}\n`);
      } finally {
        await stopAll([primary, ...standbys]);
      }
    }
    for (const config of options.only === 'replay' ? [] : options.only === 'lag' ? (['standalone', '1-local'] as const) : CONFIGS) {
      put[config].push(roundPut.get(config)!);
      bulk[config].push(roundBulk.get(config)!);
      putRatio[config].push(roundPut.get(config)! / roundPut.get('standalone')!);
      bulkRatio[config].push(roundBulk.get(config)! / roundBulk.get('standalone')!);
    }

    if (options.only === 'lag') continue;
    // Replay rate: a caught-up standby is paused (SIGSTOP) while the primary writes a bulk
    // backlog, then resumed (SIGCONT) and timed until it has replayed all of it. (A standby
    // started on an empty directory seeds from a checkpoint and replays almost nothing, so the
    // standby exists before the backlog; pausing keeps its stream, so the primary retains the log.)
    const dir = path.join(options.workDir, `r${round}-replay`);
    const primary = await startNode('replay-p', path.join(dir, 'p'), []);
    await fetch(url(primary, '/collections/c'), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    const profile = options.profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', options.profileDir];
    const standby = await startNode('replay-s', path.join(dir, 's'), ['--replica-of', url(primary, ''), '--replica-name', 's'], profile);
    try {
      // One bulk request first: the collection's fields (and their column families) exist
      // before the backlog on both sides, so neither rate includes creating them.
      let warm = '';
      for (let i = 0; i < 1000; i++) warm += `{"id":"w${serial++}",${DOC.slice(1)}\n`;
      await (await fetch(url(primary, '/collections/c/bulk'), { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: warm })).arrayBuffer();
      await caughtUp(primary, [standby]);
      standby.child.kill('SIGSTOP');
      const bytesBefore = (await getJson(primary, '/stats'))['binlog']['bytesWritten'] as number;
      const primaryCpuBefore = cpuSeconds(primary.child.pid);
      const loadStart = Date.now();
      await bulkLoad(primary, options.seconds);
      const loadSeconds = (Date.now() - loadStart) / 1000;
      const backlog = ((await getJson(primary, '/stats'))['binlog']['bytesWritten'] as number) - bytesBefore;
      const primaryCpu = cpuSeconds(primary.child.pid) - primaryCpuBefore;
      const generated = backlog / loadSeconds;
      const standbyCpuBefore = cpuSeconds(standby.child.pid);
      const threadsBefore = threadCpuSeconds(standby.child.pid);
      const primaryThreadsBefore = threadCpuSeconds(primary.child.pid);
      const catchStart = Date.now();
      standby.child.kill('SIGCONT');
      await caughtUp(primary, [standby]);
      const catchSeconds = (Date.now() - catchStart) / 1000;
      const standbyCpu = cpuSeconds(standby.child.pid) - standbyCpuBefore;
      const threads = threadCpuSpent(threadsBefore, threadCpuSeconds(standby.child.pid));
      const primaryThreads = threadCpuSpent(primaryThreadsBefore, threadCpuSeconds(primary.child.pid));
      replayMultiples.push(backlog / catchSeconds / generated);
      cpuPerMb.push({ primary: (primaryCpu * 1000 * MB) / backlog, standby: (standbyCpu * 1000 * MB) / backlog });
      const promoteStart = Date.now();
      const promoted = await fetch(url(standby, '/admin/promote'), { method: 'POST' });
      await promoted.arrayBuffer();
      promoteMs.push(Date.now() - promoteStart);
      process.stdout.write(
        `round ${round + 1} replay: ${fmt(backlog / MB, 1)} MiB backlog caught up in ${fmt(catchSeconds, 2)} s at ${fmt(backlog / catchSeconds / MB, 1)} MiB/s vs ${fmt(generated / MB, 1)} MiB/s generated (${fmt(replayMultiples.at(-1)!, 2)}x); ` +
          `CPU ms per MiB: primary writing ${fmt(cpuPerMb.at(-1)!.primary)}, standby replaying ${fmt(cpuPerMb.at(-1)!.standby)}; CPU meanwhile, standby: ${threads}; primary (shipping): ${primaryThreads}; promote ${promoteMs.at(-1)} ms\n`,
      );
    } finally {
      if (standby.running) standby.child.kill('SIGCONT');
      await stopAll([primary, standby]);
    }
  }
  const rows = CONFIGS.map((config) => [config, fmt(median(put[config])), fmt(median(putRatio[config]), 2), fmt(median(bulk[config])), fmt(median(bulkRatio[config]), 2)]);
  const summary = [
    markdownTable(['configuration', 'PUT/s', 'PUT ratio', 'bulk docs/s', 'bulk ratio'], rows),
    '',
    `replay lag of 1 standby at local under PUT load (primary /stats lagMs.replayed, ${lagSamples.length} samples): p50 ${fmt(percentile(lagSamples, 50))} ms, p99 ${fmt(percentile(lagSamples, 99))} ms`,
    `catch-up rate of a standby / the primary's log generation rate (bulk): median ${fmt(median(replayMultiples), 2)}x (${replayMultiples.map((m) => fmt(m, 2)).join(', ')})`,
    `CPU per MiB of binlog (user + system, /proc/PID/stat): the primary taking it in by bulk, median ${fmt(median(cpuPerMb.map((c) => c.primary)))} ms; the standby receiving and replaying it, median ${fmt(median(cpuPerMb.map((c) => c.standby)))} ms`,
    `time to promote a caught-up standby: median ${fmt(median(promoteMs))} ms (${promoteMs.join(', ')})`,
    `failed PUTs: ${failures}`,
  ].join('\n');
  process.stdout.write(`\n${summary}\n`);
  await mkdir(path.dirname(options.out), { recursive: true });
  await writeFile(options.out, JSON.stringify({ environment: environment(loadBefore), options, put, bulk, putRatio, bulkRatio, lagSamples: { count: lagSamples.length, p50: percentile(lagSamples, 50), p99: percentile(lagSamples, 99) }, replayMultiples, cpuPerMb, promoteMs }, null, 2));
  return true;
}

void runBenchmark('bench:replication', USAGE, () => {
  const values = parseBenchArgs(process.argv.slice(2), USAGE, {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '16' },
    only: { type: 'string', default: 'all' },
    'profile-dir': { type: 'string', default: '' },
    out: { type: 'string', default: path.join(ROOT, 'bench', '.work', 'replication-results.json') },
  });
  return {
    seconds: integerOption('seconds', values.seconds, 1),
    rounds: integerOption('rounds', values.rounds, 1),
    connections: integerOption('connections', values.connections, 1),
    out: path.resolve(values.out),
    only: oneOfOption('only', values.only, ['all', 'replay', 'lag'] as const),
    profileDir: values['profile-dir'] === '' ? '' : path.resolve(values['profile-dir']),
    workDir: path.join(os.tmpdir(), `docket-bench-replication-${process.pid}`),
  };
}, main);
