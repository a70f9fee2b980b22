// openapi.yaml is the contract of the HTTP API, and this holds the server to it both ways: the
// routes fastify registers are the paths and methods the spec lists, the error codes the spec
// names are the ones the server can send, the spec passes a real OpenAPI 3.1 linter, and live
// responses (successes and errors) validate against the spec's response schemas.

import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createConfig, lint, lintFromString } from '@redocly/openapi-core';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { parse } from 'yaml';
import { buildApp } from '../../server/app.js';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import { describeError, STATUS_OF } from '../../server/http/errors.js';
import { PACKAGE } from '../../src/version.js';
import { RealFileSystem, StorageError, StorageErrorCode } from '../../storage/index.js';

const Ajv2020 = createRequire(import.meta.url)('ajv/dist/2020.js') as typeof import('ajv/dist/2020.js').default;

const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));
const SPEC_TEXT = readFileSync(SPEC_PATH, 'utf8');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'] as const;

type Json = Record<string, unknown>;
interface MediaType { schema?: Json }
interface HeaderObject { required?: boolean; schema: Json }
interface ResponseObject { description: string; headers?: Record<string, HeaderObject | Ref>; content?: Record<string, MediaType> }
interface Ref { $ref: string }
interface Operation { operationId: string; responses: Record<string, ResponseObject | Ref> }
type PathItem = Partial<Record<(typeof METHODS)[number], Operation>>;
interface Spec {
  openapi: string;
  info: { version: string };
  paths: Record<string, PathItem>;
  components: { schemas: Record<string, Json>; responses: Record<string, ResponseObject>; headers: Record<string, HeaderObject> };
}

const spec = parse(SPEC_TEXT) as Spec;

function operations(): { method: string; path: string; operation: Operation }[] {
  return Object.entries(spec.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => ({ method: m.toUpperCase(), path, operation: item[m]! })));
}

