// The HTTP application: fastify with Docket's body parsers, error handling and the routes of
// routes/. buildApp returns at once with the store still recovering; `app.docket.opened`
// settles when it is open (routes answer 503 until then).

import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import * as path from 'node:path';
import { DEFAULTS, type Config } from './config.js';
import { Docket } from './http/context.js';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandlers } from './http/errors.js';
import { JSON_MEDIA_TYPES, JSON_PATCH_MEDIA_TYPE, JsonPatchText, NDJSON_MEDIA_TYPE } from './http/json.js';
import { DocketError, DocketErrorCode } from './errors.js';
import { JsonText } from './documents/json-text.js';
import * as limits from './limits.js';
import { DocumentStore, type StoreOptions } from './store.js';
import { statusRoutes } from '../routes/status.js';
import { collectionRoutes } from '../routes/collections.js';
import { documentRoutes } from '../routes/documents.js';
import { changesRoutes } from '../routes/changes.js';
import { bulkRoutes } from '../routes/bulk.js';
import { metricsRoutes } from '../routes/metrics.js';
import { openapiRoutes } from '../routes/openapi.js';

declare module 'fastify' {
  interface FastifyInstance {
    docket: Docket;
  }
}

export interface AppOptions {
  readonly config?: Partial<Config>;
  /** Pino logging (the server's, at config.logLevel); tests leave it off. */
  readonly logger?: boolean;
  /** Store options beyond what the config sets (tests: a simulated file system, tuning). */
  readonly store?: Partial<StoreOptions>;
  /** Called with each route as it is registered (the contract test lists them this way). */
  readonly onRoute?: (route: { readonly method: string | readonly string[]; readonly url: string }) => void;
}


/** Longest path parameter: an id of ID_SIZE_BYTES_MAX bytes, every byte percent-encoded. */
const PARAM_LENGTH_MAX = 3 * limits.ID_SIZE_BYTES_MAX + 64;

/** The most a slow client overstays the headers or request timeout before it is cut off. */
const CONNECTIONS_CHECK_INTERVAL_MS_MAX = 1000;

export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const config: Config = { ...DEFAULTS, ...options.config };
  const fastifyOptions: FastifyHttpOptions<Server> = {
    logger: options.logger ? { level: config.logLevel } : false,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    routerOptions: { maxParamLength: PARAM_LENGTH_MAX },
    // Node checks the headers and request timeouts only this often (30 s by default), so a
    // slow client would hold its socket up to 30 s past either; check a few times per timeout.
    http: { connectionsCheckingInterval: Math.min(CONNECTIONS_CHECK_INTERVAL_MS_MAX, Math.ceil(config.headersTimeoutMs / 4)) },
    return503OnClosing: false, // Docket answers 503 itself, in its own error shape.
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
  };
  const app = Fastify(fastifyOptions);
  app.server.headersTimeout = config.headersTimeoutMs;
  if (options.onRoute) app.addHook('onRoute', options.onRoute);

  const docket = new Docket(config, () =>
    DocumentStore.open({
      directory: path.resolve(config.dataDirectory),
      sync: config.sync === 'periodic' ? { mode: 'periodic', intervalMs: config.syncIntervalMs } : { mode: 'immediate' },
      durability: config.durability,
      documentCacheBytes: config.documentCacheBytes,
      ...options.store,
    }),
  );
  app.decorate('docket', docket);

  installErrorHandlers(app);
  app.removeAllContentTypeParsers();
  // JSON bodies stay bytes: a document is checked and split by the byte scanner where it is
  // used, so its values are stored as sent; other routes parse them (parseJson) themselves.
  app.addContentTypeParser([...JSON_MEDIA_TYPES], { parseAs: 'buffer' }, (_request, body, done) => done(null, new JsonText(body as Buffer)));
  // A JSON Patch (RFC 6902) is a body of PATCH /collections/{c}/docs/{id} only, the one PATCH route.
  app.addContentTypeParser(JSON_PATCH_MEDIA_TYPE, { parseAs: 'buffer' }, (request, body, done) => {
    if (request.method === 'PATCH') done(null, new JsonPatchText(body as Buffer));
    else done(new DocketError(DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, `${JSON_PATCH_MEDIA_TYPE} is a body of PATCH only (a document's JSON Patch)`), undefined);
  });
  // NDJSON is streamed by the bulk route itself (request.raw); the body is left unread here.
  app.addContentTypeParser(NDJSON_MEDIA_TYPE, (_request, _payload, done) => done(null, undefined));

  await app.register(metricsRoutes, { docket });
  await app.register(statusRoutes, { docket });
  await app.register(collectionRoutes, { docket });
  await app.register(documentRoutes, { docket });
  await app.register(changesRoutes, { docket });
  await app.register(bulkRoutes, { docket });
  await app.register(openapiRoutes, { docket });

  app.addHook('preClose', async () => docket.beginClose());
  app.addHook('onClose', async () => docket.close());
  return app;
}
