// Access control: every route the app registers × every role (and no token), each with the
// exact status; the refusal to listen off loopback without a token; wrong, expired, malformed
// and revoked tokens; tokens made and revoked while the server runs; no secret in any log
// line or error body. The roles each route admits are written out here, independently of
// server/auth/roles.ts, so a change to either that the other does not share fails.

import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { writeFile as writeFileAsync } from 'node:fs/promises';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { parse } from 'yaml';
import { buildApp } from '../../server/app.js';
import { ROLES, ROUTE_PERMISSIONS, permissionOf, type Role } from '../../server/auth/roles.js';
import { createToken, isLoopback, parseToken, revokeToken, readTokens, writeTokens, type TokenRecord } from '../../server/auth/tokens.js';
import { parseExpiry } from '../../server/auth/command.js';
import { ConfigError } from '../../server/config.js';

const ALL: readonly Role[] = ['admin', 'readwrite', 'readonly', 'replica'];
const READERS: readonly Role[] = ['admin', 'readwrite', 'readonly'];
const WRITERS: readonly Role[] = ['admin', 'readwrite'];
const ADMIN: readonly Role[] = ['admin'];
const REPLICAS: readonly Role[] = ['admin', 'replica'];
const PUBLIC = 'public' as const;

interface Fixture {
  /** Roles that get `ok`; every other role gets 403, no token 401. PUBLIC: all get `ok`, no token too. */
  readonly roles: readonly Role[] | typeof PUBLIC;
  readonly ok: number;
  /** The request, for a role ('none' without a token): path parameters differ so each write does its own thing. */
  readonly request: (who: string) => Omit<InjectOptions, 'method'> & { url: string };
}

