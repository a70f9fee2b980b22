// The query benchmark (`npm run bench:query [-- --documents N --seconds T --clients C ...]`):
// Docket and PostgreSQL side by side in one run, over the same generated Reddit comments
// (bench/reddit.ts, seeded, written once as NDJSON), one system at a time on the machine.
//
// Loads, each into a fresh store, timed from the first document sent to the last acknowledged:
//   - Docket: `docket serve --sync immediate` (dist/, 127.0.0.1) and `docket load FILE` with its
//     defaults (POST /collections/comments/bulk), once with no index, once with two indexes
//     defined on the empty collection: by_author [author] and by_sub_time [subreddit, created_utc].
//   - PostgreSQL: a private cluster (bench/postgres.ts; fsync=on, synchronous_commit=on, the
//     rest default), table `comments (id text PRIMARY KEY, doc jsonb NOT NULL)`, the same lines
//     as COPY batches of --batch rows over --in-flight psql sessions (as bench:peers), once with
//     no index, once with the two as expression indexes on the same fields
//     ((doc->>'author'); (doc->>'subreddit'), ((doc->>'created_utc')::bigint)).
// Reported: documents/s of each load and the ratio with / without the two indexes (goal ≥ 0.7).
// Then a third index, [link_id, score descending], is built on the full collection (Docket: PUT
// .../indexes/by_link_score, then GET until it is ready; PostgreSQL: CREATE INDEX, then VACUUM
// ANALYZE untimed) and timed.
//
// Queries, one kind at a time, --clients concurrent clients each sending one query after the
// other, after --warmup-seconds unmeasured, for --seconds or --queries-max queries a client,
// whichever ends first (Docket over HTTP keep-alive with undici, PostgreSQL over its wire
// protocol with one prepared statement a kind and connection, bench/postgres.ts). Every find
// asks for at most 100 documents, returned whole (Docket: as stored; PostgreSQL: jsonb as text):
//   author      {author: X}                                  WHERE doc->>'author' = X
//   sub-time    {subreddit: X, created_utc: [T, T + 1 day)}  ... sorted by created_utc
//   link-score  {link_id: X} sorted by score descending      ... ORDER BY score DESC
//   count-sub   count grouped by subreddit (every document)  GROUP BY doc->>'subreddit'
// X and T come from every (N / 4096)th generated comment, the same sequence for both systems.
// Reported per kind and system: queries/s, p50 and p99 latency, Docket ÷ PostgreSQL, and the
// server's CPU time per query (user + system of its processes, from /proc: on a machine shared
// with other work, steadier than rates).
// Before the clocks, both systems answer the same CHECKS queries of each kind and must agree
// (documents returned and their sort values in order; every group's count).
//
// Temporary data lives in --work-dir, deleted at exit however it comes; results go to --out.

import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool } from 'undici';
import * as limits from '../src/limits.js';
import { environment, fmt, HOST, integerOption, markdownTable, MB, parseBenchArgs, ROOT, runBenchmark, runLoader, startDocket, writeDataset, type Dataset, type Server } from './common.js';
import { PgConnection, PostgresCluster, writeCopyScripts, type Rows } from './postgres.js';

// ---- configuration ----

const SYSTEMS = ['docket', 'postgres'] as const;
type SystemName = (typeof SYSTEMS)[number];
const KINDS = ['author', 'sub-time', 'link-score', 'count-sub'] as const;
type Kind = (typeof KINDS)[number];
const COLLECTION = 'comments';
const SEED_DEFAULT = 20261210;
const SAMPLES = 4096;
const LIMIT = 100;
const DAY_S = 86_400;
/** Queries of each kind both systems answer, compared, before any clock. */
const CHECKS = 16;
const BUILD_POLL_MS = 100;

interface Options {
  readonly documents: number;
  readonly seed: number;
  readonly clients: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly queriesMax: number;
  readonly systems: readonly SystemName[];
  readonly batch: number;
  readonly inFlight: number;
  readonly workDir: string;
  readonly out: string;
}

