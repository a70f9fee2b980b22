// The HTTP benchmark (`npm run bench:http [-- --duration S --rounds R --connections C --preload N]`).
//
// Docket's server against a ceiling on the same machine in the same run, 32 keep-alive
// connections (--connections) from autocannon in this process, every server in a child process
// (so no server shares an event loop with the load generator):
//   - ceiling PUT / ceiling GET: a bare fastify server (`--child ceiling`) whose PUT route parses
//     the same ~1.2 KB JSON bodies Docket gets and answers {"ok":true}, and whose GET route
//     answers a stored JSON string of the preloaded documents' mean size; the paths are Docket's
//     (/collections/comments/docs/<id>), so routing costs the same;
//   - PUT periodic / PUT immediate: `docket serve --sync periodic|immediate` on a fresh data
//     directory, PUTs of ids never written before (setupRequest gives every request a new id;
//     bodies cycle through a pool of pre-serialised Reddit comments from bench/reddit.ts);
//   - GET / GET fields: `docket serve` on a data directory preloaded once with --preload Reddit
//     comments (POST /collections/{c}/bulk, NDJSON in sequential requests of 2,000 lines, if the
//     server has that route, else 32 concurrent PUTs; the server is restarted on it each round),
//     reading random existing ids, whole and with ?fields=body,author,score.
// Each phase runs --duration seconds after a --warmup (not measured) on the same server. A
// non-2xx answer, a socket error or a timeout in any phase fails the run. PUT phases are compared
// with the ceiling PUT, GET phases with the ceiling GET, as the median of per-round ratios;
// rounds alternate the order of the phases (the machine is noisy) and the summary quotes medians.
// Latency percentiles come from every response's time (10 µs buckets), not from autocannon's
// whole-millisecond histogram. Server peak RSS is the child's VmHWM at the end of the phase (for
// the GET server, of both GET phases so far in that round).
//
// Data lives in bench/.work/http-<pid> (gitignored, deleted at exit); results go to --out
// (default bench/.work/http-results.json).

import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { Pool } from 'undici';
import { mulberry32 } from '../storage/sim-file-system.js';
import { environment, fmt, HOST, integerOption, killLiveChildren, markdownTable, median, parseBenchArgs, ROOT, Server, startDocket as startDocketServer } from './common.js';
import { RedditGenerator } from './reddit.js';

// ---- configuration ----

const WORK = path.join(ROOT, 'bench', '.work', `http-${process.pid}`);
const COLLECTION = 'comments';
const FIELDS = 'body,author,score';
const SEED_PRELOAD = 20261201;
const SEED_PUT_BODIES = 20261202;
const SEED_READS = 20261203;
const BULK_LINES_PER_REQUEST = 2_000;
/** Each phase's bar as a share of the bare fastify ceiling. */
const HTTP_BARS: Readonly<Record<string, number>> = { 'PUT periodic': 0.4, GET: 0.4, 'GET fields': 0.5 };

interface Options {
  readonly connections: number;
  readonly duration: number;
  readonly rounds: number;
  readonly preload: number;
  readonly warmup: number;
  readonly syncIntervalMs: number;
  readonly bodies: number;
  readonly out: string;
}

const USAGE = `Usage: node dist/bench/http.js [options]
  --connections N       concurrent keep-alive connections (default 32)
  --duration S          seconds measured per phase (default 10)
  --rounds R            rounds; medians are reported (default 3)
  --preload N           documents preloaded for the GET phases (default 50000)
  --warmup S            unmeasured seconds before each phase, 0 for none (default 1)
  --sync-interval-ms N  the server's fdatasync interval under --sync periodic (default 100)
  --bodies N            pre-serialised PUT bodies cycled through (default 512)
  --out FILE            JSON results (default bench/.work/http-results.json)
`;

