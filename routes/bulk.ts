// Bulk loading: POST /collections/{collection}/bulk with an application/x-ndjson body, one
// document a line. The body is streamed (app.ts leaves NDJSON unparsed) into src/bulk.ts; the
// answer is a report of what was stored and which lines failed, or for `atomic=true` either
// everything or nothing.
//
// NB: a load streams for as long as its client sends. The server's requestTimeout
// (config.requestTimeoutMs, default 5 minutes) bounds the whole request, body included: past it
// Node answers 408 and closes the connection, and what was acknowledged before stays stored.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { bulkLoad, BulkLinesFailed } from '../src/bulk.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import { decodeStream, requestCodings } from '../server/http/content-encoding.js';
import type { Docket } from '../server/http/context.js';
import { describeError } from '../server/http/errors.js';
import { NDJSON_MEDIA_TYPE } from '../server/http/json.js';
import * as limits from '../src/limits.js';


interface BulkQuery {
  id_field: string;
  atomic: boolean;
}

const collectionParams = {
  type: 'object',
  properties: { collection: { type: 'string' } },
  required: ['collection'],
} as const;

const bulkQuery = {
  type: 'object',
  properties: {
    // Characters here; the handler checks the bound in UTF-8 bytes.
    id_field: { type: 'string', minLength: 1, maxLength: limits.FIELD_NAME_SIZE_BYTES_MAX, default: 'id' },
    atomic: { type: 'boolean', default: false },
  },
} as const;

/** Per connection: settles when its latest bulk request has cut its last line. */
const cutting = new WeakMap<object, Promise<void>>();
/** Per bulk request: the load before it on its connection, and what says it has cut its own last line. */
const order = new WeakMap<object, { readonly previous: Promise<void> | undefined; readonly onCut: () => void }>();
const BULK_PATH = /^\/collections\/[^/?]+\/bulk(?:\?|$)/;

/**
 * Takes a bulk request's place in its connection's order when Node hands it over, in arrival
 * order and synchronously: by the time the handler runs, hooks that await (access control,
 * load shedding, replication) may have let a later pipelined request's handler run first, so
 * the handler cannot be what orders them. A request that never reaches the handler (refused by
 * a hook) lets the next one go when its response closes.
 */
function takePlace(request: IncomingMessage, response: ServerResponse): void {
  if (request.method !== 'POST' || !BULK_PATH.test(request.url ?? '')) return;
  const socket = request.socket;
  const previous = cutting.get(socket);
  let onCut!: () => void;
  cutting.set(socket, new Promise<void>((resolve) => (onCut = resolve)));
  order.set(request, { previous, onCut });
  response.once('close', onCut);
}

export const bulkRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  app.server.on('request', takePlace);
  app.post<{ Params: { collection: string }; Querystring: BulkQuery }>(
    '/collections/:collection/bulk',
    // The media type is checked before any body parser runs: a JSON body would otherwise be
    // parsed, and refused as bad JSON, before the route could say it is the wrong type.
    { schema: { params: collectionParams, querystring: bulkQuery }, onRequest: requireNdjson },
    async (request, reply) => {
      const { id_field: idField, atomic } = request.query;
      if (Buffer.byteLength(idField, 'utf8') > limits.FIELD_NAME_SIZE_BYTES_MAX) {
        throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `id_field is at most ${limits.FIELD_NAME_SIZE_BYTES_MAX} bytes of UTF-8`);
      }
      // Requests pipelined on one connection cut their lines in order (see src/bulk.ts, takePlace).
      const { previous, onCut } = order.get(request.raw) ?? { previous: undefined, onCut: () => undefined };
      const options = { collection: request.params.collection, idField, atomic, lineBytesMax: docket.config.bulkLineBytesMax, signal: docket.shutdownSignal, onCut, ...(previous ? { previous } : {}) };
      // A compressed body is decoded as it streams, bounded (server/http/content-encoding.ts).
      const codings = requestCodings(request.headers['content-encoding']);
      const body = codings.length === 0 ? request.raw : decodeStream(request.raw, codings, docket.config.bodyLimitBytes);
      try {
        return await bulkLoad(docket.store, body, options);
      } catch (error) {
        // The rest of an unread body is not worth draining: answer and close the connection.
        if (!request.raw.readableEnded) void reply.header('connection', 'close');
        if (!(error instanceof BulkLinesFailed)) throw error;
        const { errors, errorsTruncated } = error.report;
        const body = describeError(error);
        return reply.code(body.statusCode).type('application/json; charset=utf-8').send({ ...body, errors, errorsTruncated });
      }
    },
  );
};

async function requireNdjson(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const type = request.headers['content-type'];
  try {
    if (type?.split(';')[0]!.trim().toLowerCase() !== NDJSON_MEDIA_TYPE) throw new DocketError(DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, `a bulk body must be ${NDJSON_MEDIA_TYPE}, not ${type ?? 'absent'}`);
    requestCodings(request.headers['content-encoding']); // An unknown coding is 415 before anything is read.
  } catch (error) {
    void reply.header('connection', 'close'); // The body is never read.
    throw error;
  }
}
