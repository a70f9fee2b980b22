// `docket load` end to end: the compiled command against a real server. Bad lines are named by
// file and line and counted while the load goes on; a load stopped by SIGKILL, by Ctrl-C or by
// the server dying resumes after the last acknowledged line, and ends with every line stored
// once (re-sent at most the requests that were in flight); arguments and inputs are checked
// before anything is sent.

import t from 'tap';
import { spawn } from 'node:child_process';
import { promises as fs, watch } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { redditCommentLines } from '../../bench/reddit.js';
import { CLI_PATH, startServer, type RunningServer } from '../helpers/server.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/comments-300.ndjson.zst', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

interface Loading {
  readonly done: Promise<Run>;
  kill(signal: NodeJS.Signals): void;
}

function startLoad(args: string[], options: { cwd: string; stdin?: Buffer }): Loading {
  const child = spawn(process.execPath, [CLI_PATH, 'load', ...args], { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.end(options.stdin ?? '');
  const done = new Promise<Run>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { done, kill: (signal) => child.kill(signal) };
}

function load(args: string[], options: { cwd: string; stdin?: Buffer }): Promise<Run> {
  return startLoad(args, options).done;
}

function summaryOf(run: Run): { lines: number; stored: number; failed: number; complete: boolean } {
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { lines: number; stored: number; failed: number; complete: boolean };
}

function comments(seed: number, count: number): string[] {
  return [...redditCommentLines(seed, count)];
}

/** Every id in the collection, through the listing's cursor. */
async function listIds(server: RunningServer, collection: string): Promise<string[]> {
  const ids: string[] = [];
  let after: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ limit: '1000', ...(after ? { after } : {}) });
    const page = (await (await fetch(`${server.url}/collections/${collection}/docs?${query}`)).json()) as { documents: { id: string }[]; next?: string | null };
    ids.push(...page.documents.map((doc) => doc.id));
    if (!page.next) return ids;
    after = page.next;
  }
}

/** Writes to `collection` in the change feed (one per stored line, re-sent ones included). */
async function writesTo(server: RunningServer, collection: string): Promise<number> {
  let since = 0;
  let writes = 0;
  for (;;) {
    const page = (await (await fetch(`${server.url}/changes?collection=${collection}&limit=10000&since=${since}`)).json()) as { changes: { id?: string }[]; last: number };
    writes += page.changes.filter((change) => change.id !== undefined).length;
    if (page.last === since) return writes;
    since = page.last;
  }
}

/**
 * Resolves true once the checkpoint says at least `lines` lines of the first input were
 * acknowledged, or false if the load ends first. The checkpoint is read again each time the
 * loader changes its directory (it writes the checkpoint and renames it into place).
 */
function checkpointPast(file: string, lines: number, done: Promise<unknown>): Promise<boolean> {
  const passed = async (): Promise<boolean> => {
    try {
      const checkpoint = JSON.parse(await fs.readFile(file, 'utf8')) as { position: { input: number; line: number } };
      return checkpoint.position.input > 0 || checkpoint.position.line >= lines;
    } catch {
      return false; // Not written yet, or being renamed into place.
    }
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    let checking = false;
    let again = false;
    const finish = (outcome: boolean): void => {
      if (settled) return;
      settled = true;
      watcher.close();
      resolve(outcome);
    };
    // Watching starts before the first read, so no change between the two is missed.
    const watcher = watch(path.dirname(file), () => void check());
    watcher.on('error', reject);
    const check = async (): Promise<void> => {
      if (checking) {
        again = true;
        return;
      }
      checking = true;
      do {
        again = false;
        if (await passed()) finish(true);
      } while (again && !settled);
      checking = false;
    };
    void check();
    void done.then(() => finish(false));
  });
}