const json = (body: unknown): Pick<InjectOptions, 'payload' | 'headers'> => ({ payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

/** Every route by `METHOD url` as fastify registers it. HEAD routes take their GET's fixture. */
const FIXTURES: Record<string, Fixture> = {
  'GET /': { roles: ALL, ok: 200, request: () => ({ url: '/' }) },
  'GET /healthz': { roles: PUBLIC, ok: 200, request: () => ({ url: '/healthz' }) },
  'GET /stats': { roles: READERS, ok: 200, request: () => ({ url: '/stats' }) },
  'GET /metrics': { roles: ALL, ok: 200, request: () => ({ url: '/metrics' }) },
  'GET /collections': { roles: READERS, ok: 200, request: () => ({ url: '/collections' }) },
  'PUT /collections/:collection': { roles: ADMIN, ok: 201, request: (who) => ({ url: `/collections/made-${who}`, ...json({}) }) },
  'GET /collections/:collection': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c' }) },
  'DELETE /collections/:collection': { roles: ADMIN, ok: 200, request: (who) => ({ url: `/collections/gone-${who}` }) },
  'POST /collections/:collection/docs': { roles: WRITERS, ok: 201, request: () => ({ url: '/collections/c/docs', ...json({ a: 1 }) }) },
  'GET /collections/:collection/docs': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c/docs' }) },
  'PUT /collections/:collection/docs/:id': { roles: WRITERS, ok: 201, request: (who) => ({ url: `/collections/c/docs/new-${who}`, ...json({ a: 1 }) }) },
  'GET /collections/:collection/docs/:id': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c/docs/d' }) },
  'PATCH /collections/:collection/docs/:id': { roles: WRITERS, ok: 200, request: () => ({ url: '/collections/c/docs/d', payload: '{"b":2}', headers: { 'content-type': 'application/merge-patch+json' } }) },
  'DELETE /collections/:collection/docs/:id': { roles: WRITERS, ok: 200, request: (who) => ({ url: `/collections/c/docs/del-${who}` }) },
  'POST /collections/:collection/bulk': { roles: WRITERS, ok: 200, request: () => ({ url: '/collections/c/bulk', payload: '{"id":"b1"}\n', headers: { 'content-type': 'application/x-ndjson' } }) },
  'GET /collections/:collection/indexes': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c/indexes' }) },
  'PUT /collections/:collection/indexes/:name': { roles: ADMIN, ok: 201, request: (who) => ({ url: `/collections/c/indexes/made-${who}`, ...json({ fields: [`f-${who}`] }) }) },
  'GET /collections/:collection/indexes/:name': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c/indexes/ix' }) },
  'DELETE /collections/:collection/indexes/:name': { roles: ADMIN, ok: 200, request: (who) => ({ url: `/collections/c/indexes/gone-${who}` }) },
  'POST /collections/:collection/find': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c/find', ...json({ selector: { a: 1 }, allow_scan: true }) }) },
  'POST /collections/:collection/explain': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c/explain', ...json({ selector: { a: 1 } }) }) },
  'POST /collections/:collection/count': { roles: READERS, ok: 200, request: () => ({ url: '/collections/c/count', ...json({}) }) },
  'GET /changes': { roles: READERS, ok: 200, request: () => ({ url: '/changes' }) },
  // An endless stream for a caller let in; a bad limit makes it answer (400) once past the role check.
  'GET /changes/stream': { roles: READERS, ok: 400, request: () => ({ url: '/changes/stream?limit=0' }) },
  'GET /openapi.yaml': { roles: PUBLIC, ok: 200, request: () => ({ url: '/openapi.yaml' }) },
  'GET /openapi.json': { roles: PUBLIC, ok: 200, request: () => ({ url: '/openapi.json' }) },
  'GET /docs': { roles: PUBLIC, ok: 200, request: () => ({ url: '/docs' }) },
  'GET /docs/:file': { roles: PUBLIC, ok: 200, request: () => ({ url: '/docs/swagger-ui.css' }) },
  // An endless stream for a caller let in; from=0 makes it answer (400) once past the role check.
  'GET /replication/binlog': { roles: REPLICAS, ok: 400, request: () => ({ url: '/replication/binlog?name=s&from=0' }) },
  'GET /replication/checkpoint': { roles: REPLICAS, ok: 400, request: () => ({ url: '/replication/checkpoint?flush=maybe' }) },
  'POST /replication/feedback': { roles: REPLICAS, ok: 204, request: () => ({ url: '/replication/feedback', ...json({ name: 's', term: 1, written: 0, durable: 0, replayed: 0 }) }) },
  // A primary refuses to be promoted (409) once past the role check.
  'POST /admin/promote': { roles: ADMIN, ok: 409, request: () => ({ url: '/admin/promote' }) },
  // A primary refuses to follow another server (409) once past the role check.
  'POST /admin/replica-of': { roles: ADMIN, ok: 409, request: () => ({ url: '/admin/replica-of', ...json({ primary: 'http://127.0.0.1:1' }) }) },
  'GET /admin/checkpoint': { roles: ADMIN, ok: 200, request: () => ({ url: '/admin/checkpoint' }) },
  // Into a directory that is not empty (this test's own): refused (409) once past the role check, writing nothing.
  'POST /admin/checkpoint': { roles: ADMIN, ok: 409, request: () => ({ url: '/admin/checkpoint', ...json({ directory: path.dirname(fileURLToPath(import.meta.url)) }) }) },
};

function fixtureOf(method: string, url: string): Fixture | undefined {
  return FIXTURES[`${method} ${url}`] ?? (method === 'HEAD' ? FIXTURES[`GET ${url}`] : undefined);
}

/** An app with tokens of every role, and the routes it registered. */
async function appWithTokens(t: Test, extra: { logStream?: Writable } = {}): Promise<{ app: FastifyInstance; tokens: Record<Role, string>; routes: { method: string; url: string }[]; dir: string }> {
  const dir = freshDir(t);
  const tokens = {} as Record<Role, string>;
  for (const role of ROLES) tokens[role] = (await createToken(dir, { role, name: `test ${role}` })).token;
  const routes: { method: string; url: string }[] = [];
  const app = await buildApp({
    config: { dataDirectory: dir, tokenReloadMs: 0, logLevel: 'trace' },
    store: { epochCheckIntervalMs: 0 },
    ...(extra.logStream ? { logger: true, logStream: extra.logStream } : {}),
    onRoute: (route) => {
      for (const method of typeof route.method === 'string' ? [route.method] : route.method) routes.push({ method, url: route.url });
    },
  });
  t.teardown(() => app.close());
  await app.docket.opened;
  return { app, tokens, routes, dir };
}

/** A fresh directory under the test's own (t.testdir() is one directory per test). */
function freshDir(t: Test): string {
  return mkdtempSync(path.join(t.testdir(), 'd-'));
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

t.test('every route × every role, and no token: the exact status', async (t) => {
  const { app, tokens, routes } = await appWithTokens(t);
  const who = ['none', ...ROLES] as const;
  // The state each allowed request needs: a collection c with a document d, and per caller a
  // collection to drop and a document to delete.
  const admin = bearer(tokens.admin);
  const setup = async (options: InjectOptions, status: number): Promise<void> => {
    const response = await app.inject({ ...options, headers: { ...admin, ...options.headers } });
    if (response.statusCode !== status) throw new Error(`setup ${options.method} ${options.url}: ${response.statusCode} ${response.body}`);
  };
  await setup({ method: 'PUT', url: '/collections/c', ...json({}) }, 201);
  await setup({ method: 'PUT', url: '/collections/c/docs/d', ...json({ a: 1 }) }, 201);
  await setup({ method: 'PUT', url: '/collections/c/indexes/ix', ...json({ fields: ['a'] }) }, 201);
  for (const caller of who) {
    await setup({ method: 'PUT', url: `/collections/c/indexes/gone-${caller}`, ...json({ fields: ['g'] }) }, 201);
    await setup({ method: 'PUT', url: `/collections/gone-${caller}`, ...json({}) }, 201);
    await setup({ method: 'PUT', url: `/collections/c/docs/del-${caller}`, ...json({ a: 1 }) }, 201);
  }

  t.ok(routes.length >= 20, `routes captured (${routes.length})`);
  const missing = routes.filter(({ method, url }) => fixtureOf(method, url) === undefined).map(({ method, url }) => `${method} ${url}`);
  t.same(missing, [], 'every registered route has a fixture here (add one for a new route)');
  for (const { method, url } of routes) {
    const fixture = fixtureOf(method, url);
    if (!fixture) continue;
    for (const caller of who) {
      const request = fixture.request(caller);
      const headers = { ...(request.headers as Record<string, string> | undefined), ...(caller === 'none' ? {} : bearer(tokens[caller])) };
      const response = await app.inject({ ...request, method: method as InjectOptions['method'], headers });
      const expected = fixture.roles === PUBLIC ? fixture.ok : caller === 'none' ? 401 : fixture.roles.includes(caller) ? fixture.ok : 403;
      t.equal(response.statusCode, expected, `${method} ${request.url} as ${caller}`, { body: response.body.slice(0, 200) });
      if (expected === 401) {
        t.equal(response.headers['www-authenticate'], 'Bearer realm="docket"', `${method} ${url} as ${caller}: challenge`);
        if (method !== 'HEAD') t.equal(response.json().code, 'DOCKET_ERR_AUTH_REQUIRED');
      }
      if (expected === 403 && method !== 'HEAD') {
        t.same(Object.keys(response.json()).sort(), ['code', 'error', 'message', 'statusCode']);
        t.match(response.json(), { statusCode: 403, code: 'DOCKET_ERR_AUTH_FORBIDDEN', error: 'Forbidden', message: new RegExp(`role ${caller}`) });
      }
    }
  }
  // An unknown path says nothing without a token, and 404 with any.
  t.equal((await app.inject({ method: 'GET', url: '/no/such/route' })).statusCode, 401);
  for (const role of ROLES) t.equal((await app.inject({ method: 'GET', url: '/no/such/route', headers: bearer(tokens[role]) })).statusCode, 404, `unknown route as ${role}`);
});

t.test('the permission table, openapi.yaml and the roles agree', async (t) => {
  const spec = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as { paths: Record<string, Record<string, { 'x-docket-permission'?: string; security?: unknown[] }>> };
  const documented: Record<string, string | undefined> = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      if (method === 'parameters') continue;
      const url = path.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
      documented[`${method.toUpperCase()} ${url}`] = operation['x-docket-permission'];
      t.equal(operation['x-docket-permission'], permissionOf(method.toUpperCase(), url), `${method.toUpperCase()} ${path}: x-docket-permission is the code's`);
      t.equal(operation.security?.length === 0, operation['x-docket-permission'] === 'public', `${method.toUpperCase()} ${path}: security: [] exactly when public`);
    }
  }
  for (const route of Object.keys(ROUTE_PERMISSIONS)) t.ok(route in documented, `${route} is documented`);
  t.equal(permissionOf('HEAD', '/collections/:collection/docs/:id'), 'read', 'HEAD takes its GET permission');
  t.equal(permissionOf('POST', '/nowhere'), undefined, 'a route outside the table has no permission');
});

t.test('a route without a permission stops the app from being built', async (t) => {
  const app = await buildApp({ config: { dataDirectory: t.testdir() } });
  t.teardown(() => app.close());
  t.throws(() => app.get('/unguarded', async () => 'x'), /GET \/unguarded has no permission/);
});

t.test('without a token file: loopback is open; any other address refuses to start', async (t) => {
  const open = await buildApp({ config: { dataDirectory: freshDir(t) } });
  t.teardown(() => open.close());
  await open.docket.opened;
  t.equal((await open.inject({ method: 'PUT', url: '/collections/c', ...json({}) })).statusCode, 201, 'loopback, no tokens: open');

  for (const host of ['0.0.0.0', '::', '192.168.1.20', 'example.org']) {
    const dir = freshDir(t);
    // buildApp only builds; it never listens, so nothing is bound to a public address here.
    await t.rejects(buildApp({ config: { host, dataDirectory: dir } }), { constructor: ConfigError, message: new RegExp(`refusing to listen on ${host.replace(/\./g, '\\.')} without an access token.*docket token create --role admin --data-dir`) }, `${host} without tokens`);
  }
  const expiredOnly = freshDir(t);
  await createToken(expiredOnly, { role: 'admin', expires: new Date(Date.now() - 1000) });
  await t.rejects(buildApp({ config: { host: '0.0.0.0', dataDirectory: expiredOnly } }), { message: /refusing to listen/ }, 'only an expired token');
  const withToken = freshDir(t);
  const { token } = await createToken(withToken, { role: 'readonly' });
  const guarded = await buildApp({ config: { host: '0.0.0.0', dataDirectory: withToken } });
  t.teardown(() => guarded.close());
  await guarded.docket.opened;
  t.equal((await guarded.inject({ method: 'GET', url: '/collections' })).statusCode, 401, 'a token exists: enforced');
  t.equal((await guarded.inject({ method: 'GET', url: '/collections', headers: bearer(token) })).statusCode, 200);

  for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) t.ok(isLoopback(host), `${host} is loopback`);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'localhost.example.org', '::ffff:10.0.0.1']) t.notOk(isLoopback(host), `${host} is not loopback`);
});

