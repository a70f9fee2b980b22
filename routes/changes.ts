// The change feed: GET /changes?since=TSN as one page (feed=normal), as a long poll that waits
// for the first change after `since` (feed=longpoll), or as a stream of server-sent events
// (GET /changes/stream; feed=sse on /changes answers the same, for clients written before it).
// Pages come from store.changes (src/changes.ts): whole acknowledged transactions. `since=now`
// starts from the last acknowledged TSN; `include_docs=true` adds each put's and patch's
// document as stored, spliced in as its JSON text (never re-serialised).
//
// The event stream has a path of its own so that the contract gives each operation one response
// media type: a generated client's `data` for GET /changes is then the JSON page, not a union
// with the stream's text.
//
// In the event stream every change is `event: change` with the change as JSON in `data:`; only
// the last change of each transaction carries `id: <tsn>`, so the Last-Event-ID a client
// resumes from is always a transaction it has seen whole.

import type { FastifyBaseLogger, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Change, ChangesOptions, ChangesPage } from '../src/changes.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import type { Docket } from '../server/http/context.js';
import { describeError } from '../server/http/errors.js';
import * as limits from '../src/limits.js';
import type { DocumentStore } from '../src/store.js';

export interface ChangesRoutesOptions {
  readonly docket: Docket;
  /** Comment lines on an event stream this often (tests shorten it). */
  readonly sseHeartbeatMs?: number;
}

interface ChangesQuery {
  /** A TSN, or `now`. */
  since?: string;
  limit?: number;
  collection?: string;
  feed?: 'normal' | 'longpoll' | 'sse';
  timeout?: number;
  include_docs?: boolean;
}

const changesQuery = {
  type: 'object',
  properties: {
    since: { type: 'string', pattern: '^(now|0|[1-9][0-9]{0,15})$' },
    include_docs: { type: 'boolean' },
    limit: { type: 'integer', minimum: 1, maximum: limits.CHANGES_LIMIT_MAX },
    // A name no collection has is not an error, it only filters everything out: the feed also
    // names collections dropped long ago, and one may be created under that name later.
    collection: { type: 'string' },
    feed: { type: 'string', enum: ['normal', 'longpoll', 'sse'] },
    timeout: { type: 'integer', minimum: 0, maximum: limits.LONGPOLL_TIMEOUT_MS_MAX },
  },
} as const;

const streamQuery = {
  type: 'object',
  properties: { since: changesQuery.properties.since, include_docs: changesQuery.properties.include_docs, limit: changesQuery.properties.limit, collection: changesQuery.properties.collection },
} as const;

export const changesRoutes: FastifyPluginAsync<ChangesRoutesOptions> = async (app, { docket, sseHeartbeatMs = limits.SSE_HEARTBEAT_MS }) => {
  app.get<{ Querystring: ChangesQuery }>('/changes', { schema: { querystring: changesQuery } }, async (request, reply) => serve(request, reply, request.query.feed ?? 'normal'));
  app.get<{ Querystring: ChangesQuery }>('/changes/stream', { schema: { querystring: streamQuery } }, async (request, reply) => serve(request, reply, 'sse'));

  async function serve(request: FastifyRequest<{ Querystring: ChangesQuery }>, reply: FastifyReply, feed: 'normal' | 'longpoll' | 'sse'): Promise<unknown> {
    const store = docket.store;
    const { limit, collection, include_docs: includeDocs, timeout = limits.LONGPOLL_TIMEOUT_MS_DEFAULT } = request.query;
    const since = sinceOf(request.query.since, store);
    const options: ChangesOptions = { ...(limit !== undefined ? { limit } : {}), ...(collection !== undefined ? { collection } : {}), ...(includeDocs ? { includeDocs } : {}) };
    if (feed === 'normal') return sendPage(reply, await store.changes(since, options));
    const stop = stopOnClose(reply.raw, docket.shutdownSignal);
    try {
      if (feed === 'longpoll') return sendPage(reply, await longPoll(store, since, options, timeout, stop.signal));
      const start = lastEventId(request.headers['last-event-id']) ?? since;
      // The first page before the stream starts, so that a purged or bad resume point is an
      // ordinary error response (410, 400), not an event.
      const first = await store.changes(start, options);
      reply.hijack(); // From here on the handler owns the response; fastify sends nothing.
      await streamEvents(reply.raw, start, first, { store, options, heartbeatMs: sseHeartbeatMs, signal: stop.signal, log: request.log });
      return undefined;
    } finally {
      stop.dispose();
    }
  }
};

/** `since`: a TSN, `now` (the last acknowledged TSN), or 0 when absent. */
function sinceOf(text: string | undefined, store: DocumentStore): number {
  if (text === undefined) return 0;
  if (text === 'now') return store.changesEnd;
  const since = Number(text);
  if (!Number.isSafeInteger(since)) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `since must be a TSN of at most ${Number.MAX_SAFE_INTEGER}, or now`);
  return since;
}