const USAGE = `Usage: node dist/bench/query.js [options]
  --documents N         generated comments loaded into each system (default 100000; the issue's run: 1000000)
  --seed S              the generator's seed (default ${SEED_DEFAULT})
  --clients C           concurrent clients per query kind (default 8)
  --seconds T           measured seconds per query kind and system (default 10)
  --warmup-seconds W    unmeasured seconds before each (default 2)
  --queries-max Q       at most this many measured queries per client and kind (default 100000)
  --systems LIST        comma-separated subset of ${SYSTEMS.join(',')} (default both)
  --batch N             PostgreSQL: rows per COPY transaction (default ${limits.BULK_BATCH_DOCUMENTS_MAX}, Docket's bulk transaction)
  --in-flight N         PostgreSQL: psql sessions loading at once (default ${limits.LOAD_IN_FLIGHT_DEFAULT}, as docket load)
  --work-dir DIR        temporary data, deleted at exit (default ${path.join(os.tmpdir(), 'docket-query-run-<pid>')})
  --out FILE            JSON results (default bench/.work/query-results.json)
`;

function optionsFrom(argv: string[]): Options {
  const values = parseBenchArgs(argv, USAGE, {
    documents: { type: 'string', default: '100000' },
    seed: { type: 'string', default: String(SEED_DEFAULT) },
    clients: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    'warmup-seconds': { type: 'string', default: '2' },
    'queries-max': { type: 'string', default: '100000' },
    systems: { type: 'string', default: SYSTEMS.join(',') },
    batch: { type: 'string', default: String(limits.BULK_BATCH_DOCUMENTS_MAX) },
    'in-flight': { type: 'string', default: String(limits.LOAD_IN_FLIGHT_DEFAULT) },
    'work-dir': { type: 'string', default: path.join(os.tmpdir(), `docket-query-run-${process.pid}`) },
    out: { type: 'string', default: path.join(ROOT, 'bench', '.work', 'query-results.json') },
  });
  const systems = values.systems.split(',').map((name) => name.trim()).filter((name) => name !== '');
  const unknown = systems.filter((name) => !(SYSTEMS as readonly string[]).includes(name));
  if (unknown.length > 0 || systems.length === 0) throw new Error(`--systems: unknown ${JSON.stringify(unknown)}; choose from ${SYSTEMS.join(', ')}`);
  return {
    documents: integerOption('documents', values.documents, 1),
    seed: integerOption('seed', values.seed, 0),
    clients: integerOption('clients', values.clients, 1),
    seconds: integerOption('seconds', values.seconds, 1),
    warmupSeconds: integerOption('warmup-seconds', values['warmup-seconds'], 0),
    queriesMax: integerOption('queries-max', values['queries-max'], 1),
    systems: SYSTEMS.filter((name) => systems.includes(name)),
    batch: integerOption('batch', values.batch, 1),
    inFlight: integerOption('in-flight', values['in-flight'], 1),
    workDir: path.resolve(values['work-dir']),
    out: path.resolve(values.out),
  };
}

// ---- what is measured ----

interface Sample {
  readonly author: string;
  readonly subreddit: string;
  readonly createdUtc: number;
  readonly linkId: string;
}

interface Load {
  readonly seconds: number;
  readonly documentsPerSecond: number;
}