/** `#/components/responses/NotFound` → the object it names. */
function deref<T>(value: T | Ref): T {
  if (typeof value !== 'object' || value === null || !('$ref' in value)) return value;
  let node: unknown = spec;
  for (const part of value.$ref.replace(/^#\//, '').split('/')) node = (node as Json)[part.replaceAll('~1', '/').replaceAll('~0', '~')];
  if (node === undefined) throw new Error(`dangling $ref ${value.$ref}`);
  return deref(node as T | Ref);
}

/** Fastify's `/a/:b` as OpenAPI's `/a/{b}`. */
function openapiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

t.test('every registered route is in openapi.yaml and every path and method in it is registered', async (t) => {
  const registered = new Set<string>();
  const app = await buildApp({
    config: { dataDirectory: t.testdir() },
    onRoute: (route) => {
      for (const method of typeof route.method === 'string' ? [route.method] : route.method) registered.add(`${method} ${openapiPath(route.url)}`);
    },
  });
  await app.close();
  const documented = new Set(operations().map(({ method, path }) => `${method} ${path}`));
  t.ok(registered.size >= 20, `routes captured (${registered.size})`);
  for (const route of ['GET /changes', 'POST /collections/{collection}/bulk', 'GET /metrics', 'GET /docs', 'HEAD /collections/{collection}/docs/{id}']) t.ok(registered.has(route), `${route} is registered`);
  // Fastify answers HEAD for every GET on its own; those need no entry of their own.
  const automaticHead = (route: string): boolean => route.startsWith('HEAD ') && registered.has(route.replace(/^HEAD /, 'GET '));
  const undocumented = [...registered].filter((route) => !documented.has(route) && !automaticHead(route));
  const unregistered = [...documented].filter((route) => !registered.has(route));
  t.same(undocumented, [], 'registered routes missing from openapi.yaml');
  t.same(unregistered, [], 'openapi.yaml operations the server does not register');
});

t.test('the error codes in openapi.yaml are exactly those the server can send, and each status is a documented response', async (t) => {
  const documented = new Set(spec.components.schemas.ErrorCode!.enum as string[]);
  const emitted = new Set<string>([...Object.values(DocketErrorCode), ...Object.values(StorageErrorCode)]);
  t.same([...emitted].filter((code) => !documented.has(code)), [], 'codes the server can send that ErrorCode lacks');
  t.same([...documented].filter((code) => !emitted.has(code)), [], 'codes in ErrorCode that no part of the server defines');

  const statuses = new Set(operations().flatMap(({ operation }) => Object.keys(operation.responses)));
  for (const code of Object.values(DocketErrorCode)) {
    const status = describeError(new DocketError(code, 'x')).statusCode;
    t.equal(status, STATUS_OF[code]);
    t.ok(statuses.has(String(status)), `${code} (${status}) is a documented response`);
  }
  for (const code of Object.values(StorageErrorCode)) {
    const status = describeError(new StorageError(code, 'x')).statusCode;
    t.ok(statuses.has(String(status)), `${code} (${status}) is a documented response`);
  }
});

t.test('openapi.yaml is OpenAPI 3.1, versioned as the package, and lints clean', async (t) => {
  t.equal(spec.openapi, '3.1.0');
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  t.equal(spec.info.version, packageJson.version, 'info.version is package.json version');
  t.equal(spec.info.version, PACKAGE.version);
  const ids = operations().map(({ operation }) => operation.operationId);
  t.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  t.notOk(ids.includes(undefined as unknown as string), 'every operation has an operationId');

  // Redocly's recommended rules, less one: the status and contract routes have no client
  // error to answer with, and a 4xx listed for them would be a lie.
  const config = await createConfig({ extends: ['recommended'], rules: { 'operation-4xx-response': 'off' } });
  const problems = await lint({ ref: SPEC_PATH, config });
  t.same(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`), [], 'no lint problems');

  // A bare `type: object` reads as "no properties at all" to generators (openapi-typescript
  // makes it Record<string, never>): every object schema says what it holds.
  const vague: string[] = [];
  const walk = (node: unknown, at: string): void => {
    if (typeof node !== 'object' || node === null) return;
    const object = node as Json;
    if (object.type === 'object' && !('properties' in object) && !('additionalProperties' in object)) vague.push(at);
    for (const [key, value] of Object.entries(object)) walk(value, `${at}/${key}`);
  };
  walk(spec, '#');
  t.same(vague, [], 'object schemas with neither properties nor additionalProperties');

  // The linter is really looking: a duplicated operationId and a dangling $ref are caught.
  const broken = SPEC_TEXT.replace('operationId: getHealth', 'operationId: getServer').replace("$ref: '#/components/schemas/WriteResult'", "$ref: '#/components/schemas/Nothing'");
  const found = await lintFromString({ source: broken, absoluteRef: SPEC_PATH, config });
  t.ok(found.some((p) => p.ruleId === 'operation-operationId-unique'), 'duplicate operationId reported');
  t.ok(found.some((p) => p.ruleId === 'no-unresolved-refs'), 'dangling $ref reported');
});

/** Checks responses against the spec: status documented, required headers, media type, body schema. */
class ResponseChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  private readonly compiled = new Map<string, ReturnType<typeof this.ajv.compile>>();
  private readonly templates = Object.keys(spec.paths).map((path) => ({ path, pattern: new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}$`) }));

  constructor() {
    this.ajv.addSchema({ $id: 'openapi.json', components: spec.components });
  }

  /** The problems with `response` as the answer to `method url`; empty if it keeps the contract. */
  problems(method: string, url: string, response: { statusCode: number; headers: Record<string, unknown>; body: string }): string[] {
    const pathname = url.split('?')[0]!;
    const template = this.templates.find(({ pattern }) => pattern.test(pathname))?.path;
    const operation = template === undefined ? undefined : spec.paths[template]![method.toLowerCase() as (typeof METHODS)[number]];
    if (!operation) return [`no operation for ${method} ${pathname}`];
    const documented = operation.responses[String(response.statusCode)] ?? operation.responses.default;
    if (!documented) return [`${operation.operationId} does not document status ${response.statusCode}`];
    const expected = deref(documented);
    return [...this.headerProblems(expected, response.headers), ...this.bodyProblems(expected, response)];
  }

  /** Problems of a body that must be an `Error`, for answers no operation owns (unknown routes). */
  errorProblems(body: string): string[] {
    return this.validate({ $ref: 'openapi.json#/components/schemas/Error' }, JSON.parse(body));
  }

  private headerProblems(expected: ResponseObject, headers: Record<string, unknown>): string[] {
    const problems: string[] = [];
    for (const [name, header] of Object.entries(expected.headers ?? {})) {
      const { required, schema } = deref(header);
      const value = headers[name.toLowerCase()];
      if (value === undefined) {
        if (required) problems.push(`header ${name} is missing`);
        continue;
      }
      problems.push(...this.validate(schema, value).map((p) => `header ${name}: ${p}`));
    }
    return problems;
  }

  private bodyProblems(expected: ResponseObject, response: { headers: Record<string, unknown>; body: string }): string[] {
    if (!expected.content) return response.body === '' ? [] : [`a body where none is documented: ${response.body.slice(0, 80)}`];
    const type = String(response.headers['content-type'] ?? '').split(';')[0]!.trim();
    const mediaType = Object.entries(expected.content).find(([key]) => key.split(';')[0]!.trim() === type)?.[1];
    if (!mediaType) return [`content-type ${type} is not among ${Object.keys(expected.content).join(', ')}`];
    if (!mediaType.schema) return [];
    const body = type === 'application/json' ? (JSON.parse(response.body) as unknown) : response.body;
    return this.validate(mediaType.schema, body);
  }

  private validate(schema: Json, value: unknown): string[] {
    const text = JSON.stringify(schema).replaceAll('"#/components/', '"openapi.json#/components/');
    let validate = this.compiled.get(text);
    if (!validate) this.compiled.set(text, (validate = this.ajv.compile(JSON.parse(text) as Json)));
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'} ${JSON.stringify(e.params)}`);
  }
}

