// The checkpoint benchmark (`npm run bench:checkpoint [-- --docs N --rounds R]`).
//
// Loads N Reddit-comment documents (bench/reddit.ts, seeded) through the document layer into a
// store whose write buffer is small enough that most of them are in tables, then, R rounds
// each, in MB of checkpoint files per second (MB = 2^20 bytes):
//   local    store.checkpoint() + writeCheckpoint into a directory on the same disk (what
//            POST /admin/checkpoint does): tables and complete segments hard-linked, the rest copied
//   stream   store.checkpoint() streamed into installCheckpoint (every byte read, framed,
//            CRC-checked, written and fsynced), in one process: the backup path without HTTP
//   backup   `docket backup --url` against `docket serve` on the same store, two processes on
//            this machine's cores over loopback HTTP (the end-to-end figure)
//   restore  DocumentStore.open on a copy: read the manifest, replay the binlog after its epoch
//   stream, restore with --flush: the same after store.checkpoint({ flush: true }), which flushes
//            every memtable first (the flush is in the time), so the copy holds almost no binlog
// Data lives in bench/.work/checkpoint (removed at exit).

import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { DocumentStore, type BatchOperation } from '../src/store.js';
import { writeCheckpoint } from '../src/checkpoint/target.js';
import { installCheckpoint, streamCheckpoint } from '../src/checkpoint/stream.js';
import { RealFileSystem } from '../storage/index.js';
import { RedditGenerator } from './reddit.js';
import { CLI, environment, fmt, HOST, integerOption, markdownTable, MB, median, parseBenchArgs, ROOT, runBenchmark, startDocket } from './common.js';

const USAGE = `Usage: npm run bench:checkpoint [-- --docs N --rounds R]
  --docs N     Reddit comments loaded first (default 200000)
  --rounds R   measurements of each kind (default 3)
`;
const SEED = 20261203;
const COLLECTION = 'comments';
const BATCH_DOCS = 500;
const BATCHES_IN_FLIGHT = 4;

interface Options {
  readonly workDir: string;
  readonly docs: number;
  readonly rounds: number;
}

async function load(store: DocumentStore, docs: number): Promise<number> {
  const generator = new RedditGenerator(SEED);
  let issued = 0;
  let bytes = 0;
  const writer = async (): Promise<void> => {
    while (issued < docs) {
      const operations: BatchOperation[] = [];
      for (let i = 0; i < BATCH_DOCS && issued < docs; i++, issued++) {
        const doc = generator.next();
        bytes += JSON.stringify(doc).length;
        operations.push({ op: 'put', collection: COLLECTION, id: doc.id, document: doc });
      }
      await store.batch(operations);
    }
  };
  await Promise.all(Array.from({ length: BATCHES_IN_FLIGHT }, writer));
  return bytes;
}

async function timed<T>(body: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const started = process.hrtime.bigint();
  const value = await body();
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, value };
}

/** `docket backup` as a child; resolves with its --json summary. */
function backupCli(url: string, directory: string): Promise<{ bytes: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'backup', '--url', url, directory, '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('close', (status) => (status === 0 ? resolve(JSON.parse(out) as { bytes: number; seconds: number }) : reject(new Error(`docket backup exited ${status}: ${err}`))));
  });
}