function sendPage(reply: FastifyReply, page: ChangesPage): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(`{"changes":[${page.changes.map(changeText).join(',')}],"last":${page.last}}`);
}

/** A change as JSON; a document it carries goes in as its stored text. */
export function changeText(change: Change): string {
  if (!('doc' in change) || change.doc === undefined) return JSON.stringify(change);
  const { doc, ...rest } = change;
  const text = JSON.stringify(rest);
  return `${text.slice(0, -1)},"doc":${doc ?? 'null'}}`;
}

/**
 * Waits up to `timeoutMs` for a change after `since` that passes the filter, and answers with
 * the first page that has one, or with none (and how far it looked) on timeout or abort.
 */
async function longPoll(store: DocumentStore, since: number, options: ChangesOptions, timeoutMs: number, signal: AbortSignal): Promise<ChangesPage> {
  const deadlineMs = Date.now() + timeoutMs;
  let last = since;
  for (;;) {
    const page = await store.changes(last, options);
    if (page.changes.length > 0) return page;
    const scanned = page.last > last; // Transactions there were, but the filter took them all.
    last = page.last;
    const remainingMs = deadlineMs - Date.now();
    if (signal.aborted || remainingMs <= 0) return { changes: [], last };
    if (!scanned && !(await store.waitForChanges(last, remainingMs, signal))) return { changes: [], last };
  }
}

interface StreamContext {
  readonly store: DocumentStore;
  readonly options: ChangesOptions;
  readonly heartbeatMs: number;
  /** Aborted when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
  readonly log: FastifyBaseLogger;
}

/** Writes pages as events (`first` is the one after `start`) until the stream is stopped, then ends the response. */
async function streamEvents(response: ServerResponse, start: number, first: ChangesPage, { store, options, heartbeatMs, signal, log }: StreamContext): Promise<void> {
  response.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  response.flushHeaders();
  // Skipped while the client is not reading: the pending events show the stream is alive.
  const heartbeat = setInterval(() => void (response.writableNeedDrain || response.write(': heartbeat\n\n')), heartbeatMs);
  let page = first;
  let cursor = start;
  try {
    for (;;) {
      if (page.changes.length > 0 && !response.write(eventsText(page.changes))) await drained(response, signal);
      // Nothing new since the last page: wait for more. Otherwise there may be more at once.
      const advanced = page.last > cursor;
      cursor = page.last;
      if (!advanced) await store.waitForChanges(cursor, limits.LONGPOLL_TIMEOUT_MS_MAX, signal);
      if (signal.aborted) return;
      page = await store.changes(cursor, options);
    }
  } catch (error) {
    // Say why the stream ends (say, the client fell behind a purge), unless nobody listens.
    const body = describeError(error);
    if (body.statusCode >= 500) log.error({ err: error }, 'change stream failed');
    if (!signal.aborted) response.write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
  } finally {
    clearInterval(heartbeat);
    response.end();
  }
}

/** The events of a page; a page holds whole transactions, so its last change ends one. */
export function eventsText(changes: readonly Change[]): string {
  let text = '';
  for (let i = 0; i < changes.length; i++) {
    const change = changes[i]!;
    const endsTransaction = changes[i + 1]?.tsn !== change.tsn;
    text += `${endsTransaction ? `id: ${change.tsn}\n` : ''}event: change\ndata: ${changeText(change)}\n\n`;
  }
  return text;
}

/** The resume point of a reconnecting event-stream client; undefined when it sent none. */
function lastEventId(header: string | string[] | undefined): number | undefined {
  const text = (Array.isArray(header) ? header.join(',') : header ?? '').trim();
  if (text === '') return undefined;
  if (/^(0|[1-9][0-9]{0,15})$/.test(text) && Number.isSafeInteger(Number(text))) return Number(text);
  throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `Last-Event-ID must be a TSN this feed sent, got ${JSON.stringify(text.slice(0, 40))}`);
}

/** An abort signal for the request: aborted when the client goes away or the server shuts down. */
function stopOnClose(response: ServerResponse, shutdown: AbortSignal): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  if (shutdown.aborted) abort();
  shutdown.addEventListener('abort', abort, { once: true });
  response.once('close', abort);
  return {
    signal: controller.signal,
    dispose: () => {
      shutdown.removeEventListener('abort', abort);
      response.off('close', abort);
    },
  };
}

/** Resolves when the response can take more, or on abort. */
function drained(response: ServerResponse, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve(); // A response already closed would never drain.
  return new Promise((resolve) => {
    const done = (): void => {
      response.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    response.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}