interface Latencies {
  /** The server's CPU time (user + system, all its processes) over the measured queries, per query. */
  readonly serverCpuMsPerQuery: number;
  readonly queries: number;
  readonly seconds: number;
  readonly queriesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

interface SystemResult {
  readonly system: SystemName;
  readonly loadPlain: Load;
  readonly loadIndexed: Load;
  /** loadIndexed's documents/s ÷ loadPlain's. */
  readonly loadRatio: number;
  readonly buildSeconds: number;
  readonly queries: Record<Kind, Latencies>;
  /** The answers to the check queries, for the comparison. */
  readonly checks: Record<Kind, string[]>;
  readonly detail: Record<string, unknown>;
}

/** A system's result, the load ratio computed. */
function systemResult(system: SystemName, loadPlain: Load, loadIndexed: Load, buildSeconds: number, queries: Record<Kind, Latencies>, checks: Record<Kind, string[]>, detail: Record<string, unknown>): SystemResult {
  return { system, loadPlain, loadIndexed, loadRatio: loadIndexed.documentsPerSecond / loadPlain.documentsPerSecond, buildSeconds, queries, checks, detail };
}

/** One line of progress for a measured query kind. */
function progress(system: SystemName, kind: Kind, q: Latencies): void {
  process.stderr.write(`${system}: ${kind}: ${fmt(q.queriesPerSecond)} q/s, p99 ${fmt(q.p99Ms, 1)} ms, server CPU ${fmt(q.serverCpuMsPerQuery, 2)} ms a query (${q.queries} queries)\n`);
}

/**
 * Runs `query(client, i)` from `clients` clients, each one query after the other: first for
 * `warmupSeconds` unmeasured, then for `seconds` or `queriesMax` queries each, whichever first.
 */
async function measure(options: Options, serverPid: number, query: (client: number, i: number) => Promise<unknown>): Promise<Latencies> {
  let next = 0;
  const phase = async (seconds: number, queriesMax: number, latencies: number[] | undefined): Promise<number> => {
    const started = performance.now();
    const until = started + seconds * 1000;
    await Promise.all(
      Array.from({ length: options.clients }, async (_, client) => {
        for (let q = 0; q < queriesMax && performance.now() < until; q++) {
          const t0 = performance.now();
          await query(client, next++);
          latencies?.push(performance.now() - t0);
        }
      }),
    );
    return (performance.now() - started) / 1000;
  };
  if (options.warmupSeconds > 0) await phase(options.warmupSeconds, options.queriesMax, undefined);
  const latencies: number[] = [];
  const cpuBefore = processTreeCpuMs(serverPid);
  const seconds = await phase(options.seconds, options.queriesMax, latencies);
  const serverCpuMsPerQuery = (processTreeCpuMs(serverPid) - cpuBefore) / latencies.length;
  latencies.sort((a, b) => a - b);
  const at = (p: number): number => latencies[Math.min(latencies.length - 1, Math.ceil(p * latencies.length) - 1)]!;
  return { serverCpuMsPerQuery, queries: latencies.length, seconds, queriesPerSecond: latencies.length / seconds, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: latencies[latencies.length - 1]! };
}

/**
 * CPU time (user + system, in ms) of a process and its children so far, from /proc (PostgreSQL
 * serves each connection from a backend process forked by the postmaster).
 */
function processTreeCpuMs(pid: number): number {
  const tick = 1000 / 100; // USER_HZ is 100 on Linux.
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // It ended meanwhile.
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state ppid ... utime (14th field of the line, 12th here) stime.
    if (Number(entry) === pid || Number(fields[1]) === pid) total += (Number(fields[11]) + Number(fields[12])) * tick;
  }
  return total;
}

const load = (dataset: Dataset, seconds: number): Load => ({ seconds, documentsPerSecond: dataset.lines / seconds });

/** A check's answer in a form both systems give: the documents' sort values in order, or the groups. */
function findAnswer(kind: Kind, docs: readonly Record<string, unknown>[]): string {
  // author is not sorted (PostgreSQL may return any LIMIT of them): how many, and whose.
  if (kind === 'author') return JSON.stringify([docs.length, [...new Set(docs.map((d) => d['author']))]]);
  const field = kind === 'sub-time' ? 'created_utc' : 'score';
  return JSON.stringify(docs.map((d) => d[field]));
}

const groupsAnswer = (groups: readonly [unknown, number][]): string => JSON.stringify([...groups].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)));

// ---- Docket ----