t.test('bad lines are reported by file and line and counted, the rest is stored, and the exit status is 1', async (t) => {
  const dir = t.testdir();
  const server = await startServer({ dataDir: path.join(dir, 'data') });
  t.teardown(() => server.stop());
  const good = comments(1, 400);
  await fs.writeFile(path.join(dir, 'good.ndjson'), good.join('\n') + '\n');
  const badLines = ['{"title": "no id: one is generated"}', '{"id": "ok-1", "n": 1}', '{not json', '', '[1,2,3]', '{"id": 7}', '{"id": "ok-2"}'];
  await fs.writeFile(path.join(dir, 'bad.ndjson.gz'), gzipSync(badLines.join('\r\n')));
  const errorsFile = path.join(dir, 'errors.ndjson');
  const run = await load(['good.ndjson', 'bad.ndjson.gz', FIXTURE, '--collection', 'comments', '--url', server.url, '--json', '--batch-lines', '64', '--errors', errorsFile], { cwd: dir });
  t.equal(run.code, 1, run.stderr);
  const summary = summaryOf(run);
  t.same([summary.lines, summary.stored, summary.failed, summary.complete], [400 + 6 + 300, 400 + 3 + 300, 3, true]);
  t.match(run.stderr, /bad\.ndjson\.gz:3: DOCKET_ERR_BODY_INVALID: /);
  t.match(run.stderr, /bad\.ndjson\.gz:5: DOCKET_ERR_DOCUMENT_INVALID: /);
  t.match(run.stderr, /bad\.ndjson\.gz:6: DOCKET_ERR_ID_INVALID: /);
  const recorded = (await fs.readFile(errorsFile, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { line: number; code: string });
  t.same(recorded.map((error) => error.line), [3, 5, 6], 'the --errors file records every bad line');
  const ids = await listIds(server, 'comments');
  // Seeds share the id sequence, so the two generated inputs overlap; one id is generated.
  const distinct = new Set([...good, ...comments(7, 300)].map((line) => (JSON.parse(line) as { id: string }).id));
  t.equal(ids.length, distinct.size + 2 + 1, `${ids.length} documents`);
  t.ok(ids.includes('ok-1') && ids.includes('ok-2'));
  const zstFirst = JSON.parse(comments(7, 1)[0]!) as { id: string; body: string };
  const stored = (await (await fetch(`${server.url}/collections/comments/docs/${zstFirst.id}`)).json()) as { body: string };
  t.equal(stored.body, zstFirst.body, 'the .zst input was loaded');
});

for (const stop of ['SIGKILL', 'SIGINT'] as const) {
  t.test(`a load stopped by ${stop} resumes after the last acknowledged line and stores each line once`, async (t) => {
    const dir = t.testdir();
    const server = await startServer({ dataDir: path.join(dir, 'data') });
    t.teardown(() => server.stop());
    const lines = comments(2, 1500);
    await fs.writeFile(path.join(dir, 'in.ndjson'), lines.join('\n') + '\n');
    const args = ['in.ndjson', '--collection', 'c', '--url', server.url, '--json', '--batch-lines', '25', '--in-flight', '2'];
    const loading = startLoad(args, { cwd: dir });
    t.ok(await checkpointPast(path.join(dir, 'docket-load-c.checkpoint.json'), 300, loading.done), 'stopped after 300 lines were acknowledged, before the end');
    loading.kill(stop);
    const stopped = await loading.done;
    if (stop === 'SIGINT') {
      t.equal(stopped.code, 130, 'Ctrl-C exits 130');
      t.match(stopped.stderr, /--resume/);
    } else {
      t.equal(stopped.signal, 'SIGKILL');
    }
    const again = await load(args, { cwd: dir });
    t.equal(again.code, 2, 'without --resume, an unfinished load is not started over silently');
    t.match(again.stderr, /pass --resume to continue it, or --restart/);
    const resumed = await load([...args, '--resume'], { cwd: dir });
    t.equal(resumed.code, 0, resumed.stderr);
    const summary = summaryOf(resumed);
    t.same([summary.lines, summary.stored, summary.failed, summary.complete], [1500, 1500, 0, true], 'the counts span both runs');
    t.equal((await listIds(server, 'c')).length, 1500, 'every line stored, none twice');
    const writes = await writesTo(server, 'c');
    t.ok(writes >= 1500 && writes <= 1500 + 2 * 25, `${writes} writes: at most the two requests in flight were sent again`);
    const done = await load([...args, '--resume'], { cwd: dir });
    t.equal(done.code, 0);
    t.match(done.stderr, /complete; nothing to do/);
  });
}

t.test('when the server dies mid-load the loader exits 3, and --resume against the restarted server completes it', async (t) => {
  const dir = t.testdir();
  const dataDir = path.join(dir, 'data');
  let server = await startServer({ dataDir });
  const lines = comments(3, 1500);
  await fs.writeFile(path.join(dir, 'in.ndjson'), lines.join('\n') + '\n');
  const args = (url: string): string[] => ['in.ndjson', '--collection', 'c', '--url', url, '--json', '--batch-lines', '25'];
  const loading = startLoad(args(server.url), { cwd: dir });
  t.ok(await checkpointPast(path.join(dir, 'docket-load-c.checkpoint.json'), 300, loading.done), 'killed after 300 lines were acknowledged, before the end');
  await server.kill();
  const stopped = await loading.done;
  t.equal(stopped.code, 3, stopped.stderr);
  t.match(stopped.stderr, /run the same command with --resume/);
  server = await startServer({ dataDir });
  t.teardown(() => server.stop());
  const resumed = await load([...args(server.url), '--resume'], { cwd: dir });
  t.equal(resumed.code, 0, resumed.stderr);
  t.equal(summaryOf(resumed).stored, 1500);
  const ids = new Set(await listIds(server, 'c'));
  t.equal(ids.size, 1500);
  for (const line of lines.filter((_, i) => i % 53 === 0)) {
    const expected = JSON.parse(line) as { id: string };
    const stored = await (await fetch(`${server.url}/collections/c/docs/${expected.id}`)).json();
    t.same(stored, expected, `${expected.id} as in the file`);
  }
});

t.test('standard input loads, and resumes by skipping what was acknowledged', async (t) => {
  const dir = t.testdir();
  const server = await startServer({ dataDir: path.join(dir, 'data') });
  t.teardown(() => server.stop());
  const run = await load(['-', '--collection', 'piped', '--url', server.url, '--json'], { cwd: dir, stdin: Buffer.from(comments(4, 250).join('\n')) });
  t.equal(run.code, 0, run.stderr);
  t.equal(summaryOf(run).stored, 250);
  t.equal((await listIds(server, 'piped')).length, 250);
});

t.test('arguments and inputs are checked before anything is sent (exit 2, a message naming the problem)', async (t) => {
  const dir = t.testdir();
  await fs.writeFile(path.join(dir, 'in.ndjson'), '{"id":"a"}\n');
  const url = 'http://127.0.0.1:9'; // Nothing listens: none of these may get as far as connecting.
  const cases: [string[], RegExp][] = [
    [['--collection', 'c'], /no input/],
    [['in.ndjson'], /--collection NAME is required/],
    [['in.ndjson', '--collection', 'no/slash'], /is not a collection name/],
    [['in.ndjson', '--collection', 'c', '--batch-lines', '0'], /--batch-lines must be a positive integer/],
    [['in.ndjson', '--collection', 'c', '--bogus'], /Unknown option '--bogus'/],
    [['missing.ndjson', '--collection', 'c'], /cannot read missing\.ndjson: ENOENT/],
    [['in.ndjson', '--collection', 'c', '--resume'], /there is no checkpoint/],
    [['in.ndjson', '--collection', 'c', '--resume', '--restart'], /exclude each other/],
    [['-', '-', '--collection', 'c'], /can be named once/],
    [['in.ndjson', '--collection', 'c', '--url', 'ftp://x'], /http:\/\//],
  ];
  for (const [args, message] of cases) {
    const run = await load([...args, '--url', url].slice(0, args.includes('--url') ? args.length : undefined), { cwd: dir });
    t.equal(run.code, 2, args.join(' '));
    t.match(run.stderr, message, args.join(' '));
  }
  const unreachable = await load(['in.ndjson', '--collection', 'c', '--url', url], { cwd: dir });
  t.equal(unreachable.code, 3);
  t.match(unreachable.stderr, /could not be reached.*ECONNREFUSED/);
  // A checkpoint of another file (or of this one before it changed) does not resume.
  const checkpoint = { format: 'docket-load-checkpoint/1', collection: 'c', idField: 'id', inputs: [{ path: path.join(dir, 'in.ndjson'), sizeBytes: 5, modifiedMs: 1 }], position: { input: 0, line: 1, offset: 3 }, counts: { lines: 1, stored: 1, failed: 0, bytes: 3 }, complete: false };
  await fs.writeFile(path.join(dir, 'docket-load-c.checkpoint.json'), JSON.stringify(checkpoint));
  const changed = await load(['in.ndjson', '--collection', 'c', '--url', url, '--resume'], { cwd: dir });
  t.equal(changed.code, 2);
  t.match(changed.stderr, /does not match this load: .*changed since/);
});
