// The peers benchmark (`npm run bench:peers [-- --documents N --rounds R --systems a,b --out F]`).
//
// Loads the same generated Reddit comments (bench/reddit.ts, seeded; written once to an NDJSON
// file) into Docket and into two other stores on the same machine in the same run, each system on
// a fresh data directory, in rounds that run every system once, the order reversed every other
// round (the machine is noisy); the summary quotes medians and the median of per-round ratios:
//   - json-parse: the ceiling. A child process streams the file, splits lines and JSON.parses
//     each, and stores nothing.
//   - fastify-parse: the HTTP ceiling. `docket load` (the same client as Docket's) against a bare
//     fastify server (`--child fastify-parse PORT`) whose bulk route splits the NDJSON body,
//     JSON.parses each line and answers a bulk report; stores nothing.
//   - docket-immediate, docket-periodic: `docket serve --sync immediate|periodic` and the loader
//     with its defaults, `docket load FILE --json` (POST /collections/comments/bulk, NDJSON,
//     limits.LOAD_BATCH_LINES_DEFAULT lines a request, LOAD_IN_FLIGHT_DEFAULT requests in flight;
//     the server commits transactions of at most BULK_BATCH_DOCUMENTS_MAX documents, at most
//     BULK_BATCHES_IN_FLIGHT_MAX of them per request); the loader's own `seconds` is the figure.
//     Server peak RSS is the server's VmHWM before the stop.
//   - pouchdb: PouchDB Server (npm pouchdb-server: express-pouchdb on LevelDB through leveldown),
//     installed by this script into --cache-dir on first use. POST /comments/_bulk_docs of
//     --batch documents each (`_id` is the comment's id, spliced into the line), --in-flight
//     requests at once over undici; the bodies are built before the clock starts.
//   - postgres-sync-on, postgres-sync-off: a private PostgreSQL cluster (Debian's packages,
//     installed with apt-get if initdb is missing; run as the postgres OS user) with fsync=on
//     and synchronous_commit on or off, table `comments (id text PRIMARY KEY, doc jsonb NOT
//     NULL)`. The lines are turned into psql scripts before the clock starts: one `COPY comments
//     (id, doc) FROM STDIN` (text format; backslash, tab, newline and CR escaped) per --batch
//     lines, each its own transaction, batches dealt round-robin to --in-flight scripts that run
//     as concurrent psql sessions. The clock covers the psql processes only.
// Every system's documents/s and MB/s (2^20 bytes; the loader's own report uses 10^6) are the
// input's lines and NDJSON bytes over its seconds. --batch and --in-flight default to Docket's
// figures (1,000 and 4), so PostgreSQL commits as many documents per transaction as Docket does.
// Loads are checked: the loader's stored count, the CouchDB doc_count, SELECT count(*).
//
// Temporary data (the NDJSON file, scripts, data directories) lives in --work-dir, deleted at
// exit, however it comes; results go to --out (default bench/.work/peers-results.json).

import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import * as limits from '../src/limits.js';
import { batchesOf, environment, fmt, freePort, HOST, idOf, integerOption, markdownTable, MB, median, parseBenchArgs, requireSuccess, ROOT, run, runBenchmark, runLoader, Server, startDocket, waitUntilReady, writeDataset, type Dataset } from './common.js';
import { ensurePostgres, PostgresCluster, postgresUser, writeCopyScripts } from './postgres.js';

// ---- configuration ----

const SYSTEMS = ['json-parse', 'fastify-parse', 'docket-immediate', 'docket-periodic', 'pouchdb', 'postgres-sync-on', 'postgres-sync-off'] as const;
type SystemName = (typeof SYSTEMS)[number];
const COLLECTION = 'comments';
const SEED_DEFAULT = 20261210;
/** Lines per transaction: Docket's bulk endpoint commits transactions of at most this many documents. */
const BATCH_DEFAULT = limits.BULK_BATCH_DOCUMENTS_MAX;
/** Requests (or sessions) in flight: what `docket load` keeps by default, so every peer gets the same. */
const IN_FLIGHT_DEFAULT = limits.LOAD_IN_FLIGHT_DEFAULT;

interface Options {
  readonly documents: number;
  readonly seed: number;
  readonly rounds: number;
  readonly systems: readonly SystemName[];
  readonly batch: number;
  readonly inFlight: number;
  readonly syncIntervalMs: number;
  readonly cacheDir: string;
  readonly workDir: string;
  readonly out: string;
}

