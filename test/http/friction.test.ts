// A user's first hour: while the store recovers, 503s are logged once per phase at info with
// replay progress (never at error with a stack per request); the server logs a last line on
// stop; `npm start` rebuilds only when the build is not current (scripts/build.mjs).

import Fastify from 'fastify';
import { copyFileSync, mkdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { DEFAULTS } from '../../server/config.js';
import { Docket, type RecoveryProgress } from '../../server/http/context.js';
import { installErrorHandlers } from '../../server/http/errors.js';
import type { DocumentStore } from '../../src/store.js';
import { statusRoutes } from '../../routes/status.js';
import { startServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

t.test('503s while recovering: one info line with progress, none at error', async (t) => {
  const lines: { level: number; msg: string; progress?: RecoveryProgress }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback): void {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
      callback();
    },
  });
  let report!: (progress: RecoveryProgress) => void;
  // A store that never opens: the server stays recovering, at the progress the test reports.
  const docket = new Docket(DEFAULTS, (onProgress) => {
    report = onProgress;
    return new Promise<DocumentStore>(() => undefined);
  });
  const app = Fastify({ logger: { level: 'info', stream } });
  app.decorate('docket', docket);
  installErrorHandlers(app);
  await app.register(statusRoutes, { docket });
  t.teardown(() => app.close());
  report({ replayed: 1234, total: 5000 });
  for (let i = 0; i < 5; i++) {
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    t.equal(response.statusCode, 503);
    t.equal(response.json().code, 'DOCKET_ERR_UNAVAILABLE');
    t.match(response.json().message, 'the store is recovering (1,234 of 5,000 binlog transactions replayed)');
  }
  report({ replayed: 4000, total: 5000 });
  t.match((await app.inject({ method: 'GET', url: '/healthz' })).json().message, '4,000 of 5,000', 'the 503 says how far replay has got');
  const notices = lines.filter((line) => /503/.test(line.msg));
  t.equal(notices.length, 1, 'one line for six 503s');
  t.equal(notices[0]!.level, 30, 'at info');
  t.match(notices[0]!.msg, '1,234 of 5,000 binlog transactions replayed');
  t.same(notices[0]!.progress, { replayed: 1234, total: 5000 });
  t.equal(lines.filter((line) => line.level >= 50).length, 0, 'nothing at error');
  docket.beginClose();
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 503);
  t.same(lines.filter((line) => /503/.test(line.msg)).map((line) => line.msg).slice(1), ['answering 503: the server is shutting down'], 'and once when shutting down');
});

t.test('the server logs a last line when it stops', async (t) => {
  const server = await startServer({ dataDir: t.testdir() });
  t.equal(await server.stop('SIGTERM'), 0);
  const last = server.logs.join('').trim().split('\n').at(-1)!;
  t.match(JSON.parse(last), { level: 30, signal: 'SIGTERM', msg: /^docket stopped/ });
});

t.test('npm start builds only when the build is not current', async (t) => {
  const { staleness } = (await import(path.join(ROOT, 'scripts', 'build.mjs'))) as { staleness(root?: string): string | undefined };
  const root = t.testdir();
  mkdirSync(path.join(root, 'src'), { recursive: true });
  writeFileSync(path.join(root, 'src', 'a.ts'), 'export {};\n');
  writeFileSync(path.join(root, 'tsconfig.json'), '{}\n');
  const past = new Date(Date.now() - 60_000);
  for (const file of ['src/a.ts', 'tsconfig.json']) utimesSync(path.join(root, file), past, past);
  t.equal(staleness(root), 'no completed build', 'a fresh clone builds');
  mkdirSync(path.join(root, 'dist', 'src'), { recursive: true });
  writeFileSync(path.join(root, 'dist', '.build-stamp'), '');
  t.equal(staleness(root), 'dist/src/cli.js is missing');
  writeFileSync(path.join(root, 'dist', 'src', 'cli.js'), '');
  t.equal(staleness(root), undefined, 'current: no build');
  const later = new Date(Date.now() + 5_000);
  utimesSync(path.join(root, 'src', 'a.ts'), later, later);
  t.equal(staleness(root), 'sources changed since the last build', 'a source edited after the build began');
  utimesSync(path.join(root, 'src', 'a.ts'), past, past);
  utimesSync(path.join(root, 'tsconfig.json'), later, later);
  t.equal(staleness(root), 'sources changed since the last build', 'tsconfig.json edited');
  rmSync(path.join(root, 'dist'), { recursive: true });
  t.equal(staleness(root), 'no completed build', 'dist/ removed');
  // A current build, as prestart sees it (its own copy of the script, so it judges this root
  // and not the checkout the tests run in): it exits at once without compiling or restamping.
  mkdirSync(path.join(root, 'dist', 'src'), { recursive: true });
  mkdirSync(path.join(root, 'scripts'), { recursive: true });
  writeFileSync(path.join(root, 'dist', 'src', 'cli.js'), '');
  writeFileSync(path.join(root, 'dist', '.build-stamp'), '');
  utimesSync(path.join(root, 'tsconfig.json'), past, past);
  copyFileSync(path.join(ROOT, 'scripts', 'build.mjs'), path.join(root, 'scripts', 'build.mjs'));
  const stamped = statSync(path.join(root, 'dist', '.build-stamp')).mtimeMs;
  const prestart = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs'), '--if-stale'], { encoding: 'utf8' });
  t.equal(prestart.status, 0);
  t.equal(prestart.stderr, '', 'nothing was built');
  t.equal(statSync(path.join(root, 'dist', '.build-stamp')).mtimeMs, stamped, 'the stamp is untouched: tsc did not run');
});
