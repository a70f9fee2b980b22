// `docket backup` against real processes on 127.0.0.1: a backup taken while writers keep the
// server busy restores (docket serve --data-dir) to a store holding every write acknowledged
// before the backup began, whole; the source keeps serving. And the command's refusals: a
// directory that is not empty, a stream cut short, a stream with a flipped byte.
// NB: runs the compiled dist/ (npm test builds first).

import t from 'tap';
import { spawn } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { request } from 'undici';
import { CLI_PATH, startServer } from '../helpers/server.js';

/** Runs `docket backup ARGS`; resolves with its exit status and what it printed. */
function backup(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, 'backup', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const WRITERS = 8;
/** Not a test of load shedding: on a busy 2-core machine the event loop may lag past its bound. */
const NO_SHEDDING = ['--event-loop-delay-max-ms', '0'];
const WRITES_MAX = 20_000;
const BODY = 'b'.repeat(900);

t.test('a backup under write load restores every write acknowledged before it began', async (t) => {
  const root = t.testdir();
  const source = await startServer({ dataDir: path.join(root, 'source'), args: ['--write-buffer-bytes', String(1024 * 1024), ...NO_SHEDDING] });
  t.teardown(() => source.stop());
  await request(`${source.url}/collections/c`, { method: 'PUT' }).then((r) => r.body.dump());
  const acknowledged = new Map<string, number>();
  let next = 0;
  let stop = false;
  let backupRunning = false;
  let duringBackup = 0;
  let reachedBefore: () => void = () => undefined;
  const enough = new Promise<void>((resolve) => (reachedBefore = resolve));
  const writer = async (): Promise<void> => {
    while (!stop && next < WRITES_MAX) {
      const n = next++;
      const response = await request(`${source.url}/collections/c/docs/w${n}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n, body: BODY }) });
      const reply = (await response.body.json()) as { tsn: number };
      if (response.statusCode !== 201) throw new Error(`PUT w${n}: ${response.statusCode} ${JSON.stringify(reply)}`);
      acknowledged.set(`w${n}`, n);
      if (backupRunning) duringBackup++;
      if (acknowledged.size >= 3000) reachedBefore();
    }
  };
  const writers = Array.from({ length: WRITERS }, () => writer());
  await enough;
  const before = new Map(acknowledged);
  const directory = path.join(root, 'backup');
  backupRunning = true;
  const result = await backup(['--url', source.url, directory, '--json', '--quiet']);
  backupRunning = false;
  stop = true;
  await Promise.all(writers);
  t.equal(result.status, 0, `docket backup succeeded: ${result.stderr}`);
  const summary = JSON.parse(result.stdout) as { tsn: number; files: number; bytes: number };
  t.ok(summary.files > 3, `${summary.files} files, ${summary.bytes} bytes, through TSN ${summary.tsn}`);
  t.ok(duringBackup > 0, `the source acknowledged ${duringBackup} writes while the backup ran`);
  const stats = (await (await request(`${source.url}/stats`)).body.json()) as { engine: { flushes: number } };
  t.ok(stats.engine.flushes > 0, `the source had flushed ${stats.engine.flushes} memtables (tables in the backup)`);

  const restored = await startServer({ dataDir: directory, args: NO_SHEDDING });
  t.teardown(() => restored.stop());
  const found = new Map<string, number>();
  let after = '';
  for (;;) {
    const page = (await (await request(`${restored.url}/collections/c/docs?limit=1000${after ? `&after=${after}` : ''}`)).body.json()) as { documents: { id: string; doc: { n: number; body: string } }[]; next: string | null };
    for (const { id, doc } of page.documents) {
      if (doc.body !== BODY || `w${doc.n}` !== id) throw new Error(`${id} restored as ${JSON.stringify(doc).slice(0, 80)}`);
      found.set(id, doc.n);
    }
    if (!page.next) break;
    after = encodeURIComponent(page.next);
  }
  const lost = [...before.keys()].filter((id) => !found.has(id));
  t.same(lost.slice(0, 10), [], `${before.size} writes acknowledged before the backup began: all restored (${found.size} documents in the copy)`);
  t.ok(found.size <= acknowledged.size + WRITERS, 'the copy holds nothing the source never acknowledged (but in-flight writes)');
  const root2 = (await (await request(`${restored.url}/`)).body.json()) as { tsn: number };
  t.equal(root2.tsn, summary.tsn, 'the restored store ends at the backup\'s TSN');
  // The source still serves.
  const put = await request(`${source.url}/collections/c/docs/after`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"after":true}' });
  await put.body.dump();
  t.equal(put.statusCode, 201, 'the source takes writes after the backup');
});

t.test('docket backup refuses a directory that is not empty, and a stream cut short or corrupt', async (t) => {
  const root = t.testdir();
  const source = await startServer({ dataDir: path.join(root, 'source'), args: NO_SHEDDING });
  t.teardown(() => source.stop());
  await request(`${source.url}/collections/c`, { method: 'PUT' }).then((r) => r.body.dump());
  for (let i = 0; i < 50; i++) await request(`${source.url}/collections/c/docs/d${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) }).then((r) => r.body.dump());

  const full = path.join(root, 'full');
  mkdirSync(full);
  writeFileSync(path.join(full, 'keep-me'), 'x');
  const refused = await backup(['--url', source.url, full, '--quiet']);
  t.equal(refused.status, 2);
  t.match(refused.stderr, /DOCKET_ERR_CHECKPOINT_TARGET_NOT_EMPTY/);

  const flushed = await backup(['--url', source.url, path.join(root, 'flushed'), '--flush', '--json', '--quiet']);
  t.equal(flushed.status, 0, `--flush: ${flushed.stderr}`);
  t.ok(existsSync(path.join(root, 'flushed', 'CHECKPOINT')), '--flush: complete');
  const badFlag = await request(`${source.url}/admin/checkpoint?flush=maybe`);
  t.equal(badFlag.statusCode, 400, 'flush=maybe is refused');
  t.equal(((await badFlag.body.json()) as { code: string }).code, 'DOCKET_ERR_INVALID_ARGUMENT');

  const stream = Buffer.from(await (await request(`${source.url}/admin/checkpoint`)).body.arrayBuffer());
  const flipped = Buffer.from(stream);
  flipped[Math.floor(stream.length / 2)]! ^= 0x01;
  // A server that sends a damaged checkpoint: cut short (the response ends early, or the
  // connection breaks before Content-Length), or a flipped byte.
  const cut = stream.subarray(0, stream.length - 100);
  const cases = [
    ['cut', (response: ServerResponse) => response.end(cut), 'DOCKET_ERR_CHECKPOINT_TRUNCATED'],
    ['broken', (response: ServerResponse) => response.write(cut, () => response.destroy()), 'DOCKET_ERR_CHECKPOINT_TRUNCATED', stream.length],
    ['flipped', (response: ServerResponse) => response.end(flipped), 'DOCKET_ERR_CHECKPOINT_CORRUPT'],
  ] as const;
  for (const [name, send, code, length] of cases) {
    const fake = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/vnd.docket.checkpoint', ...(length ? { 'content-length': String(length) } : {}) });
      send(response);
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const directory = path.join(root, name);
    const outcome = await backup(['--url', `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, directory, '--quiet']);
    await new Promise((resolve) => fake.close(resolve));
    t.equal(outcome.status, 3, `${name}: the backup failed`);
    t.match(outcome.stderr, new RegExp(code), `${name}: ${code}`);
    t.ok(existsSync(path.join(directory, 'CHECKPOINT-INCOMPLETE')) && !existsSync(path.join(directory, 'CHECKPOINT')), `${name}: the directory is marked incomplete`);
  }
});