const USAGE = `Usage: node dist/bench/peers.js [options]
  --documents N         generated comments loaded into every system (default 200000)
  --seed S              the generator's seed (default ${SEED_DEFAULT})
  --rounds R            rounds; medians are reported (default 3)
  --systems LIST        comma-separated subset of ${SYSTEMS.join(',')} (default all)
  --batch N             documents per PouchDB request and per PostgreSQL COPY (default ${BATCH_DEFAULT})
  --in-flight N         PouchDB requests / PostgreSQL sessions at once (default ${IN_FLIGHT_DEFAULT}, as docket load)
  --sync-interval-ms N  Docket's fdatasync interval under --sync periodic (default 100)
  --cache-dir DIR       where pouchdb-server is installed (default ${path.join(os.tmpdir(), 'docket-peers')})
  --work-dir DIR        temporary data, deleted at exit (default ${path.join(os.tmpdir(), 'docket-peers-run-<pid>')})
  --out FILE            JSON results (default bench/.work/peers-results.json)
`;

function optionsFrom(argv: string[]): Options {
  const values = parseBenchArgs(argv, USAGE, {
    documents: { type: 'string', default: '200000' },
    seed: { type: 'string', default: String(SEED_DEFAULT) },
    rounds: { type: 'string', default: '3' },
    systems: { type: 'string', default: SYSTEMS.join(',') },
    batch: { type: 'string', default: String(BATCH_DEFAULT) },
    'in-flight': { type: 'string', default: String(IN_FLIGHT_DEFAULT) },
    'sync-interval-ms': { type: 'string', default: '100' },
    'cache-dir': { type: 'string', default: path.join(os.tmpdir(), 'docket-peers') },
    'work-dir': { type: 'string', default: path.join(os.tmpdir(), `docket-peers-run-${process.pid}`) },
    out: { type: 'string', default: path.join(ROOT, 'bench', '.work', 'peers-results.json') },
  });
  const integer = integerOption;
  const systems = values.systems.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = systems.filter((name) => !(SYSTEMS as readonly string[]).includes(name));
  if (unknown.length > 0 || systems.length === 0) throw new Error(`--systems: unknown ${JSON.stringify(unknown)}; choose from ${SYSTEMS.join(', ')}`);
  return {
    documents: integer('documents', values.documents, 1),
    seed: integer('seed', values.seed, 0),
    rounds: integer('rounds', values.rounds, 1),
    systems: SYSTEMS.filter((name) => systems.includes(name)),
    batch: integer('batch', values.batch, 1),
    inFlight: integer('in-flight', values['in-flight'], 1),
    syncIntervalMs: integer('sync-interval-ms', values['sync-interval-ms'], 1),
    cacheDir: path.resolve(values['cache-dir']),
    workDir: path.resolve(values['work-dir']),
    out: path.resolve(values.out),
  };
}

/** What each system promised about its writes while it was measured. */
function durabilityOf(name: SystemName, options: Options): string {
  switch (name) {
    case 'json-parse': return 'stores nothing';
    case 'fastify-parse': return 'stores nothing (HTTP, the loader as client)';
    case 'docket-immediate': return 'binlog fdatasync before each bulk transaction is acknowledged (group commit)';
    case 'docket-periodic': return `binlog fdatasync every ${options.syncIntervalMs} ms, acknowledged before it`;
    case 'pouchdb': return 'LevelDB writes without sync: never fsyncs';
    case 'postgres-sync-on': return 'WAL flushed (fdatasync) at each COPY commit; fsync=on';
    case 'postgres-sync-off': return 'synchronous_commit=off: WAL writer flushes every 200 ms; fsync=on';
  }
}

// ---- results ----

interface Measurement {
  readonly system: SystemName;
  readonly round: number;
  readonly documents: number;
  readonly seconds: number;
  readonly documentsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly serverPeakRssMb?: number;
  /** What the system's own tools said: the loader's report, the psql timings, ... */
  readonly detail?: unknown;
  /** Set when the run failed; the figures are then NaN. */
  readonly error?: string;
}

