// SIGKILL the real server under HTTP load, again and again on one data directory, and check
// after every restart that each acknowledged write (a 2xx reply) is there and whole: the latest
// acknowledged value of every id, at its revision, or its absence after an acknowledged delete.
// A write in flight at the kill may or may not be there, but if it is, it is whole and exactly
// what was sent; an atomic bulk load in flight is all there or not at all.
//
// Rounds alternate --sync immediate and --sync periodic, and both must lose nothing: a SIGKILL
// ends the process, not the machine, and periodic acknowledges only after the binlog write()
// has handed the bytes to the kernel, which keeps them. (A machine crash is what separates the
// two modes; the simulated-crash sweeps in test/crash/ cover that.)
//
// DOCKET_SIGKILL_ROUNDS (default 32) sets the number of kills, DOCKET_SIGKILL_SEED the seed of
// the workload (kill timing is the scheduler's). `npm run test:kill-long` runs 500 rounds.

import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Pool } from 'undici';
import { mulberry32 } from '../../storage/sim-file-system.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const ROUNDS = Number(process.env.DOCKET_SIGKILL_ROUNDS ?? 32);
const SEED = Number(process.env.DOCKET_SIGKILL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CLIENTS = 4;
const IDS_PER_CLIENT = 25;
const KILL_DELAY_MS_MIN = 20;
const KILL_DELAY_MS_MAX = 300;
const SYNC_INTERVAL_MS = 50;
const COLLECTION = 'k';
const VERIFY_CONCURRENCY = 8;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Doc = { [key: string]: Json };

/** What an id holds: a document at a revision, or nothing. */
type State = { readonly doc: Doc; readonly rev: number } | null;

/** A write whose reply never came: each id it touches and what the id holds if it was applied. */
interface InFlight {
  readonly what: string;
  readonly outcomes: ReadonlyMap<string, Doc | null>;
}

const random = mulberry32(SEED);
const randomInt = (min: number, max: number): number => min + Math.floor(random() * (max - min + 1));

// Each client owns its ids and sends one request at a time, so per id the acknowledged
// history is a sequence and "the latest acknowledged state" is well defined.
const acknowledged = new Map<string, State>();
const inFlight: (InFlight | undefined)[] = Array.from({ length: CLIENTS }, () => undefined);
const idsOf = (client: number): string[] => Array.from({ length: IDS_PER_CLIENT }, (_, i) => `c${client}-${String(i).padStart(2, '0')}`);
for (let client = 0; client < CLIENTS; client++) for (const id of idsOf(client)) acknowledged.set(id, null);

let sequence = 0; // Every document written carries a fresh one, so a value names its write.
const totals = { acknowledged: 0, inFlightApplied: 0, inFlightLost: 0, verifiedReads: 0, startMs: 0, verifyMs: 0, loadMs: 0 };

/** RFC 7396 merge patch, for the model. */
function merged(target: Json, patch: Json): Json {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: { [key: string]: Json } = typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = merged(result[key] ?? null, value);
  }
  return result;
}

function newDoc(id: string, round: number): Doc {
  return { id, seq: ++sequence, round, text: 'x'.repeat(randomInt(0, 3000)), list: Array.from({ length: randomInt(0, 20) }, (_, i) => i * sequence), nested: { at: sequence, flag: random() < 0.5 } };
}

function newPatch(round: number): Doc {
  const patch: Doc = { seq: ++sequence, round };
  patch[`f${randomInt(0, 5)}`] = random() < 0.25 ? null : { v: sequence, s: 'p'.repeat(randomInt(0, 200)) };
  if (random() < 0.2) patch.text = null;
  return patch;
}

const docUrl = (id: string): string => `/collections/${COLLECTION}/docs/${encodeURIComponent(id)}`;

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly etag: string | undefined;
}

async function send(pool: Pool, method: 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST', url: string, body?: string, type = 'application/json'): Promise<Reply> {
  const response = await pool.request({ method, path: url, ...(body !== undefined ? { body, headers: { 'content-type': type } } : {}) });
  const text = await response.body.text();
  const etag = response.headers.etag;
  return { status: response.statusCode, body: text, etag: typeof etag === 'string' ? etag : undefined };
}

/**
 * One client's writes until the server goes away: picks an operation on one of its own ids,
 * notes it in flight, and on a 2xx reply makes it acknowledged. Any other reply is a failure.
 */
