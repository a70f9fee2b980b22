// Collections: list, create (idempotent), describe, drop.

import type { FastifyPluginAsync } from 'fastify';
import type { CollectionOptions } from '../src/catalog.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import type { Docket } from '../server/http/context.js';
import { JsonText } from '../src/documents/json-text.js';
import { isPlainObject } from '../src/documents/merge-patch.js';
import { parseJson } from '../server/http/json.js';

const DEFINITION_KEYS = new Set(['schema', 'columns', 'fieldFamiliesMax']);

const collectionParams = {
  type: 'object',
  properties: { collection: { type: 'string' } },
  required: ['collection'],
} as const;

export const collectionRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  app.get('/collections', async () => ({ collections: docket.store.listCollections() }));

  app.put<{ Params: { collection: string } }>('/collections/:collection', { schema: { params: collectionParams } }, async (request, reply) => {
    const options = definitionOf(request.body, request.headers['content-type']);
    const { created, tsn } = await docket.store.createCollection(request.params.collection, options);
    void reply.code(created ? 201 : 200);
    if (created) void reply.header('location', `/collections/${encodeURIComponent(request.params.collection)}`);
    return { name: request.params.collection, created, tsn };
  });

  app.get<{ Params: { collection: string } }>('/collections/:collection', { schema: { params: collectionParams } }, async (request) => docket.store.collectionInfo(request.params.collection));

  app.delete<{ Params: { collection: string } }>('/collections/:collection', { schema: { params: collectionParams } }, async (request) => {
    const { tsn } = await docket.store.dropCollection(request.params.collection);
    return { name: request.params.collection, dropped: true, tsn };
  });
};

/** The optional body of a create: `{schema?, columns?, fieldFamiliesMax?}` and nothing else. */
function definitionOf(text: unknown, type: string | undefined): CollectionOptions {
  if (text === undefined && type !== undefined) throw new DocketError(DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, `a collection definition must be application/json, not ${type}`);
  if (text === undefined) return {};
  const body = text instanceof JsonText ? parseJson(text.bytes) : text;
  if (!isPlainObject(body)) throw new DocketError(DocketErrorCode.COLLECTION_DEFINITION_INVALID, 'a collection definition is a JSON object {schema?, columns?, fieldFamiliesMax?}');
  const unknown = Object.keys(body).filter((key) => !DEFINITION_KEYS.has(key));
  if (unknown.length > 0) throw new DocketError(DocketErrorCode.COLLECTION_DEFINITION_INVALID, `unknown key ${JSON.stringify(unknown[0])} in a collection definition; it takes schema, columns and fieldFamiliesMax`);
  return body as CollectionOptions;
}
