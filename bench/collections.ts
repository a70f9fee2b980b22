// How many collections a store holds well (`npm run bench:collections [-- --counts 1,300,1000,2000]`).
//
// For each count, in its own process on a fresh data directory (passive, periodic sync), through
// the document layer with no HTTP: creates the collections and writes 20 Reddit comments into
// each (so each has its meta family and its 4 field families), then measures what a store of
// that size costs: single-document PUTs and GETs on one collection (32 concurrent writers),
// peak RSS, the time to close, and the time to reopen. The question is whether those degrade
// with the number of collections; the summary gives each figure beside the 1-collection run.
//
// Data lives in bench/.work/collections (gitignored).

import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DocumentStore, type StoreOptions } from '../src/store.js';
import { RedditGenerator } from './reddit.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', '.work', 'collections');
const DOCS_PER_COLLECTION = 20;
const MEASURED_WRITES = 4000;
const WRITERS = 32;
const SEED = 20261203;

interface Result {
  readonly collections: number;
  readonly families: number;
  readonly setupS: number;
  readonly putsPerS: number;
  readonly getsPerS: number;
  readonly closeMs: number;
  readonly reopenMs: number;
  readonly peakRssMb: number;
}

const options = (directory: string): StoreOptions => ({ directory, sync: { mode: 'periodic', intervalMs: 100 }, durability: 'passive' });
const name = (i: number): string => `month_${String(i).padStart(5, '0')}`;

function peakRssMb(): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

async function child(count: number): Promise<Result> {
  const directory = path.join(ROOT, `n${count}`);
  await rm(directory, { recursive: true, force: true });
  await mkdir(directory, { recursive: true });
  const generator = new RedditGenerator(SEED);
  let store = await DocumentStore.open(options(directory));
  let started = performance.now();
  for (let i = 0; i < count; i++) {
    await store.createCollection(name(i));
    const docs = Array.from({ length: DOCS_PER_COLLECTION }, () => generator.next());
    await store.batch(docs.map((doc) => ({ op: 'put' as const, collection: name(i), id: doc.id, document: doc })));
  }
  const setupS = (performance.now() - started) / 1000;
  const target = name(count - 1);
  const docs = Array.from({ length: MEASURED_WRITES }, () => generator.next());
  started = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (next < docs.length) {
      const doc = docs[next++]!;
      await store.put(target, doc.id, doc);
    }
  }));
  const putsPerS = MEASURED_WRITES / ((performance.now() - started) / 1000);
  started = performance.now();
  next = 0;
  await Promise.all(Array.from({ length: WRITERS }, async () => {
    while (next < docs.length) {
      const doc = docs[(next++ * 7919) % docs.length]!;
      if (!(await store.get(target, doc.id))) throw new Error(`document ${doc.id} missing`);
    }
  }));
  const getsPerS = MEASURED_WRITES / ((performance.now() - started) / 1000);
  const families = store.stats().engine.families.length;
  started = performance.now();
  await store.close();
  const closeMs = performance.now() - started;
  started = performance.now();
  store = await DocumentStore.open(options(directory));
  const reopenMs = performance.now() - started;
  if (store.listCollections().length !== count) throw new Error('collections lost across reopen');
  await store.close();
  await rm(directory, { recursive: true, force: true });
  return { collections: count, families, setupS, putsPerS, getsPerS, closeMs, reopenMs, peakRssMb: peakRssMb() };
}

function runChild(count: number): Promise<Result> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.on('error', reject);
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as Result) : reject(new Error(`child for ${count} collections exited with ${code}`))));
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    return i < 0 ? undefined : args[i + 1];
  };
  const childCount = at('--child');
  if (childCount !== undefined) {
    process.stdout.write(JSON.stringify(await child(Number(childCount))));
    return;
  }
  const counts = (at('--counts') ?? '1,300,1000,2000').split(',').map(Number);
  const results: Result[] = [];
  for (const count of counts) {
    const result = await runChild(count);
    results.push(result);
    process.stderr.write(`${count} collections done\n`);
  }
  const base = results[0]!;
  console.log('| collections | families | setup s | PUT/s | vs first | GET/s | vs first | close ms | reopen ms | peak RSS MB |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    console.log(`| ${r.collections} | ${r.families} | ${r.setupS.toFixed(1)} | ${r.putsPerS.toFixed(0)} | ${(r.putsPerS / base.putsPerS).toFixed(2)} | ${r.getsPerS.toFixed(0)} | ${(r.getsPerS / base.getsPerS).toFixed(2)} | ${r.closeMs.toFixed(0)} | ${r.reopenMs.toFixed(0)} | ${r.peakRssMb.toFixed(0)} |`);
  }
}

await main();
