// Hostile input against a real server process over raw sockets: bodies at and over the limit,
// broken JSON and UTF-8, lone surrogates, deep nesting, prototype keys, odd ids and names,
// bad preconditions, media types and query parameters, and abuse of HTTP itself (slow clients,
// lying Content-Length, oversized headers, many connections). Every refusal must be the
// documented 4xx with a DOCKET_ERR_* code in a JSON body; afterwards no 5xx may have been seen,
// the process must still run and serve, and documents written before the corpus read back whole.

import t, { type Test } from 'tap';
import net from 'node:net';
import { DocketErrorCode } from '../../src/errors.js';
import { startServer, type RunningServer } from '../helpers/server.js';

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
/**
 * How late a timeout may cut a slow client off: app.ts checks every quarter of the headers
 * timeout (250 ms here), plus scheduling slack for a busy CI machine. Without that check
 * interval Node's default of 30 s applies, far past this.
 */
const TIMEOUT_SLACK_MS = 2000;
const MIB = 1024 * 1024;
const C = 'h'; // The collection most cases write to.

// ---- a raw HTTP/1.1 client: every byte on the wire is the test's choice ----

interface Reply {
  /** 0 when the server closed the connection without an answer. */
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly json: unknown;
  readonly elapsedMs: number;
  /** Everything the server sent, as Latin-1. */
  readonly wire: string;
}

const statusesSeen = new Map<number, number>();
const serverErrors: string[] = [];

/** Writes `bytes` on a new connection and reads until the server closes it (or `timeoutMs`). */
function exchange(port: number, bytes: Buffer | string, options: { halfClose?: boolean; timeoutMs?: number; label?: string } = {}): Promise<Reply> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    socket.on('connect', () => {
      socket.write(bytes, () => undefined);
      if (options.halfClose) socket.end();
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined); // A reset after the answer is the server's right.
    const timer = setTimeout(() => socket.destroy(), options.timeoutMs ?? 20_000);
    socket.on('close', () => {
      clearTimeout(timer);
      const reply = parseReply(Buffer.concat(chunks), Date.now() - started);
      statusesSeen.set(reply.status, (statusesSeen.get(reply.status) ?? 0) + 1);
      if (reply.status >= 500) serverErrors.push(`${options.label ?? 'request'}: ${reply.status} ${reply.body.slice(0, 200)}`);
      resolve(reply);
    });
  });
}

/** The final response on a connection: interim 1xx responses are skipped, chunked bodies joined. */
function parseReply(bytes: Buffer, elapsedMs: number): Reply {
  const wire = bytes.toString('latin1');
  let rest = bytes;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return { status: 0, headers: {}, body: rest.toString('latin1'), json: undefined, elapsedMs, wire };
    const lines = rest.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue;
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const body = headers['transfer-encoding'] === 'chunked' ? dechunk(rest) : rest.subarray(0, Number(headers['content-length'] ?? rest.length));
    const text = body.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status, headers, body: text, json, elapsedMs, wire };
  }
}

function dechunk(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; ; ) {
    const lineEnd = bytes.indexOf('\r\n', at);
    const size = lineEnd < 0 ? 0 : parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) return Buffer.concat(parts);
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 4 + size;
  }
}

interface RequestOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer | string;
  /** Send the body without a Content-Length (a raw chunked body must come with its header). */
  readonly noLength?: boolean;
}

let server: RunningServer;

function request(method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body, 'utf8');
  let head = `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`;
  for (const [name, value] of Object.entries(options.headers ?? {})) head += `${name}: ${value}\r\n`;
  if (body !== undefined && !options.noLength) head += `Content-Length: ${body.length}\r\n`;
  const bytes = Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
  return exchange(server.port, bytes, { label: `${method} ${path.slice(0, 80)}` });
}

const JSON_TYPE = { 'Content-Type': 'application/json' };
const NDJSON_TYPE = { 'Content-Type': 'application/x-ndjson' };
const docPath = (id: string, collection = C): string => `/collections/${collection}/docs/${id}`;
const put = (id: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> => request('PUT', docPath(id), { headers: { ...JSON_TYPE, ...headers }, body });
const patch = (id: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<Reply> => request('PATCH', docPath(id), { headers: { 'Content-Type': 'application/merge-patch+json', ...headers }, body });
const get = (path: string): Promise<Reply> => request('GET', path);
const bytes = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part))));

async function revisionOf(id: string): Promise<number> {
  const reply = await get(docPath(id));
  if (reply.status !== 200) throw new Error(`setup: GET ${id} is ${reply.status}`);
  return Number(JSON.parse(reply.headers.etag!));
}

// ---- the corpus: each case is one request and what must come back ----

interface Case {
  readonly group: string;
  readonly name: string;
  readonly run: () => Promise<Reply>;
  readonly status: number;
  /** The error code a 4xx must carry; null where no JSON body can come (HEAD, Node's own 400). */
  readonly code?: string | null;
  /** More that must hold: what was stored, what reads back. */
  readonly check?: (t: Test, reply: Reply) => unknown;
}

const cases: Case[] = [];
let group = '';
function add(name: string, run: () => Promise<Reply>, status: number, code?: string | null, check?: Case['check']): void {
  cases.push({ group, name, run, status, ...(code !== undefined ? { code } : {}), ...(check ? { check } : {}) });
}

/** A write that must be stored and read back as `expected` (the exact text when a string). */
function stored(id: string, expected: unknown, collection = C): NonNullable<Case['check']> {
  return async (t) => {
    const reply = await get(docPath(id, collection));
    t.equal(reply.status, 200, `GET ${JSON.stringify(id.slice(0, 60))} after the write`);
    if (typeof expected === 'string') t.ok(reply.body === `${expected}\n`, 'reads back byte for byte');
    else t.same(reply.json, expected, 'reads back the same value');
  };
}

function absent(id: string, collection = C): NonNullable<Case['check']> {
  return async (t) => t.equal((await get(docPath(id, collection))).status, 404, `${JSON.stringify(id)} was not stored`);
}