t.test('the response checker refuses answers that break the contract', async (t) => {
  const checker = new ResponseChecker();
  const headers = { 'content-type': 'application/json; charset=utf-8' };
  const has = (problems: string[], pattern: RegExp): boolean => problems.some((p) => pattern.test(p));
  const written = checker.problems('PUT', '/collections/c/docs/d', { statusCode: 200, headers, body: '{"id":7,"rev":2}' });
  t.ok(has(written, /header ETag is missing/), 'a missing required header');
  t.ok(has(written, /\/id must be string/), 'a field of the wrong type');
  t.ok(has(written, /required property 'tsn'/), 'a missing field');
  const leaky = checker.problems('GET', '/collections/c', { statusCode: 404, headers, body: '{"statusCode":404,"code":"DOCKET_ERR_NOPE","error":"Not Found","message":"m","stack":"at x"}' });
  t.ok(has(leaky, /must be equal to one of the allowed values/), 'a code outside ErrorCode');
  t.ok(has(leaky, /must NOT have additional properties/), 'an error that says more than the four fields');
  t.ok(has(checker.problems('GET', '/collections/c', { statusCode: 418, headers, body: '{}' }), /does not document status 418/));
  t.ok(has(checker.problems('GET', '/collections/c/docs/d', { statusCode: 304, headers: { etag: '"3"' }, body: '{}' }), /a body where none is documented/));
  t.ok(has(checker.problems('GET', '/collections/c/docs/d', { statusCode: 200, headers: { 'content-type': 'text/html', etag: '"3"' }, body: '<p>' }), /content-type text\/html is not among/));
  t.same(checker.problems('PUT', '/collections/c/docs/d', { statusCode: 201, headers: { ...headers, etag: '"3"', location: '/collections/c/docs/d' }, body: '{"id":"d","rev":3,"tsn":3}' }), [], 'a good answer has no problems');
  t.ok(has(checker.problems('PUT', '/collections/c/docs/d', { statusCode: 201, headers: { ...headers, etag: 'W/"3"', location: '/c' }, body: '{"id":"d","rev":3,"tsn":3}' }), /header ETag: .*pattern/), 'a weak ETag');
  t.ok(has(checker.problems('GET', '/nowhere', { statusCode: 200, headers, body: '{}' }), /no operation/));
});