t.test('wrong, unknown, malformed, expired and revoked tokens are 401; new tokens work without a restart', async (t) => {
  const { app, tokens, dir } = await appWithTokens(t);
  const get = (headers: Record<string, string>): Promise<{ statusCode: number; body: string; headers: Record<string, unknown> }> => app.inject({ method: 'GET', url: '/collections', headers });
  const good = tokens.readonly;
  const { id, secret } = parseToken(good)!;
  t.equal((await get(bearer(good))).statusCode, 200);
  t.equal((await get({ authorization: `bearer   ${good}` })).statusCode, 200, 'the scheme is case-insensitive');

  const wrongSecret = `dkt_${id}_${(secret[0] === 'A' ? 'B' : 'A') + secret.slice(1)}`;
  const unknownId = `dkt_${id === '0'.repeat(16) ? '1'.repeat(16) : '0'.repeat(16)}_${secret}`;
  const refused: [string, Record<string, string>, RegExp, string][] = [
    ['no header', {}, /requires an access token/, 'Bearer realm="docket"'],
    ['wrong secret', bearer(wrongSecret), /not valid/, 'Bearer realm="docket", error="invalid_token"'],
    ['unknown id', bearer(unknownId), /not valid/, 'Bearer realm="docket", error="invalid_token"'],
    ['not a Docket token', bearer('abc.def.ghi'), /not a Docket token/, 'Bearer realm="docket", error="invalid_token"'],
    ['secret cut short', bearer(good.slice(0, -1)), /not a Docket token/, 'Bearer realm="docket", error="invalid_token"'],
    ['secret too long', bearer(`${good}x`), /not a Docket token/, 'Bearer realm="docket", error="invalid_token"'],
    ['another scheme', { authorization: `Basic ${Buffer.from(`u:${good}`).toString('base64')}` }, /not `Bearer <token>`/, 'Bearer realm="docket", error="invalid_token"'],
    ['no token after Bearer', { authorization: 'Bearer' }, /not `Bearer <token>`/, 'Bearer realm="docket", error="invalid_token"'],
    ['two tokens', { authorization: `Bearer ${good} ${good}` }, /not `Bearer <token>`/, 'Bearer realm="docket", error="invalid_token"'],
  ];
  for (const [what, headers, message, challenge] of refused) {
    const response = await get(headers);
    t.equal(response.statusCode, 401, what);
    t.equal(response.headers['www-authenticate'], challenge, `${what}: challenge`);
    t.match(JSON.parse(response.body), { code: 'DOCKET_ERR_AUTH_REQUIRED', message }, `${what}: body`);
    t.notOk(response.body.includes(secret), `${what}: the body does not echo the secret`);
  }

  // Expired: the record says so (the CLI refuses a past --expires; the file can still hold one).
  const expired = await createToken(dir, { role: 'admin', expires: new Date(Date.now() + 60_000) });
  t.equal((await get(bearer(expired.token))).statusCode, 200, 'before its expiry');
  const records = (await readTokens(dir))!;
  await writeTokens(dir, records.map((r): TokenRecord => (r.id === expired.record.id ? { ...r, expires: new Date(Date.now() - 1000).toISOString() } : r)));
  const afterExpiry = await get(bearer(expired.token));
  t.equal(afterExpiry.statusCode, 401, 'after its expiry');
  t.match(JSON.parse(afterExpiry.body), { message: new RegExp(`token ${expired.record.id} expired at`) });

  // Revoked while the server runs: refused at the next request (--token-reload-ms 0 here).
  t.ok(await revokeToken(dir, id));
  t.equal((await get(bearer(good))).statusCode, 401, 'revoked');
  t.notOk(await revokeToken(dir, id), 'revoking twice finds nothing');
  // Made while the server runs: accepted without a restart; 20 requests bringing it at once
  // share one scrypt verification and all pass.
  const late = await createToken(dir, { role: 'readonly' });
  const burst = await Promise.all(Array.from({ length: 20 }, () => get(bearer(late.token))));
  t.same(burst.map((r) => r.statusCode), Array(20).fill(200), 'a token made after start, 20 requests at once');
  // Many distinct wrong secrets at once: a few are verified, the rest turned away with 503.
  const guesses = await Promise.all(Array.from({ length: 12 }, (_, i) => get(bearer(`dkt_${parseToken(late.token)!.id}_${String(i).padStart(2, '0')}${secret.slice(2)}`))));
  const statuses = guesses.map((r) => r.statusCode);
  t.ok(statuses.every((s) => s === 401 || s === 503), 'each guess is 401 or 503');
  t.equal(statuses.filter((s) => s === 401).length, 4, 'four verified at once (VERIFICATIONS_IN_FLIGHT_MAX)');
  t.ok(guesses.filter((r) => r.statusCode === 503).every((r) => r.headers['retry-after'] === '1' && JSON.parse(r.body).code === 'DOCKET_ERR_OVERLOADED'), 'the rest: 503 overloaded with Retry-After');
  // Every token revoked: the file remains, so the server stays closed rather than falling open.
  for (const record of (await readTokens(dir))!) await revokeToken(dir, record.id);
  t.same(await readTokens(dir), []);
  t.equal((await get({})).statusCode, 401, 'no tokens left, still closed');
  t.equal((await get(bearer(late.token))).statusCode, 401);
});