function optionsFrom(argv: string[]): Options {
  const values = parseBenchArgs(argv, USAGE, {
    connections: { type: 'string', default: '32' },
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    preload: { type: 'string', default: '50000' },
    warmup: { type: 'string', default: '1' },
    'sync-interval-ms': { type: 'string', default: '100' },
    bodies: { type: 'string', default: '512' },
    out: { type: 'string', default: path.join(ROOT, 'bench', '.work', 'http-results.json') },
  });
  const integer = integerOption;
  return {
    connections: integer('connections', values.connections, 1),
    duration: integer('duration', values.duration, 1),
    rounds: integer('rounds', values.rounds, 1),
    preload: integer('preload', values.preload, 1),
    warmup: integer('warmup', values.warmup, 0),
    syncIntervalMs: integer('sync-interval-ms', values['sync-interval-ms'], 1),
    bodies: integer('bodies', values.bodies, 1),
    out: path.resolve(values.out),
  };
}

// ---- the ceiling server (a child process) ----

/** `--child ceiling --get-body FILE`: bare fastify on a free port; prints {"port":N} once listening. */
async function ceilingChild(getBodyFile: string): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const stored = readFileSync(getBodyFile, 'utf8');
  const app = Fastify({ logger: false });
  app.put('/collections/:collection/docs/:id', async (request) => {
    if (typeof request.body !== 'object' || request.body === null) throw new Error('no JSON body');
    return { ok: true };
  });
  app.get('/collections/:collection/docs/:id', async (_request, reply) => reply.type('application/json; charset=utf-8').send(stored));
  const address = await app.listen({ host: HOST, port: 0 });
  process.stdout.write(`${JSON.stringify({ port: Number(new URL(address).port) })}\n`);
  // The parent holds our stdin: when it goes away, so do we.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

// ---- child processes, seen from the parent ----

/** Kills every child still running and deletes the work directory; run at exit, however it comes. */
function cleanUpNow(): void {
  killLiveChildren();
  rmSync(WORK, { recursive: true, force: true });
}

async function startCeiling(getBodyFile: string): Promise<Server> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', 'ceiling', '--get-body', getBodyFile], { stdio: ['pipe', 'pipe', 'pipe'] });
  const server = new Server('ceiling', child);
  server.port = await new Promise<number>((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('utf8');
      const match = /\{"port":(\d+)\}/.exec(buffered);
      if (match) {
        child.stdout!.off('data', onData);
        resolve(Number(match[1]));
      }
    };
    child.stdout!.on('data', onData);
    void server.exited.then((code) => reject(new Error(`the ceiling server exited (${code}) before listening:\n${server.output()}`)));
  });
  return server;
}

function startDocket(name: string, dataDir: string, sync: 'immediate' | 'periodic', options: Options): Promise<Server> {
  return startDocketServer(name, dataDir, sync, options.syncIntervalMs);
}

// ---- plain requests (setup and preload) ----

async function call(pool: Pool, method: 'GET' | 'PUT' | 'POST' | 'DELETE', urlPath: string, body?: string, contentType = 'application/json'): Promise<{ status: number; text: string }> {
  const response = await pool.request({ method, path: urlPath, ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }) });
  return { status: response.statusCode, text: await response.body.text() };
}

async function createCollection(pool: Pool): Promise<void> {
  const { status, text } = await call(pool, 'PUT', `/collections/${COLLECTION}`);
  if (status !== 201 && status !== 200) throw new Error(`PUT /collections/${COLLECTION} answered ${status}: ${text}`);
}

const docPath = (id: string, query = ''): string => `/collections/${COLLECTION}/docs/${encodeURIComponent(id)}${query}`;

interface Doc {
  readonly id: string;
  /** Its JSON text, whose "id" field is `id` (Reddit comments carry their id). */
  readonly json: string;
}

/**
 * Whether POST /collections/{c}/bulk takes our NDJSON (routes/bulk.ts: one document a line, its
 * id in "id"), found by storing a probe document and reading it back. If the route is missing or
 * refuses it, the preload falls back to PUTs and says what the server answered.
 */
async function bulkWorks(pool: Pool, sample: Doc): Promise<{ works: boolean; answer: string }> {
  const id = 'bench-probe';
  const probe = JSON.stringify({ ...(JSON.parse(sample.json) as object), id });
  const wrote = await call(pool, 'POST', `/collections/${COLLECTION}/bulk`, `${probe}\n`, 'application/x-ndjson');
  const answer = `${wrote.status} ${wrote.text.slice(0, 200)}`;
  if (wrote.status < 200 || wrote.status >= 300) return { works: false, answer };
  const read = await call(pool, 'GET', docPath(id));
  await call(pool, 'DELETE', docPath(id));
  return { works: read.status === 200 && isDeepStrictEqual(JSON.parse(read.text), JSON.parse(probe)), answer };
}