type Case = [method: InjectOptions['method'], url: string, status: number, options?: Omit<InjectOptions, 'method' | 'url'>];

const json = (body: string): Omit<InjectOptions, 'method' | 'url'> => ({ payload: body, headers: { 'content-type': 'application/json' } });
const ndjson = (lines: string[]): Omit<InjectOptions, 'method' | 'url'> => ({ payload: lines.join('\n') + '\n', headers: { 'content-type': 'application/x-ndjson' } });
const PEOPLE = { schema: { type: 'object', properties: { age: { type: 'integer' } } }, columns: { first: 'name', last: 'name' }, fieldFamiliesMax: 4 };
const TOO_MANY_FIELDS = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [`f${i}`, i]));

/** In order, on one store: each request, the status it must get, and so which response it is checked against. */
const CASES: Case[] = [
  ['GET', '/', 200],
  ['GET', '/healthz', 200],
  ['GET', '/stats', 200],
  ['GET', '/metrics', 200],
  ['PUT', '/collections/people', 201, { payload: PEOPLE }],
  ['PUT', '/collections/people', 200, { payload: PEOPLE }],
  ['PUT', '/collections/people', 409, { payload: {} }],
  ['PUT', '/collections/no!pe', 400],
  ['PUT', '/collections/other', 400, { payload: { nope: 1 } }],
  ['PUT', '/collections/other', 415, { payload: 'x', headers: { 'content-type': 'text/plain' } }],
  ['GET', '/collections', 200],
  ['GET', '/collections/people', 200],
  ['GET', '/collections/nobody', 404],
  ['PUT', '/collections/people/docs/ada', 201, { payload: { first: 'Ada', age: 36 } }],
  ['PUT', '/collections/people/docs/ada', 200, { payload: { first: 'Ada', age: 36, notes: [{ deep: true }] } }],
  ['GET', '/collections/people/docs/ada', 200],
  ['GET', '/collections/people/docs/ada?fields=first,missing', 200],
  ['HEAD', '/collections/people/docs/ada', 200],
  ['GET', '/collections/people/docs/ada', 304, { headers: { 'if-none-match': '*' } }],
  ['HEAD', '/collections/people/docs/ada', 304, { headers: { 'if-none-match': '*' } }],
  ['HEAD', '/collections/people/docs/nobody', 404],
  ['GET', '/collections/people/docs/nobody', 404],
  ['GET', '/collections/nobody/docs/ada', 404],
  ['POST', '/collections/people/docs', 201, { payload: { first: 'Grace' } }],
  ['PATCH', '/collections/people/docs/ada', 200, { payload: JSON.stringify({ age: 37, last: 'Lovelace', notes: null }), headers: { 'content-type': 'application/merge-patch+json' } }],
  ['PATCH', '/collections/people/docs/ada', 422, { payload: { age: 'old' } }],
  ['PATCH', '/collections/people/docs/ada', 200, { payload: '[{"op":"test","path":"/first","value":"Ada"},{"op":"add","path":"/tags","value":["a"]}]', headers: { 'content-type': 'application/json-patch+json' } }],
  ['PATCH', '/collections/people/docs/ada', 409, { payload: '[{"op":"test","path":"/first","value":"Grace"}]', headers: { 'content-type': 'application/json-patch+json' } }],
  ['PATCH', '/collections/people/docs/ada', 409, { payload: '[{"op":"remove","path":"/nothing"}]', headers: { 'content-type': 'application/json-patch+json' } }],
  ['PATCH', '/collections/people/docs/ada', 400, { payload: '[{"op":"nope","path":"/first"}]', headers: { 'content-type': 'application/json-patch+json' } }],
  ['PATCH', '/collections/people/docs/nobody', 404, { payload: { age: 1 } }],
  ['PUT', '/collections/people/docs/ada', 412, { payload: { first: 'Ada' }, headers: { 'if-match': '"1"' } }],
  ['PUT', '/collections/people/docs/ada', 412, { payload: { first: 'Ada' }, headers: { 'if-none-match': '*' } }],
  ['DELETE', '/collections/people/docs/ada', 412, { headers: { 'if-match': '"1"' } }],
  ['PUT', '/collections/people/docs/ada', 400, { payload: { first: 'Ada' }, headers: { 'if-match': 'nonsense' } }],
  ['PUT', '/collections/people/docs/ada', 400, json('[1, 2]')],
  ['PUT', '/collections/people/docs/ada', 400, json('{"first":')],
  ['PUT', '/collections/people/docs/ada', 400],
  ['PUT', `/collections/people/docs/${'x'.repeat(600)}`, 400, { payload: {} }],
  ['GET', `/collections/people/docs/${'x'.repeat(2000)}`, 414],
  ['HEAD', `/collections/people/docs/${'x'.repeat(2000)}`, 414],
  ['PUT', '/collections/people/docs/ada', 413, { payload: TOO_MANY_FIELDS }],
  ['PUT', '/collections/people/docs/ada', 415, { payload: 'Ada', headers: { 'content-type': 'text/plain' } }],
  ['GET', '/collections/people/docs?limit=1', 200],
  ['GET', '/collections/people/docs?after=a&prefix=a&fields=first', 200],
  ['GET', '/collections/people/docs?limit=0', 400],
  ['GET', '/collections/nobody/docs', 404],
  ['POST', '/collections/people/bulk', 200, ndjson(['{"id":"b1","first":"B"}', '', '{oops', '{"id":"b2","age":"x"}', '{"first":"no id"}'])],
  ['POST', '/collections/people/bulk?atomic=true&id_field=key', 400, ndjson(['{"key":"b3"}', '[1]'])],
  ['POST', '/collections/people/bulk?atomic=true', 422, ndjson(['{"id":"b3","age":"x"}'])],
  ['POST', '/collections/people/bulk', 415, { payload: { id: 'b4' } }],
  ['POST', '/collections/nobody/bulk', 404, ndjson(['{"id":"b5"}'])],
  ['DELETE', '/collections/people/docs/ada', 200],
  ['DELETE', '/collections/people/docs/ada', 404],
  ['GET', '/changes', 200],
  ['GET', '/changes?since=1&limit=2&collection=people', 200],
  ['GET', '/changes?since=0&include_docs=true', 200],
  ['GET', '/changes?since=now', 200],
  ['GET', '/changes?since=then', 400],
  ['GET', '/changes?feed=longpoll&timeout=0&since=1000', 200],
  ['GET', '/changes?limit=0', 400],
  ['GET', '/changes?feed=sometimes', 400],
  ['DELETE', '/collections/people', 200],
  ['DELETE', '/collections/people', 404],
  ['GET', '/changes?collection=people', 200],
  ['GET', '/openapi.yaml', 200],
  ['GET', '/openapi.json', 200],
  ['GET', '/docs', 200],
  ['GET', '/docs/swagger-ui.css', 200],
  ['GET', '/docs/swagger-ui-bundle.js', 200],
  ['GET', '/docs/docket-swagger-ui.js', 200],
  ['GET', '/docs/favicon-16x16.png', 200],
  ['GET', '/docs/..%2Fpackage.json', 404],
  ['GET', '/docs/index.html', 404],
];