function measured(system: SystemName, round: number, dataset: Dataset, seconds: number, extra: Partial<Measurement> = {}): Measurement {
  return { system, round, documents: dataset.lines, seconds, documentsPerSecond: dataset.lines / seconds, megabytesPerSecond: dataset.bytes / MB / seconds, ...extra };
}

// ---- json-parse: the ceiling ----

/** `--child json-parse FILE`: streams the file, splits lines, parses each; prints {"lines","seconds"}. */
async function jsonParseChild(file: string): Promise<void> {
  const started = process.hrtime.bigint();
  let lines = 0;
  let objects = 0; // Each result is looked at, so no parse can be skipped.
  let partial = '';
  const parse = (line: string): void => {
    if (typeof JSON.parse(line) === 'object') objects++;
    lines++;
  };
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1024 * 1024 })) {
    const pieces = (partial + (chunk as string)).split('\n');
    partial = pieces.pop()!;
    for (const piece of pieces) if (piece !== '') parse(piece);
  }
  if (partial !== '') parse(partial);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${JSON.stringify({ lines, objects, seconds })}\n`);
}

async function runJsonParse(round: number, dataset: Dataset): Promise<Measurement> {
  const finished = requireSuccess('json-parse child', await run(process.execPath, [fileURLToPath(import.meta.url), '--child', 'json-parse', dataset.file]));
  const report = JSON.parse(finished.stdout.trim().split('\n').pop()!) as { lines: number; seconds: number };
  if (report.lines !== dataset.lines) throw new Error(`json-parse read ${report.lines} lines, expected ${dataset.lines}`);
  return measured('json-parse', round, dataset, report.seconds, { detail: report });
}

// ---- fastify-parse: the HTTP ceiling ----

/** `--child fastify-parse PORT`: the routes `docket load` uses; the bulk route parses each line and stores nothing. */
async function fastifyParseChild(port: number): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify();
  app.addContentTypeParser('application/x-ndjson', (_request, _payload, done) => done(null, undefined));
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/collections/:collection', async () => ({ name: COLLECTION }));
  app.post('/collections/:collection/bulk', async (request) => {
    let lines = 0;
    let partial = '';
    const parse = (line: string): void => {
      if (typeof JSON.parse(line) === 'object') lines++;
    };
    request.raw.setEncoding('utf8'); // Decodes across chunk boundaries.
    for await (const chunk of request.raw) {
      const pieces = (partial + (chunk as string)).split('\n');
      partial = pieces.pop()!;
      for (const piece of pieces) if (piece !== '') parse(piece);
    }
    if (partial !== '') parse(partial);
    return { lines, stored: lines, failed: 0, tsn: null, errors: [], errorsTruncated: false };
  });
  await app.listen({ host: HOST, port });
}

async function runFastifyParse(round: number, dataset: Dataset, options: Options): Promise<Measurement> {
  const port = await freePort();
  const server = new Server('fastify-parse', spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', 'fastify-parse', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] }), port);
  try {
    await waitUntilReady(server);
    const checkpoint = path.join(options.workDir, `fastify-parse-${round}.checkpoint.json`);
    const { report, processSeconds } = await runLoader(port, dataset.file, COLLECTION, checkpoint);
    await rm(checkpoint, { force: true });
    if (report.stored !== dataset.lines) throw new Error(`fastify-parse parsed ${report.stored} of ${dataset.lines} lines`);
    return measured('fastify-parse', round, dataset, report.seconds, { serverPeakRssMb: server.peakRssMb(), detail: { loader: report, loaderProcessSeconds: processSeconds } });
  } finally {
    await server.stop();
  }
}

// ---- Docket ----

async function runDocket(system: 'docket-immediate' | 'docket-periodic', round: number, dataset: Dataset, options: Options): Promise<Measurement> {
  const dataDir = path.join(options.workDir, `${system}-${round}`);
  await rm(dataDir, { recursive: true, force: true });
  const sync = system === 'docket-immediate' ? 'immediate' : 'periodic';
  const server = await startDocket(system, dataDir, sync, options.syncIntervalMs);
  try {
    const { report, processSeconds } = await runLoader(server.port, dataset.file, COLLECTION, `${dataDir}.checkpoint.json`);
    if (report.stored !== dataset.lines || report.failed !== 0) throw new Error(`the loader stored ${report.stored} and failed ${report.failed} of ${dataset.lines} lines`);
    await checkDocketDocuments(server.port, dataset);
    const serverPeakRssMb = server.peakRssMb();
    return measured(system, round, dataset, report.seconds, { serverPeakRssMb, detail: { loader: report, loaderProcessSeconds: processSeconds } });
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(`${dataDir}.checkpoint.json`, { force: true });
  }
}

/** The first and the last line of the file must read back. */
async function checkDocketDocuments(port: number, dataset: Dataset): Promise<void> {
  const [first, last] = await firstAndLastIds(dataset.file);
  for (const id of [first, last]) {
    const response = await fetch(`http://${HOST}:${port}/collections/${COLLECTION}/docs/${encodeURIComponent(id)}`);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`document ${id} reads ${response.status} after the load`);
  }
}