interface Preload {
  readonly docs: number;
  readonly method: string;
  readonly seconds: number;
  readonly docsPerSecond: number;
  readonly meanBytes: number;
}

/** Loads the GET phases' documents into `dataDir` with a server of its own, which is then stopped. */
async function preload(dataDir: string, docs: readonly Doc[], options: Options): Promise<Preload> {
  const server = await startDocket('preload', dataDir, 'periodic', options);
  const pool = new Pool(`http://${HOST}:${server.port}`, { connections: options.connections });
  try {
    await createCollection(pool);
    const bulk = await bulkWorks(pool, docs[0]!);
    const started = process.hrtime.bigint();
    let method: string;
    if (bulk.works) {
      method = `POST /collections/${COLLECTION}/bulk (NDJSON, ${BULK_LINES_PER_REQUEST} lines a request)`;
      for (let first = 0; first < docs.length; first += BULK_LINES_PER_REQUEST) {
        const lines = docs.slice(first, first + BULK_LINES_PER_REQUEST).map((doc) => doc.json);
        const { status, text } = await call(pool, 'POST', `/collections/${COLLECTION}/bulk`, `${lines.join('\n')}\n`, 'application/x-ndjson');
        if (status < 200 || status >= 300) throw new Error(`preload: bulk request answered ${status}: ${text.slice(0, 500)}`);
      }
    } else {
      method = `PUT /collections/${COLLECTION}/docs/{id}, ${options.connections} concurrent`;
      process.stderr.write(` (bulk: ${bulk.answer})`);
      let next = 0;
      const writer = async (): Promise<void> => {
        for (let i = next++; i < docs.length; i = next++) {
          const { status, text } = await call(pool, 'PUT', docPath(docs[i]!.id), docs[i]!.json);
          if (status !== 201 && status !== 200) throw new Error(`preload: PUT ${docs[i]!.id} answered ${status}: ${text.slice(0, 500)}`);
        }
      };
      await Promise.all(Array.from({ length: options.connections }, writer));
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // Whatever loaded them, the documents must all be there: check a spread of them.
    const step = Math.max(1, Math.floor(docs.length / 200));
    for (let i = 0; i < docs.length; i += step) {
      const { status } = await call(pool, 'GET', docPath(docs[i]!.id));
      if (status !== 200) throw new Error(`preload: document ${docs[i]!.id} (#${i}) reads ${status} after loading with ${method}`);
    }
    const meanBytes = docs.reduce((sum, doc) => sum + doc.json.length, 0) / docs.length;
    return { docs: docs.length, method, seconds, docsPerSecond: docs.length / seconds, meanBytes };
  } finally {
    await pool.close();
    await server.stop();
  }
}

// ---- measuring one phase ----

/** Response times in 10 µs buckets up to 10 s (the last bucket holds everything slower). */
class LatencyHistogram {
  private static readonly BUCKETS = 1_000_000;
  private readonly counts = new Uint32Array(LatencyHistogram.BUCKETS);
  private total = 0;

  record(ms: number): void {
    this.counts[Math.min(LatencyHistogram.BUCKETS - 1, Math.floor(ms * 100))]!++;
    this.total++;
  }

  /** The q-quantile in ms (the upper edge of its bucket). */
  quantile(q: number): number {
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return (i + 1) / 100;
    }
    return Number.NaN;
  }
}

type PhaseName = 'ceiling PUT' | 'ceiling GET' | 'PUT periodic' | 'PUT immediate' | 'GET' | 'GET fields';

interface Phase {
  readonly name: PhaseName;
  readonly kind: 'put' | 'get';
  /** The ceiling phase this one is compared with; undefined for the ceilings themselves. */
  readonly ceiling?: PhaseName;
  readonly query?: string;
}

interface Measurement {
  readonly phase: PhaseName;
  readonly round: number;
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly statusCodes: Record<string, number>;
  readonly serverPeakRssMb: number;
  /** autocannon's own figures, for comparison (its latency histogram has 1 ms resolution). */
  readonly autocannon: { readonly requestsPerSecondMean: number; readonly p50Ms: number; readonly p99Ms: number };
}

