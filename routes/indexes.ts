// Secondary indexes and the queries that use them: PUT/GET/DELETE /collections/{c}/indexes/{name},
// GET /collections/{c}/indexes, POST /collections/{c}/find, /explain and /count (src/query.ts).

import type { FastifyPluginAsync } from 'fastify';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import type { Docket } from '../server/http/context.js';
import { JsonText } from '../src/documents/json-text.js';
import { parseJson } from '../server/http/json.js';

const collectionParams = {
  type: 'object',
  properties: { collection: { type: 'string' } },
  required: ['collection'],
} as const;

const indexParams = {
  type: 'object',
  properties: { collection: { type: 'string' }, name: { type: 'string' } },
  required: ['collection', 'name'],
} as const;

const DOCUMENTS_OPEN = Buffer.from('{"documents":[');
const CLOSE_BRACE = Buffer.from('}');

/** A JSON body as a value (parsed here: queries and definitions are not stored as sent). */
function bodyOf(body: unknown, type: string | undefined, what: string): unknown {
  if (body === undefined) throw new DocketError(type === undefined ? DocketErrorCode.QUERY_INVALID : DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, `${what} is an application/json body`);
  return body instanceof JsonText ? parseJson(body.bytes) : body;
}

export const indexRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  app.get<{ Params: { collection: string } }>('/collections/:collection/indexes', { schema: { params: collectionParams } }, async (request) => ({ indexes: docket.store.listIndexes(request.params.collection) }));

  app.put<{ Params: { collection: string; name: string } }>('/collections/:collection/indexes/:name', { schema: { params: indexParams } }, async (request, reply) => {
    const { collection, name } = request.params;
    const definition = request.body === undefined && request.headers['content-type'] === undefined ? undefined : bodyOf(request.body, request.headers['content-type'], 'an index definition');
    const result = await docket.store.createIndex(collection, name, definition);
    void reply.code(result.created ? 201 : 200);
    if (result.created) void reply.header('location', `/collections/${encodeURIComponent(collection)}/indexes/${encodeURIComponent(name)}`);
    return { ...result.index, created: result.created, tsn: result.tsn };
  });

  app.get<{ Params: { collection: string; name: string } }>('/collections/:collection/indexes/:name', { schema: { params: indexParams } }, async (request) => docket.store.indexInfo(request.params.collection, request.params.name));

  app.delete<{ Params: { collection: string; name: string } }>('/collections/:collection/indexes/:name', { schema: { params: indexParams } }, async (request) => {
    const { tsn } = await docket.store.dropIndex(request.params.collection, request.params.name);
    return { name: request.params.name, dropped: true, tsn };
  });

  app.post<{ Params: { collection: string } }>('/collections/:collection/find', { schema: { params: collectionParams } }, async (request, reply) => {
    const result = await docket.store.find(request.params.collection, bodyOf(request.body, request.headers['content-type'], 'a query'));
    // Each document goes out as stored: its JSON bytes are spliced in, never decoded or
    // re-serialised; the body is built as one buffer, ending with the newline every JSON body has.
    const parts: Buffer[] = [DOCUMENTS_OPEN];
    for (let i = 0; i < result.documents.length; i++) {
      const d = result.documents[i]!;
      parts.push(Buffer.from(`${i > 0 ? ',' : ''}{"id":${JSON.stringify(d.id)},"rev":${d.revision},"doc":`, 'utf8'), d.bytes, CLOSE_BRACE);
    }
    const rest = { bookmark: result.bookmark ?? null, index: result.index, stopped: result.stopped, execution_stats: result.stats };
    parts.push(Buffer.from(`],${JSON.stringify(rest).slice(1)}\n`, 'utf8'));
    return reply.type('application/json; charset=utf-8').send(Buffer.concat(parts));
  });

  app.post<{ Params: { collection: string } }>('/collections/:collection/explain', { schema: { params: collectionParams } }, async (request) =>
    docket.store.explain(request.params.collection, bodyOf(request.body, request.headers['content-type'], 'a query')),
  );

  app.post<{ Params: { collection: string } }>('/collections/:collection/count', { schema: { params: collectionParams } }, async (request) =>
    docket.store.count(request.params.collection, bodyOf(request.body, request.headers['content-type'], 'a count')),
  );
};
