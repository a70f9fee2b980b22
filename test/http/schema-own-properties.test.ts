// JSON Schema validation sees a document's own members only: names that Object.prototype
// holds (`constructor`, `toString`, `__proto__`, `hasOwnProperty`, `valueOf`) are judged as
// the document has them, in `required`, `properties` and `dependentRequired`, through PUT,
// PATCH (merge patch) and bulk. (ajv itself skips `__proto__` in `properties`; src/catalog.ts
// compiles that entry as patternProperties `^__proto__$`.)

import type { FastifyInstance } from 'fastify';
import t from 'tap';
import { buildApp } from '../../server/app.js';
import { openApp } from '../helpers/app.js';

const NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];


/** `schema` as JSON text where it names `__proto__` (an object literal's `__proto__:` sets the prototype). */
async function collection(app: FastifyInstance, name: string, schema: object | string): Promise<void> {
  const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
  const response = await app.inject({ method: 'PUT', url: `/collections/${name}`, headers: { 'content-type': 'application/json' }, payload: `{"schema":${text}}` });
  if (response.statusCode !== 201) throw new Error(`${name}: ${response.body}`);
}

function put(app: FastifyInstance, name: string, id: string, text: string) {
  return app.inject({ method: 'PUT', url: `/collections/${name}/docs/${id}`, headers: { 'content-type': 'application/json' }, payload: text });
}

t.test('required: a schema requiring a prototype name refuses {} and takes a document that has it', async (t) => {
  const app = await openApp(t);
  for (const [i, name] of NAMES.entries()) {
    await collection(app, `r${i}`, { type: 'object', required: [name] });
    const empty = await put(app, `r${i}`, 'a', '{}');
    t.equal(empty.statusCode, 422, `required ${name}: {} is refused`);
    t.equal(empty.json().code, 'DOCKET_ERR_DOCUMENT_SCHEMA');
    t.equal((await put(app, `r${i}`, 'b', `{"${name}":1}`)).statusCode, 201, `required ${name}: a document with it is taken`);
    // Bulk checks lines the same way.
    const bulk = await app.inject({ method: 'POST', url: `/collections/r${i}/bulk`, headers: { 'content-type': 'application/x-ndjson' }, payload: `{"id":"c"}\n{"id":"d","${name}":true}\n` });
    t.match(bulk.json(), { lines: 2, stored: 1, failed: 1, errors: [{ line: 1, code: 'DOCKET_ERR_DOCUMENT_SCHEMA' }] }, `required ${name}: in bulk`);
  }
});

t.test('properties: typing a prototype name as a number takes {} and holds a document that has it', async (t) => {
  const app = await openApp(t);
  for (const [i, name] of NAMES.entries()) {
    await collection(app, `p${i}`, { type: 'object', properties: { [name]: { type: 'number' } } });
    t.equal((await put(app, `p${i}`, 'a', '{}')).statusCode, 201, `properties ${name}: {} is taken`);
    t.equal((await put(app, `p${i}`, 'b', `{"${name}":7}`)).statusCode, 201, `properties ${name}: a number is taken`);
    const wrong = await put(app, `p${i}`, 'c', `{"${name}":"seven"}`);
    t.equal(wrong.statusCode, 422, `properties ${name}: a string is refused`);
    // A merge patch is validated on the merged document.
    const patch = await app.inject({ method: 'PATCH', url: `/collections/p${i}/docs/a`, headers: { 'content-type': 'application/merge-patch+json' }, payload: `{"${name}":"x"}` });
    t.equal(patch.statusCode, 422, `properties ${name}: a patch making it a string is refused`);
    const other = await app.inject({ method: 'PATCH', url: `/collections/p${i}/docs/a`, headers: { 'content-type': 'application/merge-patch+json' }, payload: '{"other":1}' });
    t.equal(other.statusCode, 200, `properties ${name}: a patch not naming it is taken`);
  }
});

t.test('dependentRequired: a prototype name triggers, and is required, only as an own member', async (t) => {
  const app = await openApp(t);
  for (const [i, name] of NAMES.entries()) {
    // If the document has `name`, it must have `other`; if it has `trigger`, it must have `name`.
    await collection(app, `d${i}`, { type: 'object', dependentRequired: { [name]: ['other'], trigger: [name] } });
    t.equal((await put(app, `d${i}`, 'a', '{}')).statusCode, 201, `dependentRequired ${name}: {} triggers nothing`);
    t.equal((await put(app, `d${i}`, 'b', `{"${name}":1}`)).statusCode, 422, `dependentRequired ${name}: having it requires other`);
    t.equal((await put(app, `d${i}`, 'c', `{"${name}":1,"other":2}`)).statusCode, 201, `dependentRequired ${name}: with other it is taken`);
    t.equal((await put(app, `d${i}`, 'd', '{"trigger":1}')).statusCode, 422, `dependentRequired ${name}: trigger requires it as an own member`);
    t.equal((await put(app, `d${i}`, 'e', `{"trigger":1,"${name}":0,"other":0}`)).statusCode, 201, `dependentRequired ${name}: and takes it when present`);
  }
});

t.test('a schema keeps its prototype names across a restart (the definition is reread from the catalog)', async (t) => {
  const directory = t.testdir();
  const first = await buildApp({ config: { dataDirectory: directory }, store: { epochCheckIntervalMs: 0 } });
  await first.docket.opened;
  await collection(first, 'k', '{"type":"object","required":["__proto__","constructor"],"properties":{"__proto__":{"type":"number"}}}');
  await first.close();
  const app = await buildApp({ config: { dataDirectory: directory }, store: { epochCheckIntervalMs: 0 } });
  t.teardown(() => app.close());
  await app.docket.opened;
  t.equal((await put(app, 'k', 'a', '{}')).statusCode, 422, '{} is refused');
  t.equal((await put(app, 'k', 'b', '{"__proto__":"x","constructor":1}')).statusCode, 422, '__proto__ must be a number');
  t.equal((await put(app, 'k', 'c', '{"__proto__":1,"constructor":1}')).statusCode, 201, 'both own and right: taken');
  const info = await app.inject({ method: 'GET', url: '/collections/k' });
  t.same(Object.keys(info.json().schema.properties), ['__proto__'], 'the definition is kept as given');
});

t.test('__proto__ in properties next to additionalProperties: false and a patternProperties of its own', async (t) => {
  const app = await openApp(t);
  await collection(app, 'a', '{"type":"object","properties":{"__proto__":{"type":"number"},"b":{}},"patternProperties":{"^__proto__$":{"minimum":5}},"additionalProperties":false}');
  t.equal((await put(app, 'a', 'x', '{"__proto__":7,"b":1}')).statusCode, 201, 'both entries hold');
  t.equal((await put(app, 'a', 'y', '{"__proto__":3}')).statusCode, 422, 'the patternProperties entry still applies');
  t.equal((await put(app, 'a', 'z', '{"__proto__":"s"}')).statusCode, 422, 'the properties entry applies');
  t.equal((await put(app, 'a', 'w', '{"c":1}')).statusCode, 422, 'other names are additional');
});