const {
  LIMIT_EXCEEDED: LIMIT,
  DOCUMENT_FIELD_DUPLICATE: DUPLICATE,
  BODY_INVALID: BODY,
  DOCUMENT_INVALID: DOC,
  ID_INVALID: ID,
  FIELD_NAME_INVALID: FIELD,
  INVALID_ARGUMENT: ARG,
  UNSUPPORTED_MEDIA_TYPE: MEDIA,
  DOCUMENT_CONFLICT: CONFLICT,
  ROUTE_NOT_FOUND: ROUTE,
  COLLECTION_NAME_INVALID: NAME,
  COLLECTION_DEFINITION_INVALID: DEFINITION,
  COLLECTION_NOT_FOUND: NO_COLLECTION,
  COLLECTION_EXISTS: EXISTS,
  DOCUMENT_NOT_FOUND: NO_DOCUMENT,
  REQUEST_TIMEOUT: TIMEOUT,
} = DocketErrorCode;

// -- body size: the HTTP body limit (1 MiB) and the document limit (1 MiB of its JSON) --
group = 'body size';
{
  const exact = `{"a":"${'x'.repeat(MIB - 8)}"}`;
  add('a compact document of exactly 1 MiB is stored and reads back byte for byte', () => put('exact', exact), 201, undefined, stored('exact', exact));
  const padded = `{"a":1}${' '.repeat(MIB - 7)}`;
  add('a body of exactly 1 MiB, mostly whitespace, is stored', () => put('padded', padded), 201, undefined, stored('padded', '{"a":1}'));
  add('a body one byte over 1 MiB is 413 (PUT)', () => put('over', `${exact} `), 413, LIMIT, absent('over'));
  add('a body one byte over 1 MiB is 413 (POST)', () => request('POST', `/collections/${C}/docs`, { headers: JSON_TYPE, body: `${exact} ` }), 413, LIMIT);
  add('a body one byte over 1 MiB is 413 (PATCH)', () => patch('exact', `${exact} `), 413, LIMIT, stored('exact', exact));
  const chunked = `${(MIB + 1).toString(16)}\r\n${exact} \r\n0\r\n\r\n`;
  add('a chunked body one byte over 1 MiB is 413', () => request('PUT', docPath('over'), { headers: { ...JSON_TYPE, 'Transfer-Encoding': 'chunked' }, body: chunked, noLength: true }), 413, LIMIT, absent('over'));
  add('a Content-Length of 5 MB is refused before the body comes', () => exchange(server.port, `PUT ${docPath('over')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{}`, { timeoutMs: 5000 }), 413, LIMIT);
  add('Expect: 100-continue with a 5 MB Content-Length ends in 413', () => exchange(server.port, `PUT ${docPath('over')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n`, { timeoutMs: 5000 }), 413, LIMIT);
  // 800 KB in; re-serialised (JSON.stringify of 100000 for each 1e5) it would be 1.4 MB. Stored as sent, it is 800 KB.
  const growing = `{"a":[${Array.from({ length: 200_000 }, () => '1e5').join(',')}]}`;
  add('a body under the limit is stored as sent, never re-serialised past the limit', () => put('grows', growing), 201, undefined, stored('grows', growing));
  add('a merge patch that takes a document over 1 MiB is 413 and changes nothing', () => patch('half', `{"b":"${'y'.repeat(600_000)}"}`), 413, LIMIT, async (t) => {
    const reply = await get(docPath('half'));
    t.same(Object.keys(reply.json as object), ['a'], 'the document is as before the patch');
  });
  const fields = (count: number): string => `{${Array.from({ length: count }, (_, i) => `"f${i}":${i}`).join(',')}}`;
  add('1,024 top-level fields are stored', () => put('fields1024', fields(1024)), 201, undefined, stored('fields1024', fields(1024)));
  add('1,025 top-level fields are 413', () => put('fields1025', fields(1025)), 413, LIMIT, absent('fields1025'));
  add('a collection definition over the body limit is 413', () => request('PUT', '/collections/toolarge', { headers: JSON_TYPE, body: `{"schema":{"description":"${'d'.repeat(MIB)}"}}` }), 413, LIMIT);
  add('a Content-Length beyond 2^64 is 400', () => exchange(server.port, `PUT ${docPath('over')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n{}`), 400, BODY);
}

// -- JSON that is not JSON, or not a document --
group = 'invalid JSON';
{
  const broken: [string, string | Buffer][] = [
    ['truncated after a colon', '{"a":'],
    ['truncated after a value', '{"a":1'],
    ['a lone open brace', '{'],
    ['a lone close brace', '}'],
    ['a trailing comma', '{"a":1,}'],
    ['single quotes', "{'a':1}"],
    ['unquoted keys', '{a:1}'],
    ['NaN', '{"a":NaN}'],
    ['Infinity', '{"a":Infinity}'],
    ['a leading zero', '{"a":01}'],
    ['a bare minus', '{"a":-}'],
    ['a leading dot', '{"a":.5}'],
    ['two documents', '{"a":1}{"b":2}'],
    ['trailing garbage', '{"a":1} x'],
    ['a byte order mark', '\uFEFF{"a":1}'],
    ['an unknown escape', '{"a":"\\x"}'],
    ['a short \\u escape', '{"a":"\\u12"}'],
    ['a raw control character in a string', bytes('{"a":"', [0x01], '"}')],
    ['a raw NUL in a string', bytes('{"a":"', [0x00], '"}')],
    ['a misspelt literal', '{"a":tru}'],
    ['a comment', '{"a":1 /* note */}'],
    ['an unterminated string', '{"a":"open}'],
    ['a mismatched bracket', '{"a":[1}'],
    ['closing brackets only', ']]]]]]'],
    ['only whitespace', '   \n\t  '],
  ];
  for (const [name, body] of broken) add(`${name} is 400`, () => put('broken', body), 400, BODY, absent('broken'));
  add('broken JSON in a merge patch is 400', () => patch('half', '{"a":'), 400, BODY);
  add('broken JSON in a collection definition is 400', () => request('PUT', '/collections/brokendef', { headers: JSON_TYPE, body: '{"schema":' }), 400, BODY);
  for (const [name, body] of [['an array', '[1,2]'], ['a string', '"text"'], ['null', 'null'], ['a number', '42'], ['true', 'true']] as const) {
    add(`${name} as a document is 400`, () => put('notobject', body), 400, DOC, absent('notobject'));
  }
  add('an array as a merge patch is 400', () => patch('half', '[1]'), 400, DOC);
  add('a number beyond a double (1e400) is stored as sent', () => put('huge', '{"a":1e400}'), 201, undefined, stored('huge', '{"a":1e400}'));
  add('a duplicate top-level name is 400 and stores nothing', () => put('duplicate', '{"a":1,"a":2}'), 400, DUPLICATE, absent('duplicate'));
  add('a duplicate name inside a nested object is stored as sent', () => put('nestedduplicate', '{"a":{"b":1,"b":2}}'), 201, undefined, stored('nestedduplicate', '{"a":{"b":1,"b":2}}'));
}