async function expectContract(t: Test, app: FastifyInstance, checker: ResponseChecker, [method, url, status, options]: Case): Promise<void> {
  const response = await app.inject({ method, url, ...options });
  const name = `${method} ${url.slice(0, 60)}`;
  t.equal(response.statusCode, status, `${name} answers ${status}`, { body: response.body.slice(0, 300) });
  t.same(checker.problems(method as string, url, response), [], `${name} → ${response.statusCode} keeps the contract`);
}

t.test('live responses, successes and errors, validate against openapi.yaml', async (t) => {
  const app = await buildApp({ config: { dataDirectory: t.testdir() }, store: { epochCheckIntervalMs: 0 } });
  t.teardown(() => app.close());
  await app.docket.opened;
  const checker = new ResponseChecker();
  for (const testCase of CASES) await expectContract(t, app, checker, testCase);

  const unrouted = await app.inject({ method: 'GET', url: '/no/such/route' });
  t.equal(unrouted.statusCode, 404);
  t.same(checker.errorProblems(unrouted.body), [], 'an unknown route answers an Error');
  t.equal(unrouted.json().code, DocketErrorCode.ROUTE_NOT_FOUND);
});

t.test('served contract: /openapi.yaml as written, /openapi.json the same document, /docs loads it', async (t) => {
  const app = await buildApp({ config: { dataDirectory: t.testdir() } });
  t.teardown(() => app.close());
  t.equal((await app.inject({ method: 'GET', url: '/openapi.yaml' })).body, SPEC_TEXT);
  t.same((await app.inject({ method: 'GET', url: '/openapi.json' })).json(), spec);
  const page = await app.inject({ method: 'GET', url: '/docs' });
  t.match(page.headers['content-type'], /^text\/html/);
  for (const asset of page.body.matchAll(/(?:src|href)="([^"]+)"/g)) {
    const response = await app.inject({ method: 'GET', url: asset[1]! });
    t.equal(response.statusCode, 200, `${asset[1]} is served`);
  }
  t.match((await app.inject({ method: 'GET', url: '/docs/docket-swagger-ui.js' })).body, "url: '/openapi.json'");
  const parameters = (spec.paths['/docs/{file}']!.get as unknown as { parameters: { schema: { enum: string[] } }[] }).parameters;
  for (const name of parameters[0]!.schema.enum) t.equal((await app.inject({ method: 'GET', url: `/docs/${name}` })).statusCode, 200, `/docs/${name}, in the spec, is served`);
  for (const name of ['..%2F..%2Fpackage.json', '%2Fetc%2Fpasswd', 'swagger-ui.css.map', 'index.html', 'package.json']) {
    const response = await app.inject({ method: 'GET', url: `/docs/${name}` });
    t.equal(response.statusCode, 404, `/docs/${name} is not served`);
    t.equal(response.json().code, DocketErrorCode.ROUTE_NOT_FOUND);
  }
});

t.test('while the store recovers: GET / is 200 with a null tsn, store routes are 503 as documented', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  // Recovery starts with mkdir; holding it back keeps the store recovering.
  class GatedFileSystem extends RealFileSystem {
    override async mkdir(directory: string): Promise<void> {
      await gate;
      return super.mkdir(directory);
    }
  }
  const app = await buildApp({ config: { dataDirectory: t.testdir() }, store: { fileSystem: new GatedFileSystem() } });
  t.teardown(async () => {
    release();
    await app.close();
  });
  const checker = new ResponseChecker();
  const root = await app.inject({ method: 'GET', url: '/' });
  t.match(root.json(), { phase: 'recovering', tsn: null });
  t.same(checker.problems('GET', '/', root), []);
  const cases: Case[] = [
    ['GET', '/healthz', 503],
    ['GET', '/stats', 503],
    ['GET', '/collections', 503],
    ['PUT', '/collections/c/docs/d', 503, { payload: {} }],
    ['GET', '/changes', 503],
    ['GET', '/metrics', 200],
    ['GET', '/openapi.json', 200],
  ];
  for (const testCase of cases) await expectContract(t, app, checker, testCase);
  release();
  await app.docket.opened;
});
