// Documents: PUT (create or replace), POST (create with a generated id), GET/HEAD (optionally
// only some fields; If-Match then If-None-Match), PATCH (JSON Merge Patch or JSON Patch), DELETE, and listing by id
// with a keyset cursor.
// The revision is the TSN that last wrote a document and its strong ETag; If-Match and
// If-None-Match become store conditions, so a precondition is checked atomically with the write.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import type { Docket } from '../server/http/context.js';
import { generateId } from '../src/documents/ids.js';
import { JsonPatchText, parseJsonPatch } from '../server/http/json.js';
import { etag, ignoredBody, jsonBody, matches, parseTagList, parseWeakTagList } from '../server/http/request.js';
import * as limits from '../src/limits.js';
import type { WriteConditions, WriteResult } from '../src/store.js';

interface DocumentParams {
  collection: string;
  id: string;
}

interface ReadQuery {
  fields?: string | string[];
}

interface ListQuery extends ReadQuery {
  limit?: number;
  after?: string;
  prefix?: string;
}

const documentParams = {
  type: 'object',
  properties: { collection: { type: 'string' }, id: { type: 'string' } },
  required: ['collection', 'id'],
} as const;

const collectionParams = {
  type: 'object',
  properties: { collection: { type: 'string' } },
  required: ['collection'],
} as const;

const listQuery = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: limits.LIST_LIMIT_MAX },
    after: { type: 'string' },
    prefix: { type: 'string' },
  },
} as const;

export const documentRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  app.put<{ Params: DocumentParams }>('/collections/:collection/docs/:id', { schema: { params: documentParams } }, async (request, reply) => {
    const { collection, id } = request.params;
    const document = jsonBody(request, 'a document');
    const result = await docket.store.put(collection, id, document, writeConditions(request, true));
    return written(reply, collection, result, result.created ? 201 : 200);
  });

  app.post<{ Params: { collection: string } }>('/collections/:collection/docs', { schema: { params: collectionParams } }, async (request, reply) => {
    const { collection } = request.params;
    const document = jsonBody(request, 'a document');
    const result = await docket.store.put(collection, generateId(), document, { ifAbsent: true });
    return written(reply, collection, result, 201);
  });

  app.patch<{ Params: DocumentParams }>('/collections/:collection/docs/:id', { schema: { params: documentParams } }, async (request, reply) => {
    const { collection, id } = request.params;
    // A JSON Patch (RFC 6902) by its media type; a JSON Merge Patch (RFC 7396) otherwise.
    const patch = request.body instanceof JsonPatchText ? parseJsonPatch(request.body.bytes) : jsonBody(request, 'a merge patch');
    const result = await docket.store.patch(collection, id, patch, writeConditions(request, false));
    return written(reply, collection, result, 200);
  });

  app.delete<{ Params: DocumentParams }>('/collections/:collection/docs/:id', { schema: { params: documentParams } }, async (request, reply) => {
    const { collection, id } = request.params;
    ignoredBody(request);
    const result = await docket.store.delete(collection, id, writeConditions(request, false));
    return written(reply, collection, result, 200);
  });

  app.get<{ Params: DocumentParams; Querystring: ReadQuery }>('/collections/:collection/docs/:id', { schema: { params: documentParams } }, async (request, reply) => {
    const { collection, id } = request.params;
    const fields = fieldsOf(request.query.fields);
    const document = await docket.store.get(collection, id, fields ? { fields } : {});
    if (!document) throw new DocketError(DocketErrorCode.DOCUMENT_NOT_FOUND, `no document ${JSON.stringify(id)} in ${collection}`);
    void reply.header('etag', etag(document.revision));
    readPreconditions(request, id, document.revision);
    const unchanged = parseWeakTagList(request.headers['if-none-match']);
    if (unchanged !== undefined && matches(unchanged, document.revision)) return reply.code(304).send();
    return reply.type('application/json; charset=utf-8').send(document.json);
  });

  app.get<{ Params: { collection: string }; Querystring: ListQuery }>('/collections/:collection/docs', { schema: { params: collectionParams, querystring: listQuery } }, async (request, reply) => {
    const { collection } = request.params;
    const { limit, after, prefix } = request.query;
    const fields = fieldsOf(request.query.fields);
    const page = await docket.store.list(collection, { ...(limit !== undefined ? { limit } : {}), ...(after !== undefined ? { after } : {}), ...(prefix ? { prefix } : {}), ...(fields ? { fields } : {}) });
    // Each document goes out as stored: its JSON text is spliced in, never re-serialised.
    const items = page.documents.map((d) => `{"id":${JSON.stringify(d.id)},"rev":${d.revision},"doc":${d.json}}`);
    return reply.type('application/json; charset=utf-8').send(`{"documents":[${items.join(',')}],"next":${page.next === undefined ? 'null' : JSON.stringify(page.next)}}`);
  });
};

function written(reply: FastifyReply, collection: string, result: WriteResult, status: number): { id: string; rev: number; tsn: number } {
  void reply.code(status).header('etag', etag(result.revision));
  if (status === 201) void reply.header('location', `/collections/${encodeURIComponent(collection)}/docs/${encodeURIComponent(result.id)}`);
  return { id: result.id, rev: result.revision, tsn: result.tsn };
}

/** `fields=a,b` (or repeated `fields=`): top-level field names. Names holding a comma cannot be picked. */
function fieldsOf(value: string | string[] | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const names = (Array.isArray(value) ? value : [value]).flatMap((part) => part.split(',')).filter((name) => name !== '');
  return [...new Set(names)];
}

/**
 * If-Match on a read (RFC 9110 §13.1.1, evaluated before If-None-Match, §13.2.2): strong
 * comparison; when no listed tag is the document's revision the read is refused, 412. (A
 * document that does not exist is 404 whatever the preconditions: §13.2.1.)
 */
function readPreconditions(request: FastifyRequest, id: string, revision: number): void {
  const ifMatch = parseTagList(request.headers['if-match'], 'If-Match');
  if (ifMatch !== undefined && !matches(ifMatch, revision)) {
    throw new DocketError(DocketErrorCode.DOCUMENT_CONFLICT, `document ${JSON.stringify(id)} is at revision ${revision}, which If-Match does not name`);
  }
}

/**
 * If-Match / If-None-Match as store conditions. The common forms map straight onto one
 * (`If-Match: "7"` is ifRevision 7, `If-None-Match: *` on a PUT is ifAbsent); the rest become
 * an ifCurrent check, which the store runs with the document locked. NB: reading the revision
 * here and pinning the write to it would refuse writes whose condition still held when another
 * write landed in between (`If-Match: *` on a document that exists throughout).
 */
function writeConditions(request: FastifyRequest, isPut: boolean): WriteConditions {
  const ifMatch = parseTagList(request.headers['if-match'], 'If-Match');
  const ifNoneMatch = parseTagList(request.headers['if-none-match'], 'If-None-Match');
  if (ifMatch === undefined && ifNoneMatch === undefined) return {};
  if (ifNoneMatch === undefined && Array.isArray(ifMatch) && ifMatch.length === 1) return { ifRevision: ifMatch[0]! };
  if (ifMatch === undefined && ifNoneMatch === '*' && isPut) return { ifAbsent: true };
  return { ifCurrent: (current) => (ifMatch === undefined || matches(ifMatch, current)) && (ifNoneMatch === undefined || !matches(ifNoneMatch, current)) };
}
