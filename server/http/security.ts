// Who gets in, and whether the server has room: one plugin, registered by app.ts before the
// routes, that installs two onRequest hooks for every route (and for unknown paths):
//
// 1. load shedding (./overload.ts): 503 DOCKET_ERR_OVERLOADED with Retry-After past a bound;
// 2. access control: once the data directory holds a token file (`docket token create`), every
//    route but the public ones (server/auth/roles.ts) needs `Authorization: Bearer dkt_…` of a
//    role that grants the route's permission: 401 DOCKET_ERR_AUTH_REQUIRED with
//    `WWW-Authenticate: Bearer` without a valid token, 403 DOCKET_ERR_AUTH_FORBIDDEN for a role
//    that may not. Without a token file, a loopback server is open (the embedded default); a
//    server on any other address refuses to start without an unexpired token.
//
// Neither hook reads the body, so a refused request costs no parsing. No token is ever logged
// or echoed: messages name a token by its id at most.

import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Server } from 'node:net';
import { allows, permissionOf, type Permission } from '../auth/roles.js';
import { isLoopback, TokenSet, tokensPath } from '../auth/tokens.js';
import { ConfigError, type Config } from '../config.js';
import { DocketErrorCode } from '../../src/errors.js';
import { errorBody } from './errors.js';
import { eventLoopDelayProbe, OverloadGuard, RETRY_AFTER_SECONDS, type EventLoopDelayProbe } from './overload.js';

export interface SecurityOptions {
  readonly config: Readonly<Config>;
  /** The event-loop delay measure (tests substitute their own). */
  readonly probe?: EventLoopDelayProbe;
  /** Receives the load shedder, so /stats can show it. */
  readonly onGuard?: (guard: OverloadGuard) => void;
}

const REALM = 'Bearer realm="docket"';

/** Refuses a configuration that would expose the store: a non-loopback address without tokens. */
export function checkExposure(host: string, tokens: TokenSet): void {
  if (isLoopback(host) || tokens.activeCount() > 0) return;
  throw new ConfigError(
    `refusing to listen on ${host} without an access token: anyone who can reach it could read, write and drop every collection. ` +
      `Create one with \`docket token create --role admin --data-dir ${tokens.dataDirectory}\` (its secret is printed once; tokens are kept in ${tokensPath(tokens.dataDirectory)}), ` +
      'then start again; or listen on 127.0.0.1 (the default).',
  );
}

export const securityPlugin: FastifyPluginAsync<SecurityOptions> = async (app, { config, probe, onGuard }) => {
  const tokens = await TokenSet.open(config.dataDirectory, {
    reloadMs: config.tokenReloadMs,
    onReloadError: (error) => app.log.error(`access tokens could not be re-read; refusing every token until they can: ${error.message}`),
  }).catch((error: Error) => Promise.reject(new ConfigError(error.message)));
  checkExposure(config.host, tokens);
  // Off loopback the server always requires tokens, even if the file is later deleted.
  const alwaysEnforced = !isLoopback(config.host);

  const guard = new OverloadGuard(
    { connectionsMax: config.connectionsMax, requestsInFlightMax: config.requestsInFlightMax, eventLoopDelayMaxMs: config.eventLoopDelayMaxMs },
    probe ?? eventLoopDelayProbe(),
  );
  guard.attach(app.server as Server, config.tlsCert !== '');
  onGuard?.(guard);
  app.addHook('onClose', async () => guard.stop());

  app.addHook('onRoute', (route) => {
    for (const method of typeof route.method === 'string' ? [route.method] : route.method) {
      if (permissionOf(method, route.url) === undefined) throw new Error(`${method} ${route.url} has no permission in server/auth/roles.ts ROUTE_PERMISSIONS; add one`);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    if ((await guard.check(request, reply)) !== undefined) return reply;
    const route = request.routeOptions.url;
    // An unknown path needs a valid token too, so it says nothing about what exists.
    const permission: Permission = route === undefined ? 'any' : permissionOf(request.method, route)!;
    if (permission === 'public') return undefined;
    if (!alwaysEnforced && !(await tokens.fileExists())) return undefined;
    if (tokens.reloadFailure) return deny(reply, 503, DocketErrorCode.UNAVAILABLE, 'the server cannot read its access tokens; see its log');
    const presented = bearerOf(request);
    if (presented === undefined) return challenge(reply, 'this server requires an access token: send `Authorization: Bearer dkt_…` (see `docket token create`)', false);
    if (presented === '') return challenge(reply, 'the Authorization header is not `Bearer <token>`', true);
    const verdict = await tokens.verify(presented);
    if (!verdict.ok && verdict.why === 'busy') return deny(reply.header('retry-after', String(RETRY_AFTER_SECONDS)), 503, DocketErrorCode.OVERLOADED, verdict.message);
    if (!verdict.ok) return challenge(reply, verdict.message, true);
    const { role, id } = verdict.record;
    if (!allows(role, permission)) {
      void reply.header('www-authenticate', `${REALM}, error="insufficient_scope"`);
      return deny(reply, 403, DocketErrorCode.AUTH_FORBIDDEN, `token ${id} has role ${role}, which may not ${request.method} ${route ?? request.url.split('?')[0]} (it needs ${permission} permission)`);
    }
    return undefined;
  });
};

// Not encapsulated (what fastify-plugin does): the hooks apply to every route of the app.
Object.assign(securityPlugin, { [Symbol.for('skip-override')]: true });

/** The token of `Authorization: Bearer <token>`; '' for another scheme; undefined for none. */
function bearerOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match ? match[1]! : '';
}

function challenge(reply: FastifyReply, message: string, invalid: boolean): FastifyReply {
  void reply.header('www-authenticate', invalid ? `${REALM}, error="invalid_token"` : REALM);
  return deny(reply, 401, DocketErrorCode.AUTH_REQUIRED, message);
}

function deny(reply: FastifyReply, status: number, code: DocketErrorCode, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(errorBody(status, code, message));
}