async function client(pool: Pool, index: number, round: number, stopped: () => boolean, failures: string[]): Promise<void> {
  const ids = idsOf(index);
  while (!stopped()) {
    const id = ids[randomInt(0, ids.length - 1)]!;
    const current = acknowledged.get(id)!;
    const roll = random();
    try {
      if (roll < 0.15) {
        await bulk(pool, index, round, ids, failures);
      } else if (current === null || roll < 0.55) {
        const doc = newDoc(id, round);
        inFlight[index] = { what: `PUT ${id} seq ${doc.seq}`, outcomes: new Map([[id, doc]]) };
        const reply = await send(pool, 'PUT', docUrl(id), JSON.stringify(doc));
        settle(index, reply, [200, 201], failures, () => acknowledged.set(id, { doc, rev: revisionOf(reply) }));
      } else if (roll < 0.85) {
        const patch = newPatch(round);
        const doc = merged(current.doc, patch) as Doc;
        inFlight[index] = { what: `PATCH ${id} seq ${patch.seq}`, outcomes: new Map([[id, doc]]) };
        const reply = await send(pool, 'PATCH', docUrl(id), JSON.stringify(patch), 'application/merge-patch+json');
        settle(index, reply, [200], failures, () => acknowledged.set(id, { doc, rev: revisionOf(reply) }));
      } else {
        inFlight[index] = { what: `DELETE ${id}`, outcomes: new Map([[id, null]]) };
        const reply = await send(pool, 'DELETE', docUrl(id));
        settle(index, reply, [200], failures, () => acknowledged.set(id, null));
      }
    } catch (error) {
      // After the kill this is the server going away, and what was in flight stays in flight.
      if (!stopped()) failures.push(`${inFlight[index]?.what ?? 'a request'} failed before the kill: ${(error as Error).message}`);
      return;
    }
  }
}

/** An atomic bulk load of 2 to 4 of the client's ids: one transaction, all or nothing. */
async function bulk(pool: Pool, index: number, round: number, ids: string[], failures: string[]): Promise<void> {
  const first = randomInt(0, ids.length - 1);
  const chosen = Array.from({ length: randomInt(2, 4) }, (_, k) => ids[(first + 7 * k) % ids.length]!); // Distinct: IDS_PER_CLIENT divides none of 7, 14, 21.
  const docs = chosen.map((id) => newDoc(id, round));
  inFlight[index] = { what: `bulk ${chosen.join(',')} seq ${docs[0]!.seq}..${docs[docs.length - 1]!.seq}`, outcomes: new Map(chosen.map((id, i) => [id, docs[i]!])) };
  let reply = await send(pool, 'POST', `/collections/${COLLECTION}/bulk?atomic=true`, docs.map((doc) => JSON.stringify(doc)).join('\n') + '\n', 'application/x-ndjson');
  const report = JSON.parse(reply.body) as { stored?: number; tsn?: number };
  if (reply.status === 200 && report.stored !== docs.length) reply = { ...reply, status: -1 }; // Refused below.
  settle(index, reply, [200], failures, () => chosen.forEach((id, i) => acknowledged.set(id, { doc: docs[i]!, rev: report.tsn! })));
}

/** A reply arrived: on an expected 2xx the write is acknowledged; anything else is a failure. */
function settle(index: number, reply: Reply, ok: number[], failures: string[], acknowledge: () => void): void {
  const what = inFlight[index]!.what;
  inFlight[index] = undefined;
  if (!ok.includes(reply.status)) {
    failures.push(`${what}: ${reply.status} ${reply.body.slice(0, 300)}`);
    return;
  }
  acknowledge();
  totals.acknowledged++;
}

function revisionOf(reply: Reply): number {
  return (JSON.parse(reply.body) as { rev: number }).rev;
}

/**
 * Reads every id and compares it with the model: the acknowledged state, or the outcome of the
 * write that was in flight at the kill. Settles the model to what was found. Returns problems.
 */
async function verify(pool: Pool, round: number): Promise<string[]> {
  const found = new Map<string, State>();
  const ids = [...acknowledged.keys()];
  for (let i = 0; i < ids.length; i += VERIFY_CONCURRENCY) {
    await Promise.all(ids.slice(i, i + VERIFY_CONCURRENCY).map(async (id) => found.set(id, await read(pool, id))));
  }
  totals.verifiedReads += ids.length;
  const problems: string[] = [];
  const pendingOf = new Map<string, InFlight>();
  for (const pending of inFlight) for (const id of pending?.outcomes.keys() ?? []) pendingOf.set(id, pending!);
  for (const [id, state] of found) {
    const expected = acknowledged.get(id)!;
    const pending = pendingOf.get(id);
    const isAcknowledged = state === null ? expected === null : expected !== null && state.rev === expected.rev && isDeepStrictEqual(state.doc, expected.doc);
    const isPending = pending !== undefined && isDeepStrictEqual(state?.doc ?? null, pending.outcomes.get(id));
    if (!isAcknowledged && !isPending) {
      problems.push(`round ${round}: id ${id}\n  expected (acknowledged): ${describe(expected)}\n  or, if the write in flight was applied (${pending?.what ?? 'none'}): ${pending ? JSON.stringify(pending.outcomes.get(id))?.slice(0, 300) : '-'}\n  found: ${describe(state)}`);
    }
  }
  // A write in flight was applied whole or not at all, across every id it touched.
  for (const pending of new Set(pendingOf.values())) {
    const applied = [...pending.outcomes].map(([id, doc]) => isDeepStrictEqual(found.get(id)?.doc ?? null, doc) && !isDeepStrictEqual(acknowledged.get(id)?.doc ?? null, doc));
    if (new Set(applied).size > 1) problems.push(`round ${round}: ${pending.what} was applied to some of its ids only: ${applied.join(',')}`);
    if (applied.every(Boolean)) totals.inFlightApplied++;
    else totals.inFlightLost++;
  }
  for (const [id, state] of found) acknowledged.set(id, state);
  inFlight.fill(undefined);
  return problems;
}