async function runDocket(dataset: Dataset, samples: readonly Sample[], options: Options): Promise<SystemResult> {
  const plainDir = path.join(options.workDir, 'docket-plain');
  let server = await startDocket('docket (no index)', plainDir, 'immediate');
  let loadPlain: Load;
  try {
    loadPlain = await docketLoad(server, dataset, options);
  } finally {
    await server.stop();
    await rm(plainDir, { recursive: true, force: true });
  }
  process.stderr.write(`docket: load, no index: ${fmt(loadPlain.documentsPerSecond)} docs/s (${fmt(loadPlain.seconds, 1)} s)\n`);

  const dataDir = path.join(options.workDir, 'docket-indexed');
  server = await startDocket('docket', dataDir, 'immediate');
  const pool = new Pool(`http://${HOST}:${server.port}`, { connections: options.clients, bodyTimeout: 600_000, headersTimeout: 600_000 });
  const call = async (method: 'GET' | 'PUT' | 'POST', urlPath: string, body?: unknown): Promise<string> => {
    const response = await pool.request({ method, path: urlPath, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    const text = await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300) throw new Error(`Docket ${method} ${urlPath} answered ${response.statusCode}: ${text.slice(0, 300)}`);
    return text;
  };
  try {
    await call('PUT', `/collections/${COLLECTION}`);
    await call('PUT', `/collections/${COLLECTION}/indexes/by_author`, { fields: ['author'] });
    await call('PUT', `/collections/${COLLECTION}/indexes/by_sub_time`, { fields: ['subreddit', 'created_utc'] });
    const loadIndexed = await docketLoad(server, dataset, options);
    process.stderr.write(`docket: load, two indexes: ${fmt(loadIndexed.documentsPerSecond)} docs/s (${fmt(loadIndexed.seconds, 1)} s)\n`);

    const started = performance.now();
    await call('PUT', `/collections/${COLLECTION}/indexes/by_link_score`, { fields: ['link_id', { score: 'desc' }] });
    for (;;) {
      const info = JSON.parse(await call('GET', `/collections/${COLLECTION}/indexes/by_link_score`)) as { state: string; error?: unknown };
      if (info.state === 'ready') break;
      if (info.state !== 'building') throw new Error(`the index build ended ${info.state}: ${JSON.stringify(info.error)}`);
      await sleep(BUILD_POLL_MS);
    }
    const buildSeconds = (performance.now() - started) / 1000;
    process.stderr.write(`docket: build [link_id, score desc]: ${fmt(buildSeconds, 1)} s\n`);

    const bodyOf = (kind: Kind, i: number): { path: string; body: unknown } => {
      const s = samples[i % samples.length]!;
      switch (kind) {
        case 'author': return { path: 'find', body: { selector: { author: s.author }, limit: LIMIT } };
        case 'sub-time': return { path: 'find', body: { selector: { subreddit: s.subreddit, created_utc: { $gte: s.createdUtc, $lt: s.createdUtc + DAY_S } }, sort: ['created_utc'], limit: LIMIT } };
        case 'link-score': return { path: 'find', body: { selector: { link_id: s.linkId }, sort: [{ score: 'desc' }], limit: LIMIT } };
        case 'count-sub': return { path: 'count', body: { group_by: 'subreddit' } };
      }
    };
    const checks = {} as Record<Kind, string[]>;
    const plans: Record<string, unknown> = {};
    for (const kind of KINDS) {
      checks[kind] = [];
      for (let i = 0; i < (kind === 'count-sub' ? 1 : CHECKS); i++) {
        const { path: route, body } = bodyOf(kind, i);
        const answer = JSON.parse(await call('POST', `/collections/${COLLECTION}/${route}`, body)) as { documents?: { id: string; doc: Record<string, unknown> }[]; groups?: { value: unknown; count: number }[]; complete?: boolean };
        if (kind === 'count-sub') {
          if (answer.complete !== true) throw new Error('Docket: the count by subreddit stopped short');
          checks[kind].push(groupsAnswer(answer.groups!.map((g) => [g.value, g.count])));
        } else checks[kind].push(findAnswer(kind, answer.documents!.map((d) => ({ ...d.doc, id: d.id }))));
      }
      const { path: route, body } = bodyOf(kind, 0);
      const explained = route === 'find' ? await call('POST', `/collections/${COLLECTION}/explain`, body) : await call('POST', `/collections/${COLLECTION}/count`, body);
      plans[kind] = (JSON.parse(explained) as { index: unknown }).index;
    }

    const queries = {} as Record<Kind, Latencies>;
    for (const kind of KINDS) {
      queries[kind] = await measure(options, server.child.pid!, async (_client, i) => {
        const { path: route, body } = bodyOf(kind, i);
        await call('POST', `/collections/${COLLECTION}/${route}`, body);
      });
      progress('docket', kind, queries[kind]);
    }
    return systemResult('docket', loadPlain, loadIndexed, buildSeconds, queries, checks, { serverPeakRssMb: server.peakRssMb(), plans });
  } finally {
    await pool.close();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function docketLoad(server: Server, dataset: Dataset, options: Options): Promise<Load> {
  const checkpoint = path.join(options.workDir, `docket-load-${server.port}.checkpoint.json`);
  const { report } = await runLoader(server.port, dataset.file, COLLECTION, checkpoint);
  await rm(checkpoint, { force: true });
  if (report.stored !== dataset.lines || report.failed !== 0) throw new Error(`the loader stored ${report.stored} and failed ${report.failed} of ${dataset.lines} lines`);
  return load(dataset, report.seconds);
}

// ---- PostgreSQL ----

const PG_TABLE = 'CREATE TABLE comments (id text PRIMARY KEY, doc jsonb NOT NULL)';
const PG_INDEXES = [
  "CREATE INDEX by_author ON comments ((doc->>'author'))",
  "CREATE INDEX by_sub_time ON comments ((doc->>'subreddit'), ((doc->>'created_utc')::bigint))",
];
const PG_BUILD = "CREATE INDEX by_link_score ON comments ((doc->>'link_id'), ((doc->>'score')::int) DESC)";
const PG_QUERIES: Record<Kind, string> = {
  author: `SELECT id, doc FROM comments WHERE doc->>'author' = $1 LIMIT ${LIMIT}`,
  'sub-time': `SELECT id, doc FROM comments WHERE doc->>'subreddit' = $1 AND (doc->>'created_utc')::bigint >= $2::bigint AND (doc->>'created_utc')::bigint < $3::bigint ORDER BY (doc->>'created_utc')::bigint LIMIT ${LIMIT}`,
  'link-score': `SELECT id, doc FROM comments WHERE doc->>'link_id' = $1 ORDER BY (doc->>'score')::int DESC LIMIT ${LIMIT}`,
  'count-sub': "SELECT doc->>'subreddit', count(*) FROM comments GROUP BY 1",
};

function pgParams(kind: Kind, s: Sample): string[] {
  switch (kind) {
    case 'author': return [s.author];
    case 'sub-time': return [s.subreddit, String(s.createdUtc), String(s.createdUtc + DAY_S)];
    case 'link-score': return [s.linkId];
    case 'count-sub': return [];
  }
}

async function runPostgres(dataset: Dataset, samples: readonly Sample[], options: Options): Promise<SystemResult> {
  process.stderr.write('postgres: writing COPY scripts ...');
  const scripts = await writeCopyScripts(dataset, options.workDir, options.inFlight, options.batch);
  process.stderr.write(' done\n');
  const cluster = await PostgresCluster.start({ dir: path.join(options.workDir, 'postgres'), name: 'postgres', settings: { fsync: 'on', synchronous_commit: 'on' } });
  const connections: PgConnection[] = [];
  try {
    const copy = async (): Promise<Load> => {
      const started = performance.now();
      const sessions = await Promise.all(scripts.map((script) => cluster.psql(['-f', script])));
      const seconds = (performance.now() - started) / 1000;
      for (const finished of sessions) if (finished.code !== 0) throw new Error(`psql -f failed: ${finished.stderr.slice(-300)}`);
      const rows = Number(await cluster.query('SELECT count(*) FROM comments'));
      if (rows !== dataset.lines) throw new Error(`PostgreSQL holds ${rows} of ${dataset.lines} rows`);
      return load(dataset, seconds);
    };
    await cluster.query(PG_TABLE);
    const loadPlain = await copy();
    process.stderr.write(`postgres: load, no index: ${fmt(loadPlain.documentsPerSecond)} docs/s (${fmt(loadPlain.seconds, 1)} s)\n`);
    await cluster.query('DROP TABLE comments');
    await cluster.query('CHECKPOINT');
    await cluster.query(PG_TABLE);
    for (const sql of PG_INDEXES) await cluster.query(sql);
    const loadIndexed = await copy();
    process.stderr.write(`postgres: load, two indexes: ${fmt(loadIndexed.documentsPerSecond)} docs/s (${fmt(loadIndexed.seconds, 1)} s)\n`);
    let started = performance.now();
    await cluster.query(PG_BUILD);
    const buildSeconds = (performance.now() - started) / 1000;
    process.stderr.write(`postgres: build [link_id, score desc]: ${fmt(buildSeconds, 1)} s\n`);
    started = performance.now();
    await cluster.query('VACUUM ANALYZE comments');
    const vacuumSeconds = (performance.now() - started) / 1000;

    for (let i = 0; i < options.clients; i++) connections.push(await PgConnection.open(cluster.port));
    const checks = {} as Record<Kind, string[]>;
    const plans: Record<string, string> = {};
    for (const kind of KINDS) {
      checks[kind] = [];
      for (let i = 0; i < (kind === 'count-sub' ? 1 : CHECKS); i++) {
        const rows = await connections[0]!.execute(kind, PG_QUERIES[kind], pgParams(kind, samples[i % samples.length]!));
        if (kind === 'count-sub') checks[kind].push(groupsAnswer(rows.map((row) => [row[0], Number(row[1])])));
        else checks[kind].push(findAnswer(kind, rows.map((row) => ({ ...(JSON.parse(row[1]!) as Record<string, unknown>), id: row[0] }))));
      }
      const s = samples[0]!;
      const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;
      const params = pgParams(kind, s);
      plans[kind] = await cluster.query(`EXPLAIN ${PG_QUERIES[kind].replace(/\$(\d)/g, (_, n: string) => literal(params[Number(n) - 1]!))}`);
    }

    const queries = {} as Record<Kind, Latencies>;
    for (const kind of KINDS) {
      const sql = PG_QUERIES[kind];
      queries[kind] = await measure(options, cluster.server.child.pid!, async (client, i): Promise<Rows> => connections[client]!.execute(kind, sql, pgParams(kind, samples[i % samples.length]!)));
      progress('postgres', kind, queries[kind]);
    }
    const version = await cluster.query('SHOW server_version');
    const tableMb = Number(await cluster.query("SELECT pg_total_relation_size('comments')")) / MB;
    return systemResult('postgres', loadPlain, loadIndexed, buildSeconds, queries, checks, { version, tableAndIndexesMb: tableMb, vacuumAnalyzeSeconds: vacuumSeconds, serverPeakRssMb: cluster.server.peakRssMb(), plans });
  } finally {
    for (const connection of connections) connection.close();
    await cluster.stop();
  }
}

// ---- main ----

function report(results: readonly SystemResult[], dataset: Dataset, options: Options): void {
  console.log(`\n### ${fmt(dataset.lines)} Reddit comments (${fmt(dataset.bytes / MB, 1)} MB of NDJSON), ${options.clients} clients, ${options.seconds} s per query kind\n`);
  console.log(markdownTable(
    ['system', 'load, no index docs/s', 'load, 2 indexes docs/s', 'ratio (goal ≥ 0.7)', 'build 3rd index s'],
    results.map((r) => [r.system, fmt(r.loadPlain.documentsPerSecond), fmt(r.loadIndexed.documentsPerSecond), `${fmt(r.loadRatio, 2)}×`, fmt(r.buildSeconds, 1)]),
  ));
  console.log('');
  const docket = results.find((r) => r.system === 'docket');
  const pg = results.find((r) => r.system === 'postgres');
  const rows = KINDS.map((kind) => {
    const d = docket?.queries[kind];
    const p = pg?.queries[kind];
    return [
      kind,
      fmt(d?.queriesPerSecond), fmt(d?.p50Ms, 1), fmt(d?.p99Ms, 1),
      fmt(p?.queriesPerSecond), fmt(p?.p50Ms, 1), fmt(p?.p99Ms, 1),
      d && p ? `${fmt(d.queriesPerSecond / p.queriesPerSecond, 2)}×` : '-',
      d && p ? `${fmt(d.p99Ms / p.p99Ms, 2)}×` : '-',
      fmt(d?.serverCpuMsPerQuery, 2), fmt(p?.serverCpuMsPerQuery, 2),
    ];
  });
  console.log(markdownTable(['query', 'docket q/s', 'p50 ms', 'p99 ms', 'postgres q/s', 'p50 ms', 'p99 ms', 'q/s docket ÷ pg (goal ≥ 1)', 'p99 docket ÷ pg', 'docket CPU ms/q', 'pg CPU ms/q'], rows));
}

async function main(options: Options): Promise<boolean> {
  // A server past 1 s of event-loop delay sheds requests with 503s, which `docket load` does
  // not retry: on a machine shared with other work a load of a million documents has died of
  // it. Load shedding is not what this measures, so the servers here have no such bound.
  process.env['DOCKET_EVENT_LOOP_DELAY_MAX_MS'] ??= '0';
  await rm(options.workDir, { recursive: true, force: true });
  await mkdir(options.workDir, { recursive: true });
  const started = performance.now();
  const loadBefore = os.loadavg();
  console.log(`bench:query: ${fmt(options.documents)} documents (seed ${options.seed}), ${options.clients} clients, ${options.seconds} s per kind; ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  process.stderr.write(`writing ${fmt(options.documents)} comments ...`);
  const samples: Sample[] = [];
  const stride = Math.max(1, Math.floor(options.documents / SAMPLES));
  const dataset = await writeDataset(path.join(options.workDir, 'comments.ndjson'), options.seed, options.documents, (c, i) => {
    if (i % stride === 0 && samples.length < SAMPLES) samples.push({ author: c.author as string, subreddit: c.subreddit as string, createdUtc: c.created_utc as number, linkId: c.link_id as string });
  });
  // The same values for both systems, in an order that does not follow the load's.
  for (let i = samples.length - 1; i > 0; i--) {
    const j = (i * 2654435761) % (i + 1);
    [samples[i], samples[j]] = [samples[j]!, samples[i]!];
  }
  process.stderr.write(` ${fmt(dataset.bytes / MB, 1)} MB\n`);
  const results: SystemResult[] = [];
  if (options.systems.includes('docket')) results.push(await runDocket(dataset, samples, options));
  if (options.systems.includes('postgres')) results.push(await runPostgres(dataset, samples, options));
  let agree = true;
  if (results.length === 2) {
    for (const kind of KINDS) {
      const differ = results[0]!.checks[kind].findIndex((answer, i) => answer !== results[1]!.checks[kind][i]);
      if (differ >= 0) {
        agree = false;
        console.log(`DISAGREE on ${kind} check ${differ}: docket ${results[0]!.checks[kind][differ]!.slice(0, 300)} / postgres ${results[1]!.checks[kind][differ]!.slice(0, 300)}`);
      }
    }
  }
  report(results, dataset, options);
  const seconds = (performance.now() - started) / 1000;
  const out = {
    ...environment(loadBefore),
    options,
    dataset: { lines: dataset.lines, bytes: dataset.bytes, seed: options.seed },
    seconds,
    agree,
    results: results.map(({ checks: _checks, ...rest }) => rest),
  };
  await mkdir(path.dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\n${agree ? 'both systems gave the same answers to the check queries; ' : ''}took ${(seconds / 60).toFixed(1)} min; results in ${path.relative(process.cwd(), options.out)}`);
  return agree;
}

const argv = process.argv.slice(2);
await runBenchmark('bench:query', USAGE, () => optionsFrom(argv), main);