t.test('a token file that cannot be read: the server will not start, and a running one refuses tokens', async (t) => {
  const dir = freshDir(t);
  await writeFileAsync(path.join(dir, 'tokens.json'), '{"format":"docket-tokens/1","tokens":[{"id":"nope"}]}');
  await t.rejects(buildApp({ config: { dataDirectory: dir } }), { constructor: ConfigError, message: /token 1 is malformed/ });
  const { app, tokens, dir: running } = await appWithTokens(t);
  await writeFileAsync(path.join(running, 'tokens.json'), 'not json');
  const response = await app.inject({ method: 'GET', url: '/collections', headers: bearer(tokens.admin) });
  t.equal(response.statusCode, 503);
  t.equal(response.json().code, 'DOCKET_ERR_UNAVAILABLE');
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, 'public routes still answer');
});

t.test('no token secret in any log line, even at trace level', async (t) => {
  const lines: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const { app, tokens } = await appWithTokens(t, { logStream });
  const secrets = ROLES.map((role) => parseToken(tokens[role])!.secret);
  for (const role of ROLES) {
    await app.inject({ method: 'PUT', url: '/collections/c', headers: { ...bearer(tokens[role]), 'content-type': 'application/json' }, payload: '{}' });
    await app.inject({ method: 'GET', url: '/no/such/route', headers: bearer(tokens[role]) });
    await app.inject({ method: 'PUT', url: '/collections/c/docs/x', headers: { ...bearer(tokens[role]), 'content-type': 'application/json' }, payload: '{"a":' });
  }
  await app.inject({ method: 'GET', url: '/collections', headers: { authorization: `Bearer ${tokens.admin}x` } });
  app.log.info({ headers: { authorization: `Bearer ${tokens.admin}` } }, 'a line that tries to log the header');
  const log = lines.join('');
  t.ok(lines.length > 20, `the log was captured (${lines.length} lines)`);
  t.match(log, /\[redacted\]/, 'the Authorization header is redacted where logged');
  for (const secret of secrets) t.notOk(log.includes(secret), 'a token secret is not in the log');
});

