// The HTTP application: fastify with Docket's body parsers, error handling and the routes of
// routes/. buildApp returns at once with the store still recovering; `app.docket.opened`
// settles when it is open (routes answer 503 until then).

import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { ConfigError, DEFAULTS, type Config } from './config.js';
import { Docket, type RecoveryProgress } from './http/context.js';
import { decodedRequestBody } from './http/content-encoding.js';
import { clientErrorHandler, frameworkErrorHandler, installErrorHandlers } from './http/errors.js';
import { JSON_MEDIA_TYPES, JSON_PATCH_MEDIA_TYPE, JsonPatchText, NDJSON_MEDIA_TYPE } from './http/json.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import type { EventLoopDelayProbe, OverloadGuard } from './http/overload.js';
import { securityPlugin } from './http/security.js';
import { installResponseHooks } from './http/responses.js';
import { JsonText } from '../src/documents/json-text.js';
import * as limits from '../src/limits.js';
import { DocumentStore, type StoreOptions } from '../src/store.js';
import { statusRoutes } from '../routes/status.js';
import { collectionRoutes } from '../routes/collections.js';
import { documentRoutes } from '../routes/documents.js';
import { changesRoutes } from '../routes/changes.js';
import { bulkRoutes } from '../routes/bulk.js';
import { metricsRoutes } from '../routes/metrics.js';
import { openapiRoutes } from '../routes/openapi.js';
import { replicationRoutes } from '../routes/replication.js';
import { primaryLink, seedStandby, startReplication } from './replication.js';
import { settleRebuild, StandbyRebuilder } from './rebuild.js';
import { RealFileSystem } from '../storage/index.js';
import { rm } from 'node:fs/promises';
import { adminRoutes } from '../routes/admin.js';
import { indexRoutes } from '../routes/indexes.js';

declare module 'fastify' {
  interface FastifyInstance {
    docket: Docket;
  }
}

export interface AppOptions {
  readonly config?: Partial<Config>;
  /** Pino logging (the server's, at config.logLevel); tests leave it off. */
  readonly logger?: boolean;
  /** Where pino writes (standard output by default); tests capture the log this way. */
  readonly logStream?: Writable;
  /** The event-loop delay measure of load shedding (tests substitute their own). */
  readonly eventLoopDelayProbe?: EventLoopDelayProbe;
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
  // No log line carries a credential, whatever a serializer or a route chooses to log.
  const redact = { paths: ['req.headers.authorization', 'req.headers.cookie', 'request.headers.authorization', 'headers.authorization'], censor: '[redacted]' };
  const fastifyOptions: FastifyHttpOptions<Server> = {
    logger: options.logger ? { level: config.logLevel, redact, ...(options.logStream ? { stream: options.logStream } : {}) } : false,
    bodyLimit: config.bodyLimitBytes,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    routerOptions: { maxParamLength: PARAM_LENGTH_MAX },
    // Node checks the headers and request timeouts only this often (30 s by default), so a
    // slow client would hold its socket up to 30 s past either; check a few times per timeout.
    http: { connectionsCheckingInterval: Math.min(CONNECTIONS_CHECK_INTERVAL_MS_MAX, Math.ceil(config.headersTimeoutMs / 4)) },
    // HTTPS with --tls-cert and --tls-key (node:https takes the same connection options).
    ...(config.tlsCert === '' ? {} : { https: { cert: readPem(config.tlsCert, '--tls-cert'), key: readPem(config.tlsKey, '--tls-key'), connectionsCheckingInterval: Math.min(CONNECTIONS_CHECK_INTERVAL_MS_MAX, Math.ceil(config.headersTimeoutMs / 4)) } }),
    return503OnClosing: false, // Docket answers 503 itself, in its own error shape.
    clientErrorHandler,
    frameworkErrors: frameworkErrorHandler,
  };
  const app = Fastify(fastifyOptions);
  app.server.headersTimeout = config.headersTimeoutMs;
  if (options.onRoute) app.addHook('onRoute', options.onRoute);
  // Load shedding and access control, before every route (and checks each has a permission).
  // First, before the store opens: a server that may not start (no token off loopback) stops here.
  let guard: OverloadGuard | undefined;
  await app.register(securityPlugin, { config, ...(options.eventLoopDelayProbe ? { probe: options.eventLoopDelayProbe } : {}), onGuard: (created) => (guard = created) });