interface Workload {
  readonly putBodies: readonly Buffer[];
  readonly getIds: readonly string[];
}

/** The autocannon request for a phase: every PUT a new id, every GET a random existing one. */
function requestFor(phase: Phase, workload: Workload, idPrefix: string, random: () => number): autocannon.Request {
  if (phase.kind === 'put') {
    let count = 0;
    return {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      setupRequest: (request) => {
        const n = count++;
        request.path = docPath(`${idPrefix}${n.toString(36).padStart(6, '0')}`);
        request.body = workload.putBodies[n % workload.putBodies.length];
        return request;
      },
    };
  }
  const ids = workload.getIds;
  const query = phase.query ?? '';
  return {
    method: 'GET',
    setupRequest: (request) => {
      request.path = docPath(ids[Math.floor(random() * ids.length)]!, query);
      return request;
    },
  };
}

function runAutocannon(server: Server, request: autocannon.Request, seconds: number, connections: number, histogram?: LatencyHistogram): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ url: `http://${HOST}:${server.port}`, connections, duration: seconds, requests: [request], timeout: 30 }, (error: unknown, result: autocannon.Result) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(result)));
    if (histogram) instance.on('response', (_client, _status, _bytes, responseTime) => histogram.record(responseTime));
  });
}

async function measure(server: Server, phase: Phase, round: number, workload: Workload, options: Options): Promise<Measurement> {
  const random = mulberry32(SEED_READS + round * 101 + phase.name.length);
  if (options.warmup > 0) {
    const warm = await runAutocannon(server, requestFor(phase, workload, `w${round}-`, random), options.warmup, options.connections);
    check(server, phase, warm, 'warm-up');
  }
  const histogram = new LatencyHistogram();
  const result = await runAutocannon(server, requestFor(phase, workload, `r${round}-`, random), options.duration, options.connections, histogram);
  check(server, phase, result, 'measurement');
  const statusCodes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stats]) => [code, stats.count ?? 0]));
  const requests = result.requests.total;
  return {
    phase: phase.name,
    round,
    requests,
    seconds: result.duration,
    requestsPerSecond: requests / result.duration,
    p50Ms: histogram.quantile(0.5),
    p99Ms: histogram.quantile(0.99),
    maxMs: result.latency.max,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    serverPeakRssMb: server.peakRssMb(),
    autocannon: { requestsPerSecondMean: result.requests.average, p50Ms: result.latency.p50, p99Ms: result.latency.p99 },
  };
}

/** Fails the run, loudly, on any non-2xx answer, socket error or timeout, or a dead server. */
function check(server: Server, phase: Phase, result: autocannon.Result, part: string): void {
  const problems: string[] = [];
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx answers (status codes ${JSON.stringify(result.statusCodeStats)})`);
  if (result.errors > 0) problems.push(`${result.errors} errors`);
  if (result.timeouts > 0) problems.push(`${result.timeouts} timeouts`);
  if (!server.running) problems.push('the server exited');
  if (result.requests.total === 0) problems.push('no requests completed');
  if (problems.length > 0) throw new Error(`${phase.name} (${part}) FAILED: ${problems.join('; ')}\n  last server output:\n${server.output()}`);
}

// ---- the rounds ----

const PHASES: Record<PhaseName, Phase> = {
  'ceiling PUT': { name: 'ceiling PUT', kind: 'put' },
  'ceiling GET': { name: 'ceiling GET', kind: 'get' },
  'PUT periodic': { name: 'PUT periodic', kind: 'put', ceiling: 'ceiling PUT' },
  'PUT immediate': { name: 'PUT immediate', kind: 'put', ceiling: 'ceiling PUT' },
  GET: { name: 'GET', kind: 'get', ceiling: 'ceiling GET' },
  'GET fields': { name: 'GET fields', kind: 'get', ceiling: 'ceiling GET', query: `?fields=${FIELDS}` },
};
const PHASE_ORDER = Object.keys(PHASES) as PhaseName[];

/** Phases that share one server; a group's server starts before its first phase and stops after its last. */
interface Group {
  readonly phases: readonly PhaseName[];
  readonly start: (round: number) => Promise<Server>;
  /** A fresh data directory to delete afterwards. */
  readonly scratch?: (round: number) => string;
}

function groupsOf(options: Options, getBodyFile: string, preloadDir: string): Group[] {
  const putDir = (sync: string) => (round: number) => path.join(WORK, `put-${sync}-${round}`);
  return [
    { phases: ['ceiling PUT', 'ceiling GET'], start: () => startCeiling(getBodyFile) },
    {
      phases: ['PUT periodic'],
      scratch: putDir('periodic'),
      start: (round) => startDocket('PUT periodic', putDir('periodic')(round), 'periodic', options).then(withCollection),
    },
    {
      phases: ['PUT immediate'],
      scratch: putDir('immediate'),
      start: (round) => startDocket('PUT immediate', putDir('immediate')(round), 'immediate', options).then(withCollection),
    },
    { phases: ['GET', 'GET fields'], start: () => startDocket('GET', preloadDir, 'periodic', options) },
  ];
}

async function withCollection(server: Server): Promise<Server> {
  const pool = new Pool(`http://${HOST}:${server.port}`, { connections: 1 });
  try {
    await createCollection(pool);
  } finally {
    await pool.close();
  }
  return server;
}