async function main(options: Options): Promise<boolean> {
  const loadBefore = (await import('node:os')).loadavg();
  await rm(options.workDir, { recursive: true, force: true });
  await mkdir(options.workDir, { recursive: true });
  const sourceDir = path.join(options.workDir, 'source');
  const fileSystem = new RealFileSystem();
  const store = await DocumentStore.open({ directory: sourceDir, writeBufferBytes: 64 * MB });
  await store.createCollection(COLLECTION);
  const loaded = await timed(() => load(store, options.docs));
  const { engine } = store.stats();
  process.stderr.write(`loaded ${fmt(options.docs)} comments (${fmt(loaded.value / MB, 1)} MB of JSON) in ${fmt(loaded.seconds, 1)} s; ${engine.flushes} flushes, ${engine.compactions} compactions\n`);
  type Kind = 'local' | 'stream' | 'backup' | 'restore' | 'stream, flush' | 'restore, flushed';
  const rates: Record<Kind, number[]> = { local: [], stream: [], backup: [], restore: [], 'stream, flush': [], 'restore, flushed': [] };
  const sizes: Record<Kind, number> = { local: 0, stream: 0, backup: 0, restore: 0, 'stream, flush': 0, 'restore, flushed': 0 };
  let checkpointMb = 0;
  const replayed: Record<'plain' | 'flushed', number[]> = { plain: [], flushed: [] };
  /** A checkpoint streamed into a fresh directory, then opened: its two rates. */
  const streamAndRestore = async (round: number, flush: boolean): Promise<void> => {
    const copy = path.join(options.workDir, `stream-${round}-${flush}`);
    const streamRun = await timed(async () => {
      const source = await store.checkpoint({ flush });
      try {
        await installCheckpoint(streamCheckpoint(source).chunks, { fileSystem, directory: copy });
        return source.sizeBytes;
      } finally {
        source.release();
      }
    });
    const [streamKind, restoreKind]: [Kind, Kind] = flush ? ['stream, flush', 'restore, flushed'] : ['stream', 'restore'];
    rates[streamKind].push(streamRun.value / MB / streamRun.seconds);
    const restore = await timed(() => DocumentStore.open({ directory: copy }));
    replayed[flush ? 'flushed' : 'plain'].push(restore.value.stats().recovery.replay?.records ?? 0);
    rates[restoreKind].push(streamRun.value / MB / restore.seconds);
    sizes[streamKind] = sizes[restoreKind] = streamRun.value / MB;
    await restore.value.close({ flush: false });
    await rm(copy, { recursive: true, force: true });
  };
  for (let round = 0; round < options.rounds; round++) {
    const local = path.join(options.workDir, `local-${round}`);
    const localRun = await timed(async () => {
      const source = await store.checkpoint();
      try {
        await writeCheckpoint(source, { fileSystem, directory: local });
        return source.sizeBytes;
      } finally {
        source.release();
      }
    });
    checkpointMb = localRun.value / MB;
    sizes.local = checkpointMb;
    rates.local.push(localRun.value / MB / localRun.seconds);
    await rm(local, { recursive: true, force: true });
    await streamAndRestore(round, false);
  }
  // Then with flush (which changes the store: it goes last), more documents before each round
  // so that there is something in the memtables to flush.
  for (let round = 0; round < options.rounds; round++) {
    await load(store, Math.ceil(options.docs / 10));
    await streamAndRestore(round, true);
  }
  await store.close();
  const server = await startDocket('source', sourceDir, 'immediate');
  try {
    for (let round = 0; round < options.rounds; round++) {
      const directory = path.join(options.workDir, `backup-${round}`);
      const summary = await backupCli(`http://${HOST}:${server.port}`, directory);
      rates.backup.push(summary.bytes / MB / summary.seconds);
      sizes.backup = summary.bytes / MB;
      await rm(directory, { recursive: true, force: true });
    }
  } finally {
    await server.stop();
  }
  sizes.restore = sizes.stream;
  const kinds: Kind[] = ['local', 'stream', 'backup', 'restore', 'stream, flush', 'restore, flushed'];
  const rows = kinds.map((kind) => [kind, fmt(sizes[kind], 1), fmt(median(rates[kind]), 0), rates[kind].map((rate) => fmt(rate, 0)).join(', ')]);
  process.stdout.write(`\ncheckpoint of ${fmt(checkpointMb, 1)} MB (${fmt(options.docs)} comments), ${options.rounds} rounds; restore replays ${replayed.plain.join(', ')} transactions, after a flush ${replayed.flushed.join(', ')}:\n\n`);
  process.stdout.write(`${markdownTable(['kind', 'MB (last round)', 'MB/s (median)', 'MB/s (each round)'], rows)}\n\n`);
  process.stdout.write(`${JSON.stringify({ environment: environment(loadBefore), docs: options.docs, checkpointMb, replayed, sizes, rates })}\n`);
  return true;
}

void runBenchmark('bench:checkpoint', USAGE, () => {
  const values = parseBenchArgs(process.argv.slice(2), USAGE, { docs: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '3' } });
  return { workDir: path.join(ROOT, 'bench', '.work', 'checkpoint'), docs: integerOption('docs', values.docs, 1), rounds: integerOption('rounds', values.rounds, 1) };
}, main);