// -- invalid UTF-8: refused, never patched with U+FFFD --
group = 'invalid UTF-8';
{
  const patterns: [string, number[]][] = [
    ['a lone continuation byte', [0x80]],
    ['an overlong slash (C0 AF)', [0xc0, 0xaf]],
    ['an overlong three-byte form (E0 80 AF)', [0xe0, 0x80, 0xaf]],
    ['a UTF-8-encoded surrogate (ED A0 80)', [0xed, 0xa0, 0x80]],
    ['a truncated three-byte sequence (E2 82)', [0xe2, 0x82]],
    ['a truncated emoji (F0 9F 98)', [0xf0, 0x9f, 0x98]],
    ['the byte FF', [0xff]],
    ['the byte FE', [0xfe]],
    ['a code point past U+10FFFF (F4 90 80 80)', [0xf4, 0x90, 0x80, 0x80]],
    ['a five-byte form (F8 88 80 80 80)', [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ['Latin-1 é (E9)', [0xe9]],
  ];
  for (const [name, pattern] of patterns) add(`${name} in a value is 400`, () => put('utf8', bytes('{"a":"x', pattern, 'y"}')), 400, BODY, absent('utf8'));
  add('invalid UTF-8 in a field name is 400', () => put('utf8', bytes('{"', [0xc3, 0x28], '":1}')), 400, BODY, absent('utf8'));
  add('invalid UTF-8 in a merge patch is 400', () => patch('half', bytes('{"b":"', [0xed, 0xbf, 0xbf], '"}')), 400, BODY);
  add('invalid UTF-8 under a Latin-1 charset parameter is still 400', () => put('utf8', bytes('{"a":"', [0xe9], '"}'), { 'Content-Type': 'application/json; charset=latin1' }), 400, BODY, absent('utf8'));
}

// -- lone surrogates: data in values, refused in names and ids --
group = 'lone surrogates';
{
  const lone: [string, string][] = [['a lone high surrogate', '\\ud800'], ['a lone low surrogate', '\\udfff'], ['a high surrogate between letters', 'x\\ud83dy'], ['a reversed pair', '\\ude00\\ud83d']];
  lone.forEach(([name, text], i) => {
    const body = `{"a":"${text}"}`;
    add(`${name} in a value is stored and reads back identically`, () => put(`surrogate-${i}`, body), 201, undefined, async (t) => {
      const read = await get(docPath(`surrogate-${i}`));
      t.equal(read.body, `${body}\n`, 'the same escape comes back');
      t.same(read.json, JSON.parse(body), 'the same string value');
    });
  });
  add('a lone surrogate in a nested key is data', () => put('nestedkey', '{"a":{"\\ud800":1}}'), 201, undefined, stored('nestedkey', '{"a":{"\\ud800":1}}'));
  add('an escaped surrogate pair reads back as the same character', () => put('pair', '{"a":"\\ud83d\\ude00"}'), 201, undefined, stored('pair', { a: '\u{1F600}' }));
  add('a lone surrogate in a top-level field name is 400', () => put('surrogatename', '{"\\ud800":1}'), 400, FIELD, absent('surrogatename'));
  add('a merge patch adding a lone-surrogate field name is 400', () => patch('half', '{"\\udc00":1}'), 400, FIELD);
  add('a percent-encoded surrogate in an id (%ED%A0%80) is 400', () => put('%ED%A0%80', '{}'), 400, ARG);
}

// -- nesting: the document is depth 1; 64 levels in all are allowed --
group = 'nesting';
{
  const objects = (depth: number): string => '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
  const arrays = (depth: number): string => `{"a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
  add('objects nested 64 deep are stored', () => put('deep64', objects(64)), 201, undefined, stored('deep64', objects(64)));
  add('objects nested 65 deep are 413', () => put('deep65', objects(65)), 413, LIMIT, absent('deep65'));
  add('arrays nested 64 deep are stored', () => put('deeparray64', arrays(64)), 201, undefined, stored('deeparray64', arrays(64)));
  add('arrays nested 65 deep are 413', () => put('deeparray65', arrays(65)), 413, LIMIT, absent('deeparray65'));
  for (const [name, body] of [['100,000 open brackets', '['.repeat(100_000)], ['100,000 nested objects', `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`]] as const) {
    add(`${name} are refused fast`, () => put('abyss', body), 413, LIMIT, (t, reply) => {
      t.ok(reply.elapsedMs < 2000, `answered in ${reply.elapsedMs} ms`);
    });
  }
  const inString = `{"a":"${'['.repeat(100_000)}"}`;
  add('100,000 brackets inside a string are data', () => put('brackets', inString), 201, undefined, stored('brackets', inString));
  const escaped = `{"a":"\\"${'{'.repeat(1000)}\\\\"}`;
  add('brackets after an escaped quote stay inside the string', () => put('escapedquote', escaped), 201, undefined, stored('escapedquote', escaped));
  add('a merge patch nested 65 deep is 413', () => patch('half', objects(65)), 413, LIMIT);
}

// -- big arrays within the byte limit --
group = 'huge arrays';
{
  for (const [name, element, count] of [['zeros', '0', 500_000], ['nulls', 'null', 200_000], ['empty objects', '{}', 300_000], ['empty strings', '""', 300_000]] as const) {
    const body = `{"a":[${Array.from({ length: count }, () => element).join(',')}]}`;
    add(`an array of ${count.toLocaleString('en')} ${name} (${(body.length / 1024).toFixed(0)} KiB) is stored whole`, () => put(`array-${name.replace(' ', '-')}`, body), 201, undefined, stored(`array-${name.replace(' ', '-')}`, body));
  }
}

// -- keys that name JavaScript's prototype machinery are data, and pollute nothing --
group = 'prototype keys';
{
  const poison = '{"__proto__":{"polluted":"yes","schema":{"type":"number"}},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}';
  add('__proto__, constructor and prototype keys are stored as data', () => put('poison', poison), 201, undefined, async (t) => {
    const reply = await get(docPath('poison'));
    t.equal(reply.body, `${poison}\n`, 'reads back byte for byte');
    t.same(Object.keys(JSON.parse(reply.body) as object), ['__proto__', 'constructor', 'prototype'], 'as own keys');
  });
  add('a later document without them has none of their properties', () => put('clean', '{"plain":1}'), 201, undefined, async (t) => {
    const reply = await get(docPath('clean'));
    t.equal(reply.body, '{"plain":1}\n');
    const listed = await get(`/collections/${C}/docs?prefix=clean`);
    t.equal(listed.body, `{"documents":[{"id":"clean","rev":${JSON.parse(reply.headers.etag!)},"doc":{"plain":1}}],"next":null}\n`, 'and lists with none');
  });
  add('a merge patch with a __proto__ object adds a data field', () => patch('clean', '{"__proto__":{"isAdmin":true}}'), 200, undefined, stored('clean', '{"plain":1,"__proto__":{"isAdmin":true}}'));
  add('a merge patch into an existing __proto__ field merges as data', () => patch('clean', '{"__proto__":{"role":"x"}}'), 200, undefined, stored('clean', '{"plain":1,"__proto__":{"isAdmin":true,"role":"x"}}'));
  add('a merge patch of constructor.prototype is data', () => patch('clean', '{"constructor":{"prototype":{"polluted":"yes"}}}'), 200, undefined, stored('clean', '{"plain":1,"__proto__":{"isAdmin":true,"role":"x"},"constructor":{"prototype":{"polluted":"yes"}}}'));
  add('a merge patch with __proto__: null removes that field', () => patch('clean', '{"__proto__":null,"constructor":null}'), 200, undefined, stored('clean', '{"plain":1}'));
  add('toString, hasOwnProperty and valueOf are ordinary fields', () => put('methods', '{"toString":"x","hasOwnProperty":1,"valueOf":[]}'), 201, undefined, stored('methods', '{"toString":"x","hasOwnProperty":1,"valueOf":[]}'));
  add('fields=__proto__ picks that field only', () => get(`${docPath('poison')}?fields=__proto__`), 200, undefined, (t, reply) => t.equal(reply.body, '{"__proto__":{"polluted":"yes","schema":{"type":"number"}}}\n'));
  add('a collection may be named __proto__', () => request('PUT', '/collections/__proto__'), 201, undefined, async (t) => t.equal((await get('/collections/__proto__')).status, 200));
  add('an uncreated collection named constructor is 404', () => get('/collections/constructor'), 404, NO_COLLECTION);
  add('a document in an uncreated collection named hasOwnProperty is 404', () => get(docPath('x', 'hasOwnProperty')), 404, NO_COLLECTION);
  add('a new collection after all that has no schema from a prototype', () => request('PUT', '/collections/fresh', { headers: JSON_TYPE, body: '{}' }), 201, undefined, async (t) => {
    const info = (await get('/collections/fresh')).json as Record<string, unknown>;
    t.notOk('schema' in info, 'no schema');
    t.equal((await request('PUT', docPath('x', 'fresh'), { headers: JSON_TYPE, body: '{"a":"text"}' })).status, 201, 'takes any document');
  });
  add('a bulk load with id_field=__proto__ never reads the prototype', () => request('POST', `/collections/${C}/bulk?atomic=true&id_field=__proto__`, { headers: NDJSON_TYPE, body: '{"a":1}\n{"__proto__":"protoid","a":2}\n' }), 200, undefined, async (t, reply) => {
    t.match(reply.json, { lines: 2, stored: 2, failed: 0 });
    t.equal((await get(docPath('protoid'))).body, '{"__proto__":"protoid","a":2}\n', 'an own __proto__ is the id');
  });
}

// -- ids: anything well-formed without control characters, at most 512 bytes --
group = 'odd ids';
{
  const fine: [string, string, string][] = [
    ['../ twice', '..%2F..%2Fetc%2Fpasswd', '../../etc/passwd'],
    ['..', '..', '..'],
    ['.', '.', '.'],
    ['a slash (%2F)', '%2F', '/'],
    ['spaces', '%20a%20', ' a '],
    ['an emoji', '%F0%9F%98%80', '\u{1F600}'],
    ['a literal %2F (double-encoded)', '%252F', '%2F'],
    ['? and #', '%3F%23', '?#'],
    ['U+FFFF', '%EF%BF%BF', '\uffff'],
    ['U+2028', '%E2%80%A8', '\u2028'],
    ['512 ASCII bytes', 'i'.repeat(512), 'i'.repeat(512)],
    ['512 bytes of emoji', '%F0%9F%98%80'.repeat(128), '\u{1F600}'.repeat(128)],
  ];
  for (const [name, encoded, id] of fine) {
    add(`an id of ${name} is stored and reads back under the same id`, () => put(encoded, '{"odd":true}'), 201, undefined, async (t) => {
      const reply = await get(docPath(encoded));
      t.equal(reply.status, 200);
      const listed = (await get(`/collections/${C}/docs?prefix=${encodeURIComponent(id)}&limit=1`)).json as { documents: { id: string }[] };
      t.equal(listed.documents[0]?.id, id, 'listed under the decoded id');
    });
  }
  const refused: [string, string, number, string][] = [
    ['513 ASCII bytes', 'i'.repeat(513), 400, ID],
    ['129 emoji (516 bytes)', '%F0%9F%98%80'.repeat(129), 400, ID],
    ['NUL (%00)', '%00', 400, ID],
    ['a NUL inside (a%00b)', 'a%00b', 400, ID],
    ['U+0001', '%01', 400, ID],
    ['DEL (%7F)', '%7F', 400, ID],
    ['a newline', 'a%0Ab', 400, ID],
    ['%ZZ', '%ZZ', 400, ARG],
    ['a lone %', '%', 400, ARG],
    ['a truncated UTF-8 sequence (%E2%82)', '%E2%82', 400, ARG],
    ['an overlong slash (%C0%AF)', '%C0%AF', 400, ARG],
    ['5,000 characters', 'l'.repeat(5000), 414, LIMIT],
  ];
  for (const [name, encoded, status, code] of refused) add(`an id of ${name} is ${status}`, () => put(encoded, '{}'), status, code);
  add('a 20 KB URL is 431', () => get(docPath('u'.repeat(20_000))), 431, LIMIT);
  add('a 100 KB URL is 431', () => get(docPath('u'.repeat(100_000))), 431, LIMIT);
  add('a raw space in the path is a malformed request', () => get(`${docPath('a b')}`), 400, BODY);
  add('GET of an id never written is 404', () => get(docPath('%F0%9F%91%BB')), 404, NO_DOCUMENT);
  add('DELETE of an id never written is 404', () => request('DELETE', docPath('..%2Fnothing')), 404, NO_DOCUMENT);
  add('HEAD of a 513-byte id is 400 without a body', () => request('HEAD', docPath('i'.repeat(513))), 400, null);
  add('HEAD of an id never written is 404 without a body', () => request('HEAD', docPath('nothing')), 404, null);
}

// -- collection names: [A-Za-z0-9_-]{1,64} --
group = 'collection names';
{
  const names: [string, string][] = [
    ['a dot', 'a.b'],
    ['65 characters', 'c'.repeat(65)],
    ['..', '%2E%2E'],
    ['an emoji', '%F0%9F%98%80'],
    ['a NUL', 'a%00'],
    ['a space', 'a%20b'],
    ['a slash', 'a%2Fb'],
    ['nothing', ''],
  ];
  for (const [name, encoded] of names) add(`a collection name of ${name} is 400`, () => request('PUT', `/collections/${encoded}`), 400, NAME);
  add('a collection name of 64 characters is fine', () => request('PUT', `/collections/${'c'.repeat(64)}`), 201);
  add('a collection name of %ZZ is 400', () => request('PUT', '/collections/%ZZ'), 400, ARG);
  add('GET of a collection never created is 404', () => get('/collections/nope'), 404, NO_COLLECTION);
  add('DELETE of a collection never created is 404', () => request('DELETE', '/collections/nope'), 404, NO_COLLECTION);
  add('a document in a collection never created is 404', () => request('PUT', docPath('x', 'nope'), { headers: JSON_TYPE, body: '{}' }), 404, NO_COLLECTION);
  add('a listing of a badly named collection is 404', () => get('/collections/a.b/docs'), 404, NO_COLLECTION);
  add('a definition with an unknown key is 400', () => request('PUT', '/collections/def1', { headers: JSON_TYPE, body: '{"bogus":1}' }), 400, DEFINITION);
  add('a definition that is an array is 400', () => request('PUT', '/collections/def2', { headers: JSON_TYPE, body: '[]' }), 400, DEFINITION);
  add('a schema that does not compile is 400', () => request('PUT', '/collections/def3', { headers: JSON_TYPE, body: '{"schema":{"type":"nope"}}' }), 400, DEFINITION);
  add('a schema that is a string is 400', () => request('PUT', '/collections/def4', { headers: JSON_TYPE, body: '{"schema":"object"}' }), 400, DEFINITION);
  add('re-creating a collection with another definition is 409', () => request('PUT', `/collections/${C}`, { headers: JSON_TYPE, body: '{"schema":{"type":"object"}}' }), 409, EXISTS);
}

// -- field names: any well-formed string up to 256 bytes; the server owns none of them --
group = 'field names';
{
  add('an empty field name is stored', () => put('emptykey', '{"":1}'), 201, undefined, stored('emptykey', '{"":1}'));
  add('a merge patch can remove the empty field name', () => patch('emptykey', '{"":null,"b":2}'), 200, undefined, stored('emptykey', '{"b":2}'));
  add('a 256-byte field name is stored', () => put('key256', `{"${'k'.repeat(256)}":1}`), 201, undefined, stored('key256', `{"${'k'.repeat(256)}":1}`));
  add('a 257-byte field name is 400', () => put('key257', `{"${'k'.repeat(257)}":1}`), 400, FIELD, absent('key257'));
  add('a field name of 64 emoji (256 bytes) is stored', () => put('emojikey', `{"${'\u{1F600}'.repeat(64)}":1}`), 201);
  add('a field name of 65 emoji (260 bytes) is 400', () => put('emojikey65', `{"${'\u{1F600}'.repeat(65)}":1}`), 400, FIELD, absent('emojikey65'));
  add('a merge patch adding a 257-byte field name is 400', () => patch('half', `{"${'k'.repeat(257)}":1}`), 400, FIELD);
  add('_id and _rev are the client\'s data, not the server\'s', () => put('owned', '{"_id":"someone-else","_rev":"999","id":7}'), 201, undefined, async (t) => {
    const reply = await get(docPath('owned'));
    t.equal(reply.body, '{"_id":"someone-else","_rev":"999","id":7}\n', 'read back as sent');
    t.not(reply.headers.etag, '"999"', 'the revision is the server\'s own');
  });
  const escapes = '{"quote\\"d":1,"ctl\\u0001":2,"back\\\\slash":3}';
  add('field names that need escaping read back as the same names', () => put('escapedkeys', escapes), 201, undefined, stored('escapedkeys', JSON.parse(escapes)));
}

// -- preconditions: If-Match / If-None-Match --
group = 'preconditions';
{
  const stale = async (header: string, value: (rev: number) => string, method = 'PUT'): Promise<Reply> => {
    const rev = await revisionOf('pre');
    if (method === 'DELETE') return request(method, docPath('pre'), { headers: { [header]: value(rev) } });
    return request(method, docPath('pre'), { headers: { ...JSON_TYPE, [header]: value(rev) }, body: '{"v":"overwritten"}' });
  };
  const unchanged = stored('pre', '{"v":"original"}');
  add('If-Match with a newer revision is 412', () => stale('If-Match', (rev) => `"${rev + 1}"`), 412, CONFLICT, unchanged);
  add('If-Match with an older revision is 412', () => stale('If-Match', (rev) => `"${rev - 1}"`), 412, CONFLICT, unchanged);
  add('If-Match with a weak tag never matches', () => stale('If-Match', (rev) => `W/"${rev}"`), 412, CONFLICT, unchanged);
  add('If-Match "-1" is 412', () => stale('If-Match', () => '"-1"'), 412, CONFLICT, unchanged);
  add('If-Match with a 20-digit revision is 412', () => stale('If-Match', () => '"99999999999999999999"'), 412, CONFLICT, unchanged);
  add('If-Match with a quoted word is 412', () => stale('If-Match', () => '"abc"'), 412, CONFLICT, unchanged);
  add('If-Match that is not an entity tag is 400', () => stale('If-Match', () => 'abc'), 400, ARG, unchanged);
  add('If-Match with an unterminated tag is 400', () => stale('If-Match', (rev) => `"${rev}`), 400, ARG, unchanged);
  add('If-Match of 8 KB of garbage is 400', () => stale('If-Match', () => 'x'.repeat(8000)), 400, ARG, unchanged);
  add('If-None-Match: * on an existing document is 412', () => stale('If-None-Match', () => '*'), 412, CONFLICT, unchanged);
  add('If-None-Match with the current revision is 412', () => stale('If-None-Match', (rev) => `"${rev}"`), 412, CONFLICT, unchanged);
  add('If-None-Match: * on PATCH is 412', () => stale('If-None-Match', () => '*', 'PATCH'), 412, CONFLICT, unchanged);
  add('If-Match on DELETE with a stale revision is 412', () => stale('If-Match', (rev) => `"${rev + 7}"`, 'DELETE'), 412, CONFLICT, unchanged);
  add('If-Match on a document never written is 412', () => put('never', '{}', { 'If-Match': '"1"' }), 412, CONFLICT, absent('never'));
  add('If-Match: * on PATCH of a document never written is 412', () => patch('never', '{}', { 'If-Match': '*' }), 412, CONFLICT, absent('never'));
  add('PATCH of a document never written is 404', () => patch('never', '{"a":1}'), 404, NO_DOCUMENT, absent('never'));
  add('If-Match listing the current revision among others is honoured', () => stale('If-Match', (rev) => `"1", W/"${rev}", "${rev}"`, 'PATCH'), 200, undefined, async (t) => {
    t.equal((await get(docPath('pre'))).body, '{"v":"overwritten"}\n');
    await put('pre', '{"v":"original"}');
  });
}

// -- media types and bodies where none or another belongs --
group = 'media types';
{
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/xml', '']) {
    add(`a document as ${JSON.stringify(type)} is 415`, () => request('PUT', docPath('media'), { headers: { 'Content-Type': type }, body: '{"a":1}' }), 415, MEDIA, absent('media'));
  }
  add('a body without a Content-Type is 415', () => request('PUT', docPath('media'), { body: '{"a":1}' }), 415, MEDIA, absent('media'));
  add('application/json with an empty body is 400', () => put('media', ''), 400, BODY, absent('media'));
  add('a PUT without any body is 400', () => request('PUT', docPath('media')), 400, BODY, absent('media'));
  add('a POST without any body is 400', () => request('POST', `/collections/${C}/docs`), 400, BODY);
  add('a merge patch as text/plain is 415', () => request('PATCH', docPath('half'), { headers: { 'Content-Type': 'text/plain' }, body: '{}' }), 415, MEDIA);
  add('a collection definition as text/plain is 415', () => request('PUT', '/collections/textdef', { headers: { 'Content-Type': 'text/plain' }, body: '{}' }), 415, MEDIA);
  add('a bulk load as application/json is 415', () => request('POST', `/collections/${C}/bulk`, { headers: JSON_TYPE, body: '{"id":"b"}' }), 415, MEDIA);
  add('a bulk load without a Content-Type is 415', () => request('POST', `/collections/${C}/bulk`, { body: '{"id":"b"}\n' }), 415, MEDIA);
  add('a body on GET is ignored', () => request('GET', docPath('pre'), { headers: JSON_TYPE, body: '{' }), 200, undefined, (t, reply) => t.equal(reply.body, '{"v":"original"}\n'));
  add('a broken JSON body on DELETE is 400 and deletes nothing', () => request('DELETE', docPath('pre'), { headers: JSON_TYPE, body: '{' }), 400, BODY, stored('pre', '{"v":"original"}'));
}

// -- query parameters --
group = 'query parameters';
{
  for (const query of ['limit=0', 'limit=1001', 'limit=-1', 'limit=abc', 'limit=1.5', 'limit=', 'limit=1&limit=2', 'limit=%ZZ']) {
    add(`a listing with ${query} is 400`, () => get(`/collections/${C}/docs?${query}`), 400, ARG);
  }
  add('a listing after an id with a control character is 400', () => get(`/collections/${C}/docs?after=a%01`), 400, ID);
  add('a listing after an empty id is 400', () => get(`/collections/${C}/docs?after=`), 400, ID);
  add('a listing after a 513-byte id is 400', () => get(`/collections/${C}/docs?after=${'a'.repeat(513)}`), 400, ID);
  add('fields= (empty) reads a document with no fields', () => get(`${docPath('pre')}?fields=`), 200, undefined, (t, reply) => t.equal(reply.body, '{}\n'));
  add('a prefix holding NUL lists nothing', () => get(`/collections/${C}/docs?prefix=%00`), 200, undefined, (t, reply) => t.same(reply.json, { documents: [], next: null }));
  add('unknown and undecodable parameters are ignored', () => get(`${docPath('pre')}?nope=1&%ZZ=%ZZ`), 200, undefined, (t, reply) => t.equal(reply.body, '{"v":"original"}\n'));
  add('a bulk load with atomic=maybe is 400', () => request('POST', `/collections/${C}/bulk?atomic=maybe`, { headers: NDJSON_TYPE, body: '{"id":"b"}\n' }), 400, ARG);
  add('a bulk load with an empty id_field is 400', () => request('POST', `/collections/${C}/bulk?id_field=`, { headers: NDJSON_TYPE, body: '{"id":"b"}\n' }), 400, ARG);
  add('a bulk load with a 300-byte id_field is 400', () => request('POST', `/collections/${C}/bulk?id_field=${'f'.repeat(300)}`, { headers: NDJSON_TYPE, body: '{"id":"b"}\n' }), 400, ARG);
}

// -- routes and methods that do not exist --
group = 'unknown routes';
{
  for (const [method, path] of [
    ['GET', '/nope'],
    ['POST', '/'],
    ['TRACE', '/'],
    ['OPTIONS', `/collections/${C}`],
    ['PROPFIND', '/'],
    ['DELETE', '/collections'],
    ['PUT', `/collections/${C}/docs`],
    ['PATCH', `/collections/${C}`],
    ['POST', docPath('x')],
    ['GET', '//collections'],
    ['GET', '/healthz/'],
    ['GET', `${docPath('a')}/b`],
    ['GET', '/collections/h/docs/a/../../../healthz/x'],
  ]) {
    add(`${method} ${path} is 404`, () => request(method!, path!), 404, ROUTE);
  }
  add('an unknown method (BREW) is a malformed request', () => request('BREW', '/'), 400, BODY);
  add('CONNECT is closed without an answer', () => request('CONNECT', '127.0.0.1:1'), 0, null);
}

// -- bulk loads (NDJSON): a bad line refuses an atomic load, and is reported in a plain one --
group = 'bulk';
{
  const atomic = (body: Buffer | string): Promise<Reply> => request('POST', `/collections/${C}/bulk?atomic=true`, { headers: NDJSON_TYPE, body });
  const lines: [string, Buffer | string, number, string][] = [
    ['broken JSON', '{"id":"bulk-a"}\n{"id":\n', 400, BODY],
    ['invalid UTF-8', bytes('{"id":"bulk-a"}\n{"id":"x', [0xc0, 0xaf], '"}\n'), 400, BODY],
    ['a line over 1 MiB', `{"id":"bulk-a"}\n{"a":"${'z'.repeat(MIB)}"}\n`, 413, LIMIT],
    ['an id that is a number', '{"id":"bulk-a"}\n{"id":7}\n', 400, ID],
    ['an id with a control character', '{"id":"bulk-a"}\n{"id":"a\\u0007"}\n', 400, ID],
    ['a lone-surrogate id', '{"id":"bulk-a"}\n{"id":"\\ud800"}\n', 400, ID],
    ['an array line', '{"id":"bulk-a"}\n[1,2]\n', 400, DOC],
    ['a line nested 65 deep', `{"id":"bulk-a"}\n${'{"a":'.repeat(65)}1${'}'.repeat(65)}\n`, 413, LIMIT],
  ];
  for (const [name, body, status, code] of lines) add(`an atomic load with ${name} is ${status} and stores nothing`, () => atomic(body), status, code, absent('bulk-a'));
  add('a plain load stores the good lines and reports the bad ones by line', () => request('POST', `/collections/${C}/bulk`, { headers: NDJSON_TYPE, body: '{"id":"bulk-b"}\n{\n\n[1]\n{"id":"bulk-c","x":1}\n' }), 200, undefined, async (t, reply) => {
    t.match(reply.json, { lines: 4, stored: 2, failed: 2, errors: [{ line: 2, code: BODY }, { line: 4, code: DOC }] });
    t.equal((await get(docPath('bulk-c'))).body, '{"id":"bulk-c","x":1}\n');
  });
  add('a bulk load into a collection never created is 404', () => request('POST', '/collections/nope/bulk', { headers: NDJSON_TYPE, body: '{"id":"b"}\n' }), 404, NO_COLLECTION);
}

// ---- HTTP itself, over raw sockets ----

function rawCase(name: string, bytesToSend: string | Buffer, status: number, code: string | null, options: { halfClose?: boolean; timeoutMs?: number } = {}): void {
  add(name, () => exchange(server.port, bytesToSend, { ...options, label: name }), status, code);
}

group = 'HTTP abuse';
{
  rawCase('an invalid request line is 400', 'HELLO WORLD\r\n\r\n', 400, BODY);
  rawCase('an HTTP/2 preface on HTTP/1.1 is 400', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400, BODY);
  rawCase('a 20 KB header is 431', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, LIMIT);
  // NB: Node counts the bytes of names and values only, not the ': ' and CRLF between them.
  rawCase('1,000 headers of 30 bytes each are 431', `GET /healthz HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 1000 }, (_, i) => `X-Header-${String(i).padStart(4, '0')}: ${'v'.repeat(16)}`).join('\r\n')}\r\n\r\n`, 431, LIMIT);
  rawCase('Content-Length with Transfer-Encoding is 400', `PUT ${docPath('smuggled')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, 400, BODY);
  rawCase('two different Content-Lengths are 400', `PUT ${docPath('smuggled')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{} `, 400, BODY);
  rawCase('a negative Content-Length is 400', `PUT ${docPath('smuggled')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`, 400, BODY);
  rawCase('a bad chunk size is 400', `PUT ${docPath('smuggled')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`, 400, BODY);
  rawCase('a space in a header name is 400', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', 400, BODY);
  rawCase('a NUL in a header value is 400', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n', 400, BODY);
  // Node answers a Host-less HTTP/1.1 request itself (RFC 9112 requires the 400), without a body.
  rawCase('an HTTP/1.1 request without Host is 400', 'GET /healthz HTTP/1.1\r\n\r\n', 400, null);
  rawCase('a Content-Length larger than the body, then a half-close, is 400', `PUT ${docPath('short')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":1}`, 400, BODY, { halfClose: true });
  add('a Content-Length larger than the body, then a reset, stores nothing', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.on('connect', resolve));
    socket.write(`PUT ${docPath('reset')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":1}`);
    // The server has the request line, headers and the first bytes of the body; then the reset.
    const incoming = await server.waitForLog((record) => record.msg === 'incoming request' && record.req?.url === docPath('reset'), 'the request to be reset');
    socket.resetAndDestroy();
    await server.waitForLog((record) => record.reqId === incoming.reqId && record.msg === 'request aborted by the client', 'the reset request to end');
    return get(docPath('reset'));
  }, 404, NO_DOCUMENT);
  add('slowloris: headers trickled forever get 408 and a close at the headers timeout', () => trickle(`GET /healthz HTTP/1.1\r\nHost: x\r\n`, 'X-Slow: y\r\n'), 408, TIMEOUT, (t, reply) => {
    t.ok(reply.elapsedMs >= HEADERS_TIMEOUT_MS - 100 && reply.elapsedMs < HEADERS_TIMEOUT_MS + TIMEOUT_SLACK_MS, `closed after ${reply.elapsedMs} ms (headers timeout ${HEADERS_TIMEOUT_MS} ms)`);
  });
  add('a connection that sends nothing is closed at the headers timeout', () => exchange(server.port, '', { timeoutMs: 10_000 }), 408, TIMEOUT, (t, reply) => {
    t.ok(reply.elapsedMs < HEADERS_TIMEOUT_MS + TIMEOUT_SLACK_MS, `closed after ${reply.elapsedMs} ms`);
  });
  add('a body trickled slower than the request timeout gets 408 and stores nothing', () => trickle(`PUT ${docPath('trickled')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":"`, 'x'), 408, TIMEOUT, async (t, reply) => {
    t.ok(reply.elapsedMs >= REQUEST_TIMEOUT_MS - 100 && reply.elapsedMs < REQUEST_TIMEOUT_MS + TIMEOUT_SLACK_MS, `closed after ${reply.elapsedMs} ms (request timeout ${REQUEST_TIMEOUT_MS} ms)`);
    await absent('trickled')(t, reply);
  });
  add('20 pipelined requests on one connection are all answered', () => {
    const one = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    return exchange(server.port, `${one.repeat(19)}GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { label: 'pipelined' });
  }, 200, undefined, (t, reply) => t.equal(reply.wire.split('HTTP/1.1 200 OK').length - 1, 20, 'twenty 200s on the wire'));
  let crowd: Reply[] = [];
  add('200 connections at once are all served', async () => {
    crowd = await Promise.all(Array.from({ length: 200 }, () => get('/healthz')));
    return crowd[0]!;
  }, 200, undefined, (t) => t.same([...new Set(crowd.map((reply) => reply.status))], [200], 'every one 200'));
  add('300 idle connections do not stop the server serving', async () => {
    const idle = await Promise.all(Array.from({ length: 300 }, () => new Promise<net.Socket>((resolve) => {
      const socket = net.connect(server.port, '127.0.0.1', () => resolve(socket));
      socket.on('error', () => undefined);
    })));
    const reply = await get('/healthz');
    for (const socket of idle) socket.destroy();
    return reply;
  }, 200);
}

/** Sends `head`, then `drip` every 200 ms until the server closes; the final reply. */
function trickle(head: string, drip: string): Promise<Reply> {
  return new Promise((resolve) => {
    const started = Date.now();
    const chunks: Buffer[] = [];
    const socket = net.connect(server.port, '127.0.0.1', () => socket.write(head));
    const timer = setInterval(() => socket.writable && socket.write(drip), 200);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    const limit = setTimeout(() => socket.destroy(), 15_000);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(limit);
      const reply = parseReply(Buffer.concat(chunks), Date.now() - started);
      statusesSeen.set(reply.status, (statusesSeen.get(reply.status) ?? 0) + 1);
      if (reply.status >= 500) serverErrors.push(`trickle: ${reply.status}`);
      resolve(reply);
    });
  });
}

// ---- the run ----

const SEED_COUNT = 20;
const seeded = new Map<string, { body: string; etag: string }>();

t.before(async () => {
  server = await startServer({ dataDir: t.testdir(), args: ['--headers-timeout-ms', String(HEADERS_TIMEOUT_MS), '--request-timeout-ms', String(REQUEST_TIMEOUT_MS)] });
  for (const name of [C, 'keep']) {
    const reply = await request('PUT', `/collections/${name}`);
    if (reply.status !== 201) throw new Error(`setup: PUT /collections/${name} is ${reply.status}`);
  }
  // Documents written before the corpus, read back after it.
  for (let i = 0; i < SEED_COUNT; i++) {
    const body = JSON.stringify({ n: i, text: `seed ${i} ${'s'.repeat(i * 100)}`, nested: { list: [i, i + 1] } });
    const reply = await request('PUT', docPath(`seed-${i}`, 'keep'), { headers: JSON_TYPE, body });
    if (reply.status !== 201) throw new Error(`setup: seed ${i} is ${reply.status}`);
    seeded.set(`seed-${i}`, { body, etag: reply.headers.etag! });
  }
  for (const [id, body] of [['half', `{"a":"${'h'.repeat(600_000)}"}`], ['pre', '{"v":"original"}']] as const) {
    if ((await put(id, body)).status !== 201) throw new Error(`setup: ${id}`);
  }
});

t.teardown(async () => {
  await server?.stop();
});

const groups = [...new Set(cases.map((c) => c.group))];
for (const name of groups) {
  t.test(name, async (t) => {
    for (const item of cases.filter((c) => c.group === name)) {
      await t.test(item.name, async (t) => {
        const reply = await item.run();
        t.equal(reply.status, item.status, `status ${item.status}`);
        t.ok(reply.status < 500, 'not a server error');
        if (item.code !== undefined && item.code !== null) {
          t.match(reply.json, { statusCode: reply.status, code: item.code, error: String, message: String }, `${item.code} in a JSON error body`);
        }
        await item.check?.(t, reply);
      });
    }
  });
}

t.test('after the corpus: no 5xx, the process alive and serving, earlier documents intact', async (t) => {
  t.ok(cases.length >= 120, `${cases.length} cases`);
  t.same(serverErrors, [], 'no 5xx anywhere');
  t.equal(server.process.exitCode, null, 'the process has not exited');
  t.equal(server.process.signalCode, null, 'nor been killed');
  const health = await get('/healthz');
  t.equal(health.status, 200, 'GET /healthz is 200');
  for (const [id, { body, etag }] of seeded) {
    const reply = await get(docPath(id, 'keep'));
    t.equal(reply.status, 200, `${id} is there`);
    t.ok(reply.body === `${body}\n` && reply.headers.etag === etag, `${id} reads back whole at its revision`);
  }
  const logged5xx = server.logs.join('').split('\n').filter((line) => /"statusCode":5\d\d/.test(line));
  t.same(logged5xx, [], 'the server logged no 5xx reply');
  const summary = [...statusesSeen].sort(([a], [b]) => a - b).map(([status, count]) => `${status === 0 ? 'closed' : status}×${count}`).join(' ');
  const refusals = cases.filter((c) => c.status >= 400).length;
  const line = `hostile corpus: ${cases.length} cases (${refusals} refusals, ${cases.length - refusals} accepted or closed), ${[...statusesSeen.values()].reduce((a, b) => a + b, 0)} exchanges; statuses ${summary}`;
  t.comment(line); // A summary, not an assertion: the assertions are above.
  console.error(line); // The default reporter shows stderr, not the names of passing assertions.
});