t.test('--expires: durations and ISO times in the future', async (t) => {
  const now = new Date('2030-01-01T00:00:00Z');
  t.equal(parseExpiry('90m', now).toISOString(), '2030-01-01T01:30:00.000Z');
  t.equal(parseExpiry('30d', now).toISOString(), '2030-01-31T00:00:00.000Z');
  t.equal(parseExpiry('2030-02-01T00:00:00Z', now).toISOString(), '2030-02-01T00:00:00.000Z');
  t.throws(() => parseExpiry('2029-12-31', now), /not in the future/);
  t.throws(() => parseExpiry('soon', now), /neither a duration/);
  t.throws(() => parseExpiry('12', now), /neither a duration/);
});

t.test('token commands at once lose no change: the token file is changed under a lock', async (t) => {
  const dir = t.testdir();
  const made = await Promise.all(Array.from({ length: 6 }, (_, i) => createToken(dir, { role: 'readonly', name: `n${i}` })));
  t.same((await readTokens(dir))!.map((r) => r.name).sort(), ['n0', 'n1', 'n2', 'n3', 'n4', 'n5'], 'six creates at once: six records');
  const [revoked, , created] = await Promise.all([revokeToken(dir, made[0]!.record.id), revokeToken(dir, made[1]!.record.id), createToken(dir, { role: 'admin', name: 'late' })]);
  t.equal(revoked, true);
  t.same((await readTokens(dir))!.map((r) => r.name).sort(), ['late', 'n2', 'n3', 'n4', 'n5'], 'two revokes and a create at once');
  t.equal(created.record.role, 'admin');
  t.notOk(existsSync(path.join(dir, 'tokens.json.lock')), 'no lock is left behind');
});