async function runRound(round: number, groups: readonly Group[], workload: Workload, options: Options): Promise<Measurement[]> {
  const reversed = round % 2 === 1;
  const ordered = reversed ? [...groups].reverse() : groups;
  const results: Measurement[] = [];
  for (const group of ordered) {
    const scratch = group.scratch?.(round);
    if (scratch) await rm(scratch, { recursive: true, force: true });
    const server = await group.start(round);
    try {
      for (const name of reversed ? [...group.phases].reverse() : group.phases) {
        process.stderr.write(`round ${round + 1}/${options.rounds}: ${name} ...`);
        const measured = await measure(server, PHASES[name], round, workload, options);
        process.stderr.write(` ${fmt(measured.requestsPerSecond)} req/s, p50 ${fmt(measured.p50Ms, 2)} ms, p99 ${fmt(measured.p99Ms, 2)} ms, server peak RSS ${fmt(measured.serverPeakRssMb)} MB\n`);
        results.push(measured);
      }
    } finally {
      await server.stop();
      if (scratch) await rm(scratch, { recursive: true, force: true });
    }
  }
  return PHASE_ORDER.map((name) => results.find((r) => r.phase === name)!);
}

// ---- reporting ----

interface Summary {
  readonly phase: PhaseName;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly serverPeakRssMb: number;
  /** Median of the per-round ratios of requests/s to the ceiling's. */
  readonly ratioToCeiling?: number;
  readonly goal?: string;
  readonly met?: boolean;
}

function summarize(rounds: readonly Measurement[][]): Summary[] {
  const of = (name: PhaseName): Measurement[] => rounds.map((round) => round.find((m) => m.phase === name)!);
  return PHASE_ORDER.map((name) => {
    const each = of(name);
    const phase = PHASES[name];
    const base: Summary = {
      phase: name,
      requestsPerSecond: median(each.map((m) => m.requestsPerSecond)),
      p50Ms: median(each.map((m) => m.p50Ms)),
      p99Ms: median(each.map((m) => m.p99Ms)),
      non2xx: each.reduce((sum, m) => sum + m.non2xx, 0),
      serverPeakRssMb: median(each.map((m) => m.serverPeakRssMb)),
    };
    if (!phase.ceiling) return base;
    const ceilings = of(phase.ceiling);
    const ratio = median(each.map((m, i) => m.requestsPerSecond / ceilings[i]!.requestsPerSecond));
    // The bars of the "bytes through" issue (README, BENCHMARKS.md); PUT immediate has none.
    const bar = HTTP_BARS[name];
    return bar === undefined ? { ...base, ratioToCeiling: ratio } : { ...base, ratioToCeiling: ratio, goal: `>= ${bar.toFixed(2)}x ceiling`, met: ratio >= bar };
  });
}