async function read(pool: Pool, id: string): Promise<State> {
  const reply = await send(pool, 'GET', docUrl(id));
  if (reply.status === 404 && (JSON.parse(reply.body) as { code: string }).code === 'DOCKET_ERR_DOCUMENT_NOT_FOUND') return null;
  if (reply.status !== 200 || reply.etag === undefined) throw new Error(`GET ${id}: ${reply.status} ${reply.body.slice(0, 300)}`);
  let doc: Doc;
  try {
    doc = JSON.parse(reply.body) as Doc;
  } catch {
    throw new Error(`GET ${id}: not whole JSON: ${reply.body.slice(0, 300)}`);
  }
  return { doc, rev: Number(JSON.parse(reply.etag)) };
}

function describe(state: State): string {
  return state === null ? 'absent' : `rev ${state.rev} ${JSON.stringify(state.doc).slice(0, 300)}`;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

t.test(`${ROUNDS} SIGKILLs under load lose no acknowledged write (seed ${SEED})`, async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'docket-sigkill-'));
  let keep = false;
  t.teardown(() => {
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  });
  const fail = (round: number, server: RunningServer | undefined, problems: string[]): void => {
    keep = true;
    t.fail(`round ${round}: ${problems.length} problem(s); the data directory is kept at ${dataDir}`, { diagnostic: true });
    t.comment(`seed ${SEED}; replay the workload with DOCKET_SIGKILL_SEED=${SEED}\n${problems.slice(0, 20).join('\n')}`);
    if (server) t.comment(`--- server output of the last run ---\n${server.logs.join('').slice(-4000)}`);
  };
  const started = Date.now();
  for (let round = 0; round <= ROUNDS; round++) {
    const sync = round % 2 === 0 ? 'immediate' : 'periodic';
    let server: RunningServer;
    let phaseStarted = Date.now();
    const phaseEnds = (key: 'startMs' | 'verifyMs' | 'loadMs'): void => {
      totals[key] += Date.now() - phaseStarted;
      phaseStarted = Date.now();
    };
    try {
      server = await startServer({ dataDir, args: ['--sync', sync, '--sync-interval-ms', String(SYNC_INTERVAL_MS)] });
    } catch (error) {
      return fail(round, undefined, [`the server did not restart: ${(error as Error).message}`]);
    }
    phaseEnds('startMs');
    const pool = new Pool(server.url, { connections: CLIENTS + VERIFY_CONCURRENCY });
    try {
      if (round === 0) {
        const created = await send(pool, 'PUT', `/collections/${COLLECTION}`);
        if (created.status !== 201) return fail(round, server, [`PUT /collections/${COLLECTION}: ${created.status} ${created.body}`]);
      }
      const problems = await verify(pool, round).catch((error: unknown) => [`round ${round}: ${(error as Error).message}`]);
      phaseEnds('verifyMs');
      if (problems.length > 0) return fail(round, server, problems);
      if (round === ROUNDS) break; // The last start only verifies.
      let killed = false;
      const failures: string[] = [];
      const load = Array.from({ length: CLIENTS }, (_, index) => client(pool, index, round, () => killed, failures));
      await sleep(randomInt(KILL_DELAY_MS_MIN, KILL_DELAY_MS_MAX));
      if (server.process.exitCode !== null || server.process.signalCode !== null) return fail(round, server, ['the server exited before it was killed']);
      killed = true;
      await server.kill();
      await Promise.all(load);
      phaseEnds('loadMs');
      if (failures.length > 0) return fail(round, server, failures);
    } finally {
      await pool.destroy();
      await server.kill();
    }
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  // The rounds above fail on any lost or partial write; these say there were writes to lose and
  // that they were read back (each round reads every id ever acknowledged; an id written many
  // times between kills is read once, so reads can be fewer than acknowledgements).
  t.ok(totals.acknowledged > 0 && totals.verifiedReads > 0, `${ROUNDS} kills in ${seconds} s: ${totals.acknowledged} acknowledged writes all kept; ${totals.verifiedReads} verifying reads; time starting ${(totals.startMs / 1000).toFixed(1)} s, verifying ${(totals.verifyMs / 1000).toFixed(1)} s, under load ${(totals.loadMs / 1000).toFixed(1)} s`);
  t.ok(totals.inFlightApplied + totals.inFlightLost > 0, `writes in flight at a kill: ${totals.inFlightApplied} applied whole, ${totals.inFlightLost} not applied`);
  // And a clean stop after all that: SIGTERM exits 0.
  const last = await startServer({ dataDir });
  t.equal(await last.stop('SIGTERM'), 0, 'a graceful stop exits 0');
});