  const log = (level: 'info' | 'warn' | 'error', message: string, detail?: object): void => app.log[level](detail ?? {}, message);
  // A standby on the real file system rebuilds itself in place from its primary's checkpoint
  // when it cannot follow the log (server/rebuild.ts); tests on the simulated one do not.
  const rebuilds = config.replicaOf !== '' && !options.store?.fileSystem;
  const realFileSystem = new RealFileSystem();
  const removeTree = (directory: string): Promise<void> => rm(directory, { recursive: true, force: true });
  // The primary a standby follows: --replica-of, until POST /admin/replica-of re-points it.
  let following: Readonly<Config> = config;
  const rebuilder = rebuilds
    ? new StandbyRebuilder({
        config: () => following,
        log,
        fileSystem: realFileSystem,
        removeTree,
        stillWanted: (primary) => docket.replication?.role === 'standby' && docket.replication.standby?.phase !== 'promoting' && following.replicaOf === primary,
        swap: (install) =>
          docket.replaceStore('the standby is rebuilding itself from a checkpoint of its primary', async (old) => {
            await docket.replication?.close();
            docket.replication = undefined;
            await old.close();
            let failure: unknown;
            await install().catch((error: unknown) => (failure = error));
            // Whatever the swap did or did not do, the directories are settled before the store opens.
            await settleRebuild(realFileSystem, config.dataDirectory, removeTree);
            const store = await openStore();
            if (failure !== undefined) log('error', `the swap failed (${(failure as Error).message}); the old copy was opened again`);
            return store;
          }),
      })
    : undefined;
  const openStore = (onReplayProgress?: (progress: RecoveryProgress) => void): Promise<DocumentStore> =>
    DocumentStore.open({
      ...(onReplayProgress ? { onReplayProgress } : {}),
      directory: path.resolve(config.dataDirectory),
      sync: config.sync === 'periodic' ? { mode: 'periodic', intervalMs: config.syncIntervalMs } : { mode: 'immediate' },
      durability: config.durability,
      documentCacheBytes: config.documentCacheBytes,
      writeBufferBytes: config.writeBufferBytes,
      standby: config.replicaOf !== '',
      ...options.store,
    }).then(async (store) => {
      // The replication role before the store serves: a standby refuses writes from the first request.
      try {
        docket.replication = await startReplication(store, following, {
          ...(options.store?.fileSystem ? { fileSystem: options.store.fileSystem } : {}),
          ...(options.store?.binlogSegmentSizeBytes ? { segmentSizeBytes: options.store.binlogSegmentSizeBytes } : {}),
          log,
          ...(rebuilder ? { onCheckpointNeeded: (error: DocketError) => rebuilder.request(error), rebuildStats: () => rebuilder.stats() } : {}),
        });
      } catch (error) {
        await store.close().catch(() => undefined);
        throw error;
      }
      return store;
    });
  const docket = new Docket(config, async (onReplayProgress) => {
    // A new standby starts from its primary's checkpoint (the real file system only: tests on the
    // simulated one seed nothing); a rebuild in place a crash interrupted is finished or undone first.
    if (rebuilds) {
      const settled = await settleRebuild(realFileSystem, config.dataDirectory, removeTree);
      if (settled !== 'nothing') log('warn', `a rebuild in place of this standby was interrupted: ${settled} (server/rebuild.ts)`);
      const seeded = await seedStandby(config, log); // The Docket exists once this resolves (it calls this from its constructor).
      docket.seeded = seeded;
    }
    return openStore(onReplayProgress);
  });
  docket.repointStandby = async (primary, token) => {
    const node = docket.replication;
    if (!node) throw new DocketError(DocketErrorCode.UNAVAILABLE, 'replication is not running (starting, or a rebuild in place is swapping the store)');
    if (node.role !== 'standby') throw new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this server is a primary: only a standby follows another server');
    const next = { ...following, replicaOf: primary, replicaToken: token ?? following.replicaToken };
    const result = await node.repoint(primaryLink(next));
    following = next;
    log('warn', `re-pointed: this standby follows ${primary} (was ${result.previous}); a restart follows --replica-of again`);
    return result;
  };
  docket.overload = guard;
  app.decorate('docket', docket);

  installErrorHandlers(app);
  installResponseHooks(app); // JSON ends with a newline; large bodies compressed per Accept-Encoding.
  app.removeAllContentTypeParsers();
  // JSON bodies stay bytes: a document is checked and split by the byte scanner where it is
  // used, so its values are stored as sent; other routes parse them (parseJson) themselves.
  // A Content-Encoding is decoded first, to at most the body limit (server/http/content-encoding.ts).
  app.addContentTypeParser([...JSON_MEDIA_TYPES], { parseAs: 'buffer' }, (request, body, done) => {
    decodedRequestBody(request.headers['content-encoding'], body as Buffer, config.bodyLimitBytes).then((bytes) => done(null, new JsonText(bytes)), done);
  });
  // A JSON Patch (RFC 6902) is a body of PATCH /collections/{c}/docs/{id} only, the one PATCH route.
  app.addContentTypeParser(JSON_PATCH_MEDIA_TYPE, { parseAs: 'buffer' }, (request, body, done) => {
    if (request.method !== 'PATCH') return done(new DocketError(DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, `${JSON_PATCH_MEDIA_TYPE} is a body of PATCH only (a document's JSON Patch)`), undefined);
    decodedRequestBody(request.headers['content-encoding'], body as Buffer, config.bodyLimitBytes).then((bytes) => done(null, new JsonPatchText(bytes)), done);
  });
  // NDJSON is streamed (and decoded) by the bulk route itself (request.raw); the body is left unread here.
  app.addContentTypeParser(NDJSON_MEDIA_TYPE, (_request, _payload, done) => done(null, undefined));

  await app.register(metricsRoutes, { docket });
  await app.register(statusRoutes, { docket });
  await app.register(collectionRoutes, { docket });
  await app.register(documentRoutes, { docket });
  await app.register(changesRoutes, { docket });
  await app.register(bulkRoutes, { docket });
  await app.register(indexRoutes, { docket });
  await app.register(openapiRoutes, { docket });
  await app.register(replicationRoutes, { docket });
  await app.register(adminRoutes, { docket });

  // A request its client abandons (a reset, a closed socket) never logs "request completed";
  // log that it ended, so the log accounts for every request it says came in.
  app.addHook('onRequestAbort', async (request) => request.log.info('request aborted by the client'));
  app.addHook('preClose', async () => docket.beginClose());
  app.addHook('onClose', async () => docket.close());
  return app;
}

function readPem(file: string, flag: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(`${flag}: cannot read ${file}: ${(error as Error).message}`);
  }
}