let firstAndLast: Promise<[string, string]> | undefined;
function firstAndLastIds(file: string): Promise<[string, string]> {
  return (firstAndLast ??= (async () => {
    let first: string | undefined;
    let last = '';
    for await (const batch of batchesOf(file, BATCH_DEFAULT)) {
      first ??= idOf(batch[0]!);
      last = batch[batch.length - 1]!;
    }
    return [first!, idOf(last)];
  })());
}

// ---- PouchDB Server ----

interface Pouch {
  /** pouchdb-server's bin script, run with this Node. */
  readonly bin: string;
  /** Request bodies, built before any clock starts: {"docs":[...]} of --batch documents each. */
  readonly bodies: readonly Buffer[];
}

/** Installs pouchdb-server into the cache directory unless it is there; returns its bin script. */
async function ensurePouchdbServer(options: Options): Promise<string> {
  const prefix = path.join(options.cacheDir, 'pouchdb');
  const bin = path.join(prefix, 'node_modules', 'pouchdb-server', 'bin', 'pouchdb-server');
  if (!existsSync(bin)) {
    console.log(`pouchdb-server not in ${prefix}: npm install --prefix ${prefix} pouchdb-server ...`);
    await mkdir(prefix, { recursive: true });
    requireSuccess('npm install pouchdb-server', await run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--no-save', 'pouchdb-server'], { cwd: prefix }));
  }
  if (!existsSync(bin)) throw new Error(`npm install finished but ${bin} is missing`);
  // leveldown is its storage: if the native module does not load, the server cannot either.
  requireSuccess('loading leveldown', await run(process.execPath, ['-e', "require('leveldown')"], { cwd: path.join(prefix, 'node_modules', 'pouchdb-server') }));
  return bin;
}

async function preparePouch(dataset: Dataset, options: Options): Promise<Pouch> {
  const bin = await ensurePouchdbServer(options);
  const bodies: Buffer[] = [];
  for await (const batch of batchesOf(dataset.file, options.batch)) {
    const docs = batch.map((line) => `{"_id":${JSON.stringify(idOf(line))},${line.slice(1)}`);
    bodies.push(Buffer.from(`{"docs":[${docs.join(',')}]}`));
  }
  return { bin, bodies };
}

async function runPouch(pouch: Pouch, round: number, dataset: Dataset, options: Options): Promise<Measurement> {
  const dataDir = path.join(options.workDir, `pouchdb-${round}`);
  await rm(dataDir, { recursive: true, force: true });
  await mkdir(dataDir, { recursive: true });
  const port = await freePort();
  // -n: no request log on stdout (it still goes to log.txt); -c: its config file in the fresh directory.
  const args = [pouch.bin, '--host', HOST, '--port', String(port), '--dir', dataDir, '--config', path.join(dataDir, 'config.json'), '-n'];
  const server = new Server('pouchdb', spawn(process.execPath, args, { cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] }), port);
  const pool = new Pool(`http://${HOST}:${port}`, { connections: options.inFlight, bodyTimeout: 600_000, headersTimeout: 600_000 });
  try {
    await waitUntilReady(server, '/');
    await couch(pool, 'PUT', `/${COLLECTION}`);
    const started = process.hrtime.bigint();
    let next = 0;
    let failed = 0;
    const sender = async (): Promise<void> => {
      for (let i = next++; i < pouch.bodies.length; i = next++) {
        const results = JSON.parse(await couch(pool, 'POST', `/${COLLECTION}/_bulk_docs`, pouch.bodies[i])) as { ok?: boolean }[];
        failed += results.filter((result) => result.ok !== true).length;
      }
    };
    await Promise.all(Array.from({ length: options.inFlight }, sender));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const info = JSON.parse(await couch(pool, 'GET', `/${COLLECTION}`)) as { doc_count: number; disk_size?: number };
    if (failed !== 0 || info.doc_count !== dataset.lines) throw new Error(`PouchDB holds ${info.doc_count} of ${dataset.lines} documents (${failed} refused)`);
    const serverPeakRssMb = server.peakRssMb();
    return measured('pouchdb', round, dataset, seconds, { serverPeakRssMb, detail: { docCount: info.doc_count, diskSizeBytes: info.disk_size, requests: pouch.bodies.length, inFlight: options.inFlight } });
  } finally {
    await pool.close();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function couch(pool: Pool, method: 'GET' | 'PUT' | 'POST', urlPath: string, body?: Buffer): Promise<string> {
  const response = await pool.request({ method, path: urlPath, ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }) });
  const text = await response.body.text();
  if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`PouchDB ${method} ${urlPath} answered ${response.statusCode}: ${text.slice(0, 300)}`);
  return text;
}

