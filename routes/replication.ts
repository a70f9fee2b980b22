// Replication over HTTP (docs/REPLICATION.md):
//   GET  /replication/binlog    a standby's stream of framed binlog records (permission replicate)
//   GET  /replication/checkpoint  a checkpoint a new standby starts from, with the term history (replicate)
//   POST /replication/feedback  a standby's written / durable / replayed TSNs (replicate)
//   POST /admin/promote         standby -> primary (admin)
//   POST /admin/replica-of      a standby follows another primary, without a restart (admin)
// and the hooks every route shares: a standby refuses writes naming its primary; a write waits
// for its commit level (X-Docket-Commit-Level, else --commit-level) before it is answered; a
// read naming a TSN (X-Docket-Min-TSN or min_tsn=) waits, bounded, until it is visible here.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import { isCommitLevel, type CommitLevel, type Feedback } from '../src/replication/levels.js';
import type { Docket } from '../server/http/context.js';
import { permissionOf } from '../server/auth/roles.js';
import { parseJson } from '../server/http/json.js';
import { JsonText } from '../src/documents/json-text.js';
import type { TermState } from '../src/replication/term.js';
import { flushOf, sendCheckpoint } from './admin.js';
import { FRAME_KIND_OFFSET, FRAME_RECORD } from '../src/replication/frame.js';
import { REPLICA_OF_TOKEN_CHARS_MAX, REPLICA_OF_URL_CHARS_MAX } from '../src/limits.js';

const WRITE_METHODS = new Set(['PUT', 'POST', 'PATCH', 'DELETE']);
const OWN_ROUTES = new Set(['/replication/binlog', '/replication/checkpoint', '/replication/feedback', '/admin/promote', '/admin/replica-of']);
const REPLICA_OF_URL_BYTES_MAX = REPLICA_OF_URL_CHARS_MAX;
const REPLICA_OF_TOKEN_BYTES_MAX = REPLICA_OF_TOKEN_CHARS_MAX;