function report(summary: readonly Summary[], rounds: readonly Measurement[][], options: Options): void {
  const verdict = (s: Summary): string => (s.met === undefined ? '' : s.met ? 'ok' : 'MISSED');
  console.log(`\n### HTTP: medians over ${rounds.length} round(s), ${options.connections} connections, ${options.duration} s a phase\n`);
  console.log(
    markdownTable(
      ['phase', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'server peak RSS MB', 'vs ceiling', 'goal', 'met'],
      summary.map((s) => [s.phase, fmt(s.requestsPerSecond), fmt(s.p50Ms, 2), fmt(s.p99Ms, 2), fmt(s.non2xx), fmt(s.serverPeakRssMb), s.ratioToCeiling === undefined ? '' : `${fmt(s.ratioToCeiling, 2)}x`, s.goal ?? '', verdict(s)]),
    ),
  );
  if (rounds.length > 1) {
    console.log(`\nreq/s per round (order alternates; ratios above are medians of per-round ratios):\n`);
    console.log(markdownTable(['phase', ...rounds.map((_, i) => `round ${i + 1}`)], PHASE_ORDER.map((name) => [name, ...rounds.map((round) => fmt(round.find((m) => m.phase === name)!.requestsPerSecond))])));
  }
}

// ---- main ----

async function parentMain(options: Options): Promise<void> {
  await rm(WORK, { recursive: true, force: true });
  await mkdir(WORK, { recursive: true });
  const started = process.hrtime.bigint();
  const loadBefore = os.loadavg();

  // The workload: PUT bodies from one seed, preloaded documents (and their ids) from another.
  const putGenerator = new RedditGenerator(SEED_PUT_BODIES);
  const putBodies = Array.from({ length: options.bodies }, () => Buffer.from(JSON.stringify(putGenerator.next())));
  const preloadGenerator = new RedditGenerator(SEED_PRELOAD);
  const docs = Array.from({ length: options.preload }, (): Doc => {
    const doc = preloadGenerator.next();
    return { id: doc.id, json: JSON.stringify(doc) };
  });
  // The GET ceiling answers one stored document of the preloaded documents' mean size.
  const meanBytes = docs.reduce((sum, doc) => sum + doc.json.length, 0) / docs.length;
  const getBody = docs.reduce((best, doc) => (Math.abs(doc.json.length - meanBytes) < Math.abs(best.json.length - meanBytes) ? doc : best)).json;
  const getBodyFile = path.join(WORK, 'ceiling-get-body.json');
  await writeFile(getBodyFile, getBody);
  const putMeanBytes = putBodies.reduce((sum, body) => sum + body.length, 0) / putBodies.length;
  console.log(`http bench: ${options.connections} connections, ${options.duration} s a phase (+${options.warmup} s warm-up), ${options.rounds} round(s); PUT bodies: ${options.bodies}, mean ${fmt(putMeanBytes)} B; GET: ${fmt(options.preload)} preloaded documents, mean ${fmt(meanBytes)} B (ceiling answers ${fmt(getBody.length)} B); ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);

  const preloadDir = path.join(WORK, 'get');
  process.stderr.write(`preloading ${fmt(options.preload)} documents ...`);
  const loaded = await preload(preloadDir, docs, options);
  process.stderr.write(` ${loaded.seconds.toFixed(1)} s (${fmt(loaded.docsPerSecond)} docs/s) with ${loaded.method}\n`);
  const workload: Workload = { putBodies, getIds: docs.map((doc) => doc.id) };
  docs.length = 0;

  const groups = groupsOf(options, getBodyFile, preloadDir);
  const rounds: Measurement[][] = [];
  for (let round = 0; round < options.rounds; round++) rounds.push(await runRound(round, groups, workload, options));

  const summary = summarize(rounds);
  report(summary, rounds, options);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const results = {
    ...environment(loadBefore),
    options,
    bodies: { putPool: options.bodies, putMeanBytes, preloadMeanBytes: meanBytes, ceilingGetBytes: getBody.length, fields: FIELDS },
    preload: loaded,
    seconds,
    summary,
    rounds,
  };
  await mkdir(path.dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\ntook ${(seconds / 60).toFixed(1)} min; results in ${path.relative(process.cwd(), options.out)}`);
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  if (argv[1] !== 'ceiling' || argv[2] !== '--get-body' || argv[3] === undefined) throw new Error(`unknown child ${argv.join(' ')}`);
  await ceilingChild(argv[3]);
} else {
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130));
  let options: Options;
  try {
    options = optionsFrom(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  try {
    await parentMain(options);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`\nbench:http FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}