// ---- PostgreSQL (bench/postgres.ts) ----

interface Postgres {
  /** --in-flight psql scripts, COPYs of --batch lines dealt round-robin; readable by anyone. */
  readonly scripts: readonly string[];
}

async function preparePostgres(dataset: Dataset, options: Options): Promise<Postgres> {
  await ensurePostgres();
  postgresUser(); // It must exist before any clock starts.
  return { scripts: await writeCopyScripts(dataset, options.workDir, options.inFlight, options.batch) };
}

async function runPostgres(system: 'postgres-sync-on' | 'postgres-sync-off', pg: Postgres, round: number, dataset: Dataset, options: Options): Promise<Measurement> {
  const synchronousCommit = system === 'postgres-sync-on' ? 'on' : 'off';
  const cluster = await PostgresCluster.start({ dir: path.join(options.workDir, `${system}-${round}`), name: system, settings: { synchronous_commit: synchronousCommit, fsync: 'on' } });
  try {
    await cluster.query('CREATE TABLE comments (id text PRIMARY KEY, doc jsonb NOT NULL)');
    const walBefore = await cluster.query('SELECT pg_current_wal_lsn()');
    const started = process.hrtime.bigint();
    const sessions = await Promise.all(pg.scripts.map((script) => cluster.psql(['-f', script])));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    sessions.forEach((finished, i) => requireSuccess(`psql -f ${path.basename(pg.scripts[i]!)}`, finished));
    const rows = Number(await cluster.query('SELECT count(*) FROM comments'));
    if (rows !== dataset.lines) throw new Error(`PostgreSQL holds ${rows} of ${dataset.lines} rows`);
    const walBytes = Number(await cluster.query(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '${walBefore}')`));
    return measured(system, round, dataset, seconds, { detail: { rows, walBytes, sessions: pg.scripts.length, synchronousCommit } });
  } finally {
    await cluster.stop();
  }
}

// ---- the rounds ----

interface Prepared {
  readonly dataset: Dataset;
  readonly pouch?: Pouch;
  readonly postgres?: Postgres;
  /** Systems that cannot run here, and why. */
  readonly unavailable: Map<SystemName, string>;
}

function runSystem(system: SystemName, round: number, prepared: Prepared, options: Options): Promise<Measurement> {
  const { dataset } = prepared;
  switch (system) {
    case 'json-parse': return runJsonParse(round, dataset);
    case 'fastify-parse': return runFastifyParse(round, dataset, options);
    case 'docket-immediate':
    case 'docket-periodic': return runDocket(system, round, dataset, options);
    case 'pouchdb': return runPouch(prepared.pouch!, round, dataset, options);
    case 'postgres-sync-on':
    case 'postgres-sync-off': return runPostgres(system, prepared.postgres!, round, dataset, options);
  }
}

async function runRound(round: number, prepared: Prepared, options: Options): Promise<Measurement[]> {
  const systems = options.systems.filter((system) => !prepared.unavailable.has(system));
  const results: Measurement[] = [];
  for (const system of round % 2 === 1 ? [...systems].reverse() : systems) {
    process.stderr.write(`round ${round + 1}/${options.rounds}: ${system} ...`);
    let result: Measurement;
    try {
      result = await runSystem(system, round, prepared, options);
      process.stderr.write(` ${result.seconds.toFixed(2)} s, ${fmt(result.documentsPerSecond)} docs/s, ${fmt(result.megabytesPerSecond, 1)} MB/s${result.serverPeakRssMb === undefined ? '' : `, server peak RSS ${fmt(result.serverPeakRssMb)} MB`}\n`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      process.stderr.write(` FAILED: ${message}\n`);
      result = { system, round, documents: prepared.dataset.lines, seconds: Number.NaN, documentsPerSecond: Number.NaN, megabytesPerSecond: Number.NaN, error: message };
    }
    results.push(result);
  }
  return results;
}

// ---- reporting ----

interface Summary {
  readonly system: SystemName;
  readonly durability: string;
  readonly unavailable?: string;
  readonly failedRounds: number;
  readonly documentsPerSecond: number;
  readonly documentsPerSecondMin: number;
  readonly documentsPerSecondMax: number;
  readonly megabytesPerSecond: number;
  readonly serverPeakRssMb: number;
  /** Median over rounds of docket-immediate's documents/s ÷ this system's, both from the same round. */
  readonly docketImmediateRatio: number;
}

function summarize(rounds: readonly Measurement[][], prepared: Prepared, options: Options): Summary[] {
  const of = (system: SystemName): Measurement[] => rounds.flatMap((round) => round.filter((m) => m.system === system));
  return options.systems.map((system) => {
    const each = of(system);
    const rates = each.map((m) => m.documentsPerSecond).filter(Number.isFinite);
    const ratios = rounds.map((round) => {
      const docket = round.find((m) => m.system === 'docket-immediate');
      const other = round.find((m) => m.system === system);
      return docket && other ? docket.documentsPerSecond / other.documentsPerSecond : Number.NaN;
    });
    const unavailable = prepared.unavailable.get(system);
    return {
      system,
      durability: durabilityOf(system, options),
      ...(unavailable === undefined ? {} : { unavailable }),
      failedRounds: each.filter((m) => m.error !== undefined).length,
      documentsPerSecond: median(rates),
      documentsPerSecondMin: rates.length > 0 ? Math.min(...rates) : Number.NaN,
      documentsPerSecondMax: rates.length > 0 ? Math.max(...rates) : Number.NaN,
      megabytesPerSecond: median(each.map((m) => m.megabytesPerSecond)),
      serverPeakRssMb: median(each.map((m) => m.serverPeakRssMb ?? Number.NaN)),
      docketImmediateRatio: median(ratios),
    };
  });
}

interface Goal {
  readonly goal: string;
  readonly target: number;
  readonly measured: number;
  /** undefined when the peer could not be measured. */
  readonly met: boolean | undefined;
}

function goalsOf(summary: readonly Summary[]): Goal[] {
  const targets: [SystemName, number][] = [['postgres-sync-on', 0.5], ['fastify-parse', 0.3], ['pouchdb', 10], ['json-parse', 0.25]];
  return targets.map(([system, target]) => {
    const ratio = summary.find((s) => s.system === system)?.docketImmediateRatio ?? Number.NaN;
    return { goal: `docket-immediate / ${system}`, target, measured: ratio, met: Number.isFinite(ratio) ? ratio >= target : undefined };
  });
}

function report(summary: readonly Summary[], goals: readonly Goal[], rounds: readonly Measurement[][], prepared: Prepared, options: Options): void {
  const { dataset } = prepared;
  console.log(`\n### Loading ${fmt(dataset.lines)} Reddit comments (${fmt(dataset.bytes / MB, 1)} MB of NDJSON): medians over ${rounds.length} round(s)\n`);
  const range = (s: Summary): string => (Number.isFinite(s.documentsPerSecondMin) ? `${fmt(s.documentsPerSecondMin)}–${fmt(s.documentsPerSecondMax)}` : '');
  const rows = summary.map((s) => {
    if (s.unavailable !== undefined) return [s.system, s.durability, 'unavailable', '', '', '', ''];
    const ratio = s.system === 'docket-immediate' || !Number.isFinite(s.docketImmediateRatio) ? '' : `${fmt(s.docketImmediateRatio, 2)}×`;
    const failed = s.failedRounds > 0 ? ` (${s.failedRounds} failed)` : '';
    return [s.system, s.durability, `${fmt(s.documentsPerSecond)}${failed}`, range(s), fmt(s.megabytesPerSecond, 1), fmt(s.serverPeakRssMb), ratio];
  });
  console.log(markdownTable(['system', 'durability', 'docs/s', 'min–max', 'MB/s', 'server peak RSS MB', 'docket-immediate ÷ this'], rows, 2));
  console.log('');
  const verdict = (goal: Goal): string => (goal.met === undefined ? 'not measured' : goal.met ? 'met' : '**missed**');
  console.log(markdownTable(['goal', 'target', 'measured', ''], goals.map((goal) => [goal.goal, `≥ ${goal.target}×`, Number.isFinite(goal.measured) ? `${fmt(goal.measured, 2)}×` : '-', verdict(goal)])));
  for (const [system, reason] of prepared.unavailable) console.log(`\n${system} unavailable: ${reason}`);
  if (rounds.length > 1) {
    console.log(`\ndocs/s per round (order alternates):\n`);
    const systems = options.systems.filter((system) => !prepared.unavailable.has(system));
    console.log(markdownTable(['system', ...rounds.map((_, i) => `round ${i + 1}`)], systems.map((system) => [system, ...rounds.map((round) => fmt(round.find((m) => m.system === system)?.documentsPerSecond))])));
  }
}

// ---- main ----

async function prepare(options: Options): Promise<Prepared> {
  process.stderr.write(`writing ${fmt(options.documents)} comments (seed ${options.seed}) ...`);
  const dataset = await writeDataset(path.join(options.workDir, 'comments.ndjson'), options.seed, options.documents);
  process.stderr.write(` ${fmt(dataset.bytes / MB, 1)} MB\n`);
  const unavailable = new Map<SystemName, string>();
  const attempt = async <T>(systems: SystemName[], what: string, step: () => Promise<T>): Promise<T | undefined> => {
    if (!systems.some((system) => options.systems.includes(system))) return undefined;
    process.stderr.write(`preparing ${what} ...`);
    try {
      const value = await step();
      process.stderr.write(' done\n');
      return value;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      process.stderr.write(` unavailable: ${reason}\n`);
      for (const system of systems) unavailable.set(system, reason);
      return undefined;
    }
  };
  const pouch = await attempt(['pouchdb'], 'PouchDB Server and its request bodies', () => preparePouch(dataset, options));
  const postgres = await attempt(['postgres-sync-on', 'postgres-sync-off'], 'PostgreSQL and its COPY scripts', () => preparePostgres(dataset, options));
  return { dataset, ...(pouch ? { pouch } : {}), ...(postgres ? { postgres } : {}), unavailable };
}

async function parentMain(options: Options): Promise<boolean> {
  await rm(options.workDir, { recursive: true, force: true });
  await mkdir(options.workDir, { recursive: true });
  const started = process.hrtime.bigint();
  const loadBefore = os.loadavg();
  console.log(`peers bench: ${fmt(options.documents)} documents, ${options.rounds} round(s), batches of ${fmt(options.batch)}, ${options.inFlight} in flight; ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  const prepared = await prepare(options);
  const rounds: Measurement[][] = [];
  for (let round = 0; round < options.rounds; round++) rounds.push(await runRound(round, prepared, options));
  const summary = summarize(rounds, prepared, options);
  const goals = goalsOf(summary);
  report(summary, goals, rounds, prepared, options);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const results = {
    ...environment(loadBefore),
    options,
    dataset: { lines: prepared.dataset.lines, bytes: prepared.dataset.bytes, seed: options.seed },
    unavailable: Object.fromEntries(prepared.unavailable),
    seconds,
    summary,
    goals,
    rounds,
  };
  await mkdir(path.dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\ntook ${(seconds / 60).toFixed(1)} min; results in ${path.relative(process.cwd(), options.out)}`);
  return rounds.every((round) => round.every((m) => m.error === undefined));
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  if (argv[2] === undefined) throw new Error(`unknown child ${argv.join(' ')}`);
  if (argv[1] === 'json-parse') await jsonParseChild(argv[2]);
  else if (argv[1] === 'fastify-parse') await fastifyParseChild(Number(argv[2]));
  else throw new Error(`unknown child ${argv.join(' ')}`);
} else {
  await runBenchmark('bench:peers', USAGE, () => optionsFrom(argv), parentMain);
}