/** A re-point body: {"primary": "http(s)://host:port", "token"?: "..."}. */
function replicaOfBody(body: unknown): { primary: string; token: string | undefined } {
  const value = (body instanceof JsonText ? parseJson(body.bytes) : body) as { primary?: unknown; token?: unknown } | null;
  const bad = (why: string): DocketError => new DocketError(DocketErrorCode.BODY_INVALID, `a re-point is {"primary": "http(s)://host:port", "token"?: "..."}: ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('not a JSON object');
  for (const key of Object.keys(value)) if (key !== 'primary' && key !== 'token') throw bad(`unknown member ${JSON.stringify(key.slice(0, 40))}`);
  if (typeof value.primary !== 'string' || value.primary.length === 0 || value.primary.length > REPLICA_OF_URL_BYTES_MAX) throw bad(`primary must be a URL of 1 to ${REPLICA_OF_URL_BYTES_MAX} characters`);
  let url: URL;
  try {
    url = new URL(value.primary);
  } catch {
    throw bad(`primary ${JSON.stringify(value.primary.slice(0, 80))} is not a URL`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') throw bad('primary must be http:// or https://, without query, fragment or credentials');
  if (value.token !== undefined && (typeof value.token !== 'string' || value.token.length === 0 || value.token.length > REPLICA_OF_TOKEN_BYTES_MAX)) throw bad(`token must be a string of 1 to ${REPLICA_OF_TOKEN_BYTES_MAX} characters`);
  return { primary: value.primary.replace(/\/+$/, ''), token: value.token as string | undefined };
}
const TSN_PATTERN = /^(0|[1-9][0-9]{0,15})$/;
/** The binlog stream's writes: frames gathered up to this many bytes (see the route). */
const STREAM_WRITE_BYTES = 256 * 1024;

const binlogQuery = {
  type: 'object',
  required: ['name', 'from'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
    from: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
    last_term: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 },
    term: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 },
  },
} as const;

/** A feedback body: {name, term, written, durable, replayed}, TSNs and term whole numbers. */
function feedbackOf(body: unknown): Feedback {
  const value = body instanceof JsonText ? parseJson(body.bytes) : body;
  const report = value as Partial<Record<keyof Feedback, unknown>> | null;
  const whole = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (typeof report !== 'object' || report === null || typeof report.name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(report.name) || !whole(report.term) || !whole(report.written) || !whole(report.durable) || !whole(report.replayed)) {
    throw new DocketError(DocketErrorCode.BODY_INVALID, 'feedback is {"name", "term", "written", "durable", "replayed"}: a standby name and whole numbers');
  }
  return { name: report.name, term: report.term, written: report.written, durable: report.durable, replayed: report.replayed };
}

/** The commit level a request asked for, kept from preHandler to preSerialization. */
const levels = new WeakMap<FastifyRequest, CommitLevel>();

export const replicationRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  app.get<{ Querystring: { name: string; from: number; last_term: number; term: number } }>('/replication/binlog', { schema: { querystring: binlogQuery } }, async (request, reply) => {
    docket.store;
    const source = docket.replication?.source;
    if (!source) throw new DocketError(DocketErrorCode.REPLICATION_ROLE, `this server is a standby of ${docket.replication?.primary ?? 'another server'}: pull from a primary`);
    const { name, from, last_term: lastTerm, term } = request.query;
    const stop = new AbortController();
    const onEnd = (): void => stop.abort();
    reply.raw.once('close', onEnd);
    docket.shutdownSignal.addEventListener('abort', onEnd, { once: true });
    try {
      const frames = source.open({ name, from, lastTerm, term }, stop.signal);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store', 'x-docket-term': String(source.term) });
      // Frames go out in writes of up to STREAM_WRITE_BYTES: records are gathered until a
      // frame that is not a record (the source sends a STATUS at the end of every run it has
      // and every STATUS_EVERY_BYTES within one) or the size is reached, so a standby reads a
      // few large chunks rather than one small chunk per record.
      let gathered: Buffer[] = [];
      let gatheredBytes = 0;
      const send = async (): Promise<void> => {
        const chunk = gathered.length === 1 ? gathered[0]! : Buffer.concat(gathered, gatheredBytes);
        gathered = [];
        gatheredBytes = 0;
        if (!raw.write(chunk)) await new Promise<void>((resolve) => {
          const done = (): void => {
            raw.off('drain', done);
            raw.off('close', done);
            resolve();
          };
          raw.once('drain', done);
          raw.once('close', done);
        });
      };
      try {
        for await (const frame of frames) {
          gathered.push(frame);
          gatheredBytes += frame.length;
          if (frame[FRAME_KIND_OFFSET] !== FRAME_RECORD || gatheredBytes >= STREAM_WRITE_BYTES) await send();
          if (stop.signal.aborted) break;
        }
        if (gatheredBytes > 0 && !stop.signal.aborted) await send();
      } catch (error) {
        request.log.warn({ err: error, standby: name }, 'replication stream ended by an error');
      }
      raw.end();
      return undefined;
    } finally {
      reply.raw.off('close', onEnd);
      docket.shutdownSignal.removeEventListener('abort', onEnd);
      stop.abort();
    }
  });

  // A new standby starts from this (server/replication.ts, seedStandby), then pulls the binlog
  // from the checkpoint's TSN + 1. The term history says in which term each of its records was
  // written, so the standby's first pull passes the log-matching check.
  app.get<{ Querystring: { flush?: string } }>('/replication/checkpoint', { exposeHeadRoute: false }, async (request, reply) => {
    docket.store;
    const source = docket.replication?.source;
    if (!source) throw new DocketError(DocketErrorCode.REPLICATION_ROLE, `this server is a standby of ${docket.replication?.primary ?? 'another server'}: a standby starts from a primary's checkpoint`);
    const checkpoint = await docket.store.checkpoint({ flush: flushOf(request.query.flush) });
    const { term, history } = docket.replication!.terms.state;
    const own = history.filter((start) => start.startTsn <= checkpoint.descriptor.tsn);
    const terms: TermState = { term, history: own.length > 0 ? own : history.slice(0, 1) };
    return sendCheckpoint(reply, checkpoint, { 'x-docket-term-history': JSON.stringify(terms) });
  });

  app.post<{ Body: unknown }>('/replication/feedback', async (request, reply) => {
    docket.store;
    const source = docket.replication?.source;
    if (!source) throw new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this server is a standby: feedback goes to a primary');
    source.feedback(feedbackOf(request.body));
    return reply.code(204).send();
  });

  app.post('/admin/promote', async () => {
    docket.store;
    const node = docket.replication;
    if (!node) throw new DocketError(DocketErrorCode.UNAVAILABLE, 'replication is not started');
    const started = Date.now();
    const { term, tsn } = await node.promote();
    return { role: 'primary', term, tsn, promoteMs: Date.now() - started };
  });

  // Re-points a standby (docs/REPLICATION.md): not persisted, a restart follows --replica-of again.
  app.post<{ Body: unknown }>('/admin/replica-of', async (request) => {
    docket.store;
    const { primary, token } = replicaOfBody(request.body);
    if (!docket.repointStandby) throw new DocketError(DocketErrorCode.UNAVAILABLE, 'replication is not started');
    const { previous } = await docket.repointStandby(primary, token);
    return { role: 'standby', primary, previous };
  });

  // ---- hooks shared by every route ----

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const route = request.routeOptions.url;
    // Replication's own routes and the admin routes (promote, checkpoints) write no documents.
    if (route === undefined || OWN_ROUTES.has(route) || route.startsWith('/admin/')) return;
    const node = docket.replication;
    // A POST that only reads (find, explain, count: permission read) is a read.
    if (WRITE_METHODS.has(request.method) && permissionOf(request.method, route) !== 'read') {
      if (!node) return;
      if (node.role === 'standby') {
        void reply.header('x-docket-primary', node.primary ?? '');
        throw new DocketError(DocketErrorCode.STANDBY_READ_ONLY, `this server is a standby of ${node.primary}: send writes there`);
      }
      const level = commitLevelOf(request, docket);
      if (level !== 'local') {
        node.source?.admit(level);
        levels.set(request, level);
      }
      return;
    }
    const minTsn = minTsnOf(request);
    if (minTsn === undefined) return;
    const store = docket.store;
    if (store.replayedTsn >= minTsn) return;
    const waitMs = docket.config.readWaitMsMax;
    if (waitMs > 0 && (await store.waitReplayed(minTsn, waitMs, docket.shutdownSignal))) return;
    void reply.header('retry-after', '1');
    throw new DocketError(DocketErrorCode.REPLICATION_BEHIND, `this server has made TSN ${store.replayedTsn} visible, not yet ${minTsn} (waited ${waitMs} ms)`);
  });

  app.addHook('preSerialization', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const level = levels.get(request);
    if (level === undefined || reply.statusCode >= 300) return payload;
    const tsn = (payload as { tsn?: unknown } | null)?.tsn;
    const source = docket.replication?.source;
    if (typeof tsn !== 'number' || !source) return payload;
    await source.waitFor(tsn, level);
    return payload;
  });
};

function commitLevelOf(request: FastifyRequest, docket: Docket): CommitLevel {
  const header = request.headers['x-docket-commit-level'];
  if (header === undefined) return docket.config.commitLevel;
  const value = Array.isArray(header) ? header[0]! : header;
  if (!isCommitLevel(value)) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `X-Docket-Commit-Level must be local, remote_write, remote_flush or remote_apply, not ${JSON.stringify(value)}`);
  return value;
}

function minTsnOf(request: FastifyRequest): number | undefined {
  const header = request.headers['x-docket-min-tsn'];
  const query = (request.query as Record<string, unknown> | undefined)?.['min_tsn'];
  const value = header ?? query;
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? String(value[0]) : String(value);
  if (!TSN_PATTERN.test(text)) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `X-Docket-Min-TSN / min_tsn must be a TSN (a whole number), not ${JSON.stringify(text)}`);
  return Number(text);
}

// Not encapsulated (what fastify-plugin does): the hooks apply to the whole app.
Object.assign(replicationRoutes, { [Symbol.for('skip-override')]: true });
