// Every error leaves the server as `{statusCode, code, error, message}`: a DocketError keeps
// its code, a storage error its DOCKET_ERR_STORAGE_* code, and fastify's own errors (body too
// large, bad media type, schema validation, client errors) are translated to Docket codes, so
// a client never has to know which layer refused it.

import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { StorageError, StorageErrorCode } from '../../storage/index.js';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import { REQUEST_CODINGS } from './content-encoding.js';

/** The HTTP status of each document-layer and HTTP code. */
export const STATUS_OF: Readonly<Record<DocketErrorCode, number>> = {
  [DocketErrorCode.COLLECTION_NOT_FOUND]: 404,
  [DocketErrorCode.COLLECTION_EXISTS]: 409,
  [DocketErrorCode.COLLECTION_NAME_INVALID]: 400,
  [DocketErrorCode.COLLECTION_DEFINITION_INVALID]: 400,
  [DocketErrorCode.COLLECTION_LIMIT]: 409,
  [DocketErrorCode.DOCUMENT_NOT_FOUND]: 404,
  [DocketErrorCode.DOCUMENT_CONFLICT]: 412,
  [DocketErrorCode.DOCUMENT_INVALID]: 400,
  [DocketErrorCode.DOCUMENT_SCHEMA]: 422,
  [DocketErrorCode.ID_INVALID]: 400,
  [DocketErrorCode.FIELD_NAME_INVALID]: 400,
  [DocketErrorCode.LIMIT_EXCEEDED]: 413,
  [DocketErrorCode.BINLOG_CORRUPTION]: 500,
  [DocketErrorCode.RECOVERY_MISMATCH]: 500,
  [DocketErrorCode.READ_ONLY]: 503,
  [DocketErrorCode.CLOSED]: 503,
  [DocketErrorCode.INVALID_ARGUMENT]: 400,
  [DocketErrorCode.DOCUMENT_FIELD_DUPLICATE]: 400,
  [DocketErrorCode.BODY_INVALID]: 400,
  [DocketErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [DocketErrorCode.ROUTE_NOT_FOUND]: 404,
  [DocketErrorCode.UNAVAILABLE]: 503,
  [DocketErrorCode.CHANGES_PURGED]: 410,
  [DocketErrorCode.REQUEST_TIMEOUT]: 408,
  [DocketErrorCode.INTERNAL]: 500,
  [DocketErrorCode.AUTH_REQUIRED]: 401,
  [DocketErrorCode.AUTH_FORBIDDEN]: 403,
  [DocketErrorCode.OVERLOADED]: 503,
  [DocketErrorCode.ENCODING_UNSUPPORTED]: 415,
  [DocketErrorCode.ENCODING_INVALID]: 400,
  [DocketErrorCode.PATCH_INVALID]: 400,
  [DocketErrorCode.PATCH_CONFLICT]: 409,
  [DocketErrorCode.PATCH_TEST_FAILED]: 409,
  [DocketErrorCode.STANDBY_READ_ONLY]: 421,
  [DocketErrorCode.REPLICATION_TERM_STALE]: 409,
  [DocketErrorCode.CHECKPOINT_NEEDED]: 409,
  [DocketErrorCode.REPLICATION_QUORUM_LOST]: 503,
  [DocketErrorCode.REPLICATION_TIMEOUT]: 503,
  [DocketErrorCode.REPLICATION_BEHIND]: 503,
  [DocketErrorCode.REPLICATION_ROLE]: 409,
  [DocketErrorCode.STANDBY_REBUILD_FAILED]: 503,
  [DocketErrorCode.CHECKPOINT_TARGET_NOT_EMPTY]: 409,
  [DocketErrorCode.CHECKPOINT_CORRUPT]: 400,
  [DocketErrorCode.CHECKPOINT_TRUNCATED]: 400,
  [DocketErrorCode.CHECKPOINT_INCOMPLETE]: 500,
  [DocketErrorCode.INDEX_NOT_FOUND]: 404,
  [DocketErrorCode.INDEX_EXISTS]: 409,
  [DocketErrorCode.INDEX_DEFINITION_INVALID]: 400,
  [DocketErrorCode.INDEX_UNIQUE_CONFLICT]: 409,
  [DocketErrorCode.INDEX_KEY_TOO_LARGE]: 413,
  [DocketErrorCode.QUERY_INVALID]: 400,
  [DocketErrorCode.QUERY_NO_INDEX]: 400,
};

/** Storage errors that reach a client: the disk is full or failing, or the engine closed. */
const STORAGE_STATUS: Partial<Record<string, number>> = {
  [StorageErrorCode.NO_SPACE]: 507,
  [StorageErrorCode.READ_ONLY]: 503,
  [StorageErrorCode.CLOSED]: 503,
};

export interface ErrorBody {
  readonly statusCode: number;
  readonly code: string;
  readonly error: string;
  readonly message: string;
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** What a thrown value becomes on the wire. */
export function describeError(error: unknown): ErrorBody {
  if (error instanceof DocketError) return errorBody(STATUS_OF[error.code], error.code, error.message);
  if (error instanceof StorageError) return errorBody(STORAGE_STATUS[error.code] ?? 500, error.code, error.message);
  const fastify = error as Partial<FastifyError> & { validation?: unknown };
  switch (fastify.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return errorBody(413, DocketErrorCode.LIMIT_EXCEEDED, `the request body is larger than the server's limit (${fastify.message ?? ''})`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return errorBody(415, DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, 'bodies are application/json (or application/merge-patch+json or application/json-patch+json for PATCH, application/x-ndjson for bulk)');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return errorBody(400, DocketErrorCode.BODY_INVALID, fastify.message ?? 'bad request body');
    case 'FST_ERR_BAD_URL':
      return errorBody(400, DocketErrorCode.INVALID_ARGUMENT, 'the URL path is not valid percent-encoded UTF-8');
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return errorBody(414, DocketErrorCode.LIMIT_EXCEEDED, 'a name or id in the URL path is longer than any the server takes');
  }
  if (fastify.validation !== undefined) return errorBody(400, DocketErrorCode.INVALID_ARGUMENT, fastify.message ?? 'invalid request');
  const status = fastify.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return errorBody(status, DocketErrorCode.INVALID_ARGUMENT, fastify.message ?? 'bad request');
  return errorBody(500, DocketErrorCode.INTERNAL, 'internal error; the server log has the details');
}

/**
 * 5xx answers are logged at error with the stack, except 503 DOCKET_ERR_UNAVAILABLE (recovering
 * or shutting down): that is expected, and logged once per phase at info (Docket.unavailableNotice).
 */
function logFailure(request: FastifyRequest, body: ErrorBody, error: unknown): void {
  if (body.code === DocketErrorCode.UNAVAILABLE) {
    const docket = request.server.hasDecorator('docket') ? request.server.docket : undefined;
    const notice = docket?.unavailableNotice();
    if (notice !== undefined) request.log.info({ progress: docket?.recoveryProgress }, notice);
    return;
  }
  if (body.statusCode >= 500) request.log.error({ err: error }, 'request failed');
}

/** A path of the shape /collections/{c}/docs/a/b: an id holding a raw `/`. */
const SLASHED_ID = /^\/collections\/[^/]+\/docs\/[^/]*\//;

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const body = describeError(error);
    logFailure(request, body, error);
    // RFC 9110 §15.5.16: a 415 for a content coding says which codings would have done.
    if (body.code === DocketErrorCode.ENCODING_UNSUPPORTED) void reply.header('accept-encoding', REQUEST_CODINGS.join(', '));
    void reply.code(body.statusCode).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    const hint = SLASHED_ID.test(path) ? `; a document id holding "/" must be percent-encoded as %2F (${path.replace(/^(\/collections\/[^/]+\/docs\/)(.*)$/, (_, head: string, id: string) => head + id.replaceAll('/', '%2F'))})` : '';
    const body = errorBody(404, DocketErrorCode.ROUTE_NOT_FOUND, `no route for ${request.method} ${path}${hint}`);
    void reply.code(404).type('application/json; charset=utf-8').send(body);
  });
}

/**
 * Errors the router raises before any route or hook runs (a path that does not decode, a path
 * parameter over maxParamLength): fastify would answer them in its own shape, not Docket's.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const body = describeError(error);
  logFailure(request, body, error);
  void reply.code(body.statusCode).type('application/json; charset=utf-8').send(body);
}

/**
 * Errors on a connection before a request is routed (a request timeout, a malformed request
 * line, headers too large): answer in the same JSON shape when the socket can still take it.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, DocketErrorCode.REQUEST_TIMEOUT, 'the request was not received within the request timeout']
    : error.code === 'HPE_HEADER_OVERFLOW' ? [431, DocketErrorCode.LIMIT_EXCEEDED, 'the request headers are too large']
    : [400, DocketErrorCode.BODY_INVALID, `malformed HTTP request (${error.code ?? error.message})`];
  const body = `${JSON.stringify(errorBody(status, code, message))}\n`;
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}
