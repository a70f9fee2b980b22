// Crash-point sweep of the document layer: binlog, commit pipeline, passive-persistence
// recovery and the engine together, through the simulated file layer. A seeded workload of
// concurrent batches (spanning collections and column families, some larger than a memtable),
// collection drops, flushes, compactions, segment rotation and purges runs until the power
// fails at operation k; the image (with one kind of damage) is reopened, one time in five
// crashing again during recovery, and checked against the workload (helpers/document-workload.ts)
// and, for the main collection's two indexes, against its recovered documents (auditIndexes).
// One test file per mode (test/crash/document-crash-<mode>.test.ts), so tap runs them in parallel.
// Replay one failure: DOCKET_DOC_CRASH_ONLY="<mode>:<seed>:<k>:<damage>[:<j>]" npx tap test/crash/document-crash-<mode>.test.ts

import t from 'tap';
import { DocumentStore, type Durability, type StoreOptions } from '../../src/store.js';
import { DAMAGES, SimFileSystem, type Damage } from '../../storage/sim-file-system.js';
import { MAIN, run, STORE_OPTIONS, verify, workload, type Step } from './document-workload.js';

interface Mode {
  readonly name: string;
  readonly durability: Durability;
  readonly options: Omit<StoreOptions, 'fileSystem' | 'directory'>;
}

const MODES: readonly Mode[] = [
  { name: 'passive', durability: 'passive', options: { ...STORE_OPTIONS, durability: 'passive' } },
  { name: 'double', durability: 'double', options: { ...STORE_OPTIONS, durability: 'double' } },
  // NB: the periodic timer runs on real time, so a replayed failure may crash at another point.
  { name: 'periodic', durability: 'passive', options: { ...STORE_OPTIONS, durability: 'passive', sync: { mode: 'periodic', intervalMs: 5 } } },
  // The engine's WAL is synced at each write, the binlog only every interval: the WAL can hold
  // transactions a crash takes from the binlog, which recovery must drop, not trip over.
  { name: 'double-periodic', durability: 'double', options: { ...STORE_OPTIONS, durability: 'double', sync: { mode: 'periodic', intervalMs: 5 } } },
];
const BATCHES = 40;
/** The setup: the main collection and its two indexes (a compound one with a descending and a dotted field), three transactions. */
const SETUP_TSNS = 3;

async function setup(store: DocumentStore): Promise<void> {
  await store.createCollection(MAIN, { fieldFamiliesMax: 6 });
  await store.createIndex(MAIN, 'by_score', { fields: ['score', { title: 'desc' }] });
  await store.createIndex(MAIN, 'by_author', { fields: ['author', 'meta.a'] });
}

function open(mode: Mode, fileSystem: SimFileSystem): Promise<DocumentStore> {
  return DocumentStore.open({ ...mode.options, directory: '/db', fileSystem });
}

/**
 * Opens the image, crashing once more during recovery when asked, then opens for real. Says
 * whether the simulated file layer reached that second crash point.
 */
async function recover(mode: Mode, image: SimFileSystem, again: number | undefined, seed: number, damage: Damage): Promise<{ store: DocumentStore; recoveryCrashed: boolean }> {
  let disk = image;
  let recoveryCrashed = false;
  if (again !== undefined) {
    const attempt = disk.clone();
    attempt.crashAfter(again);
    try {
      await (await open(mode, attempt)).close();
    } catch (error) {
      if (!attempt.crashed) throw error;
    }
    recoveryCrashed = attempt.crashed;
    disk = attempt.image(seed + 1, damage);
  }
  return { store: await open(mode, disk), recoveryCrashed };
}

async function runOnce(mode: Mode, fs: SimFileSystem, groups: Step[][]) {
  let store: DocumentStore;
  try {
    store = await open(mode, fs);
  } catch {
    return { acknowledged: new Map<number, number>(), changes: new Map<number, 'create-side' | 'drop-side'>(), durableTsn: 0, crashed: true };
  }
  const result = await run(store, groups, () => setup(store));
  // The power may fail during close, too: that is one more crash point.
  if (!result.crashed) await store.close().catch((error: unknown) => {
    if (!fs.crashed) throw error;
  });
  return result;
}

interface Execution {
  /** What the recovered store got wrong, or undefined. */
  readonly failure: string | undefined;
  /** The simulated file layer lost power at operation k (rather than the workload ending first). */
  readonly crashed: boolean;
  readonly recoveryCrashed: boolean;
  /** Transactions the store acknowledged before the crash (verify holds each against the recovered store). */
  readonly acknowledged: number;
}

async function checkOne(mode: Mode, seed: number, k: number, damage: Damage, again: number | undefined): Promise<Execution> {
  const groups = workload(seed, BATCHES);
  const fs = new SimFileSystem();
  fs.crashAfter(k);
  const result = await runOnce(mode, fs, groups);
  const crashed = fs.crashed;
  if (!fs.crashed) fs.crashNow();
  const acknowledged = result.acknowledged.size;
  let recovered: { store: DocumentStore; recoveryCrashed: boolean };
  try {
    recovered = await recover(mode, fs.image(seed, damage), again, seed, damage);
  } catch (error) {
    return { failure: `recovery failed: ${(error as Error).message}`, crashed, recoveryCrashed: false, acknowledged };
  }
  const { store, recoveryCrashed } = recovered;
  try {
    // Under `immediate` every acknowledged transaction must survive; under `periodic`, every
    // one the binlog had synced when the power failed (the loss window is what was not).
    const required = mode.options.sync?.mode === 'periodic' ? result.durableTsn : Number.MAX_SAFE_INTEGER;
    const failure = await verify(store, groups, result, SETUP_TSNS, required);
    if (failure) return { failure, crashed, recoveryCrashed, acknowledged };
    // Every index holds exactly the keys of the recovered documents (none building: both are defined on an empty collection).
    const audit = await store.auditIndexes();
    const indexFailure = audit.length === 0 ? undefined : `index ${audit[0]!.index} of ${audit[0]!.collection} disagrees with the documents: ${audit[0]!.missing.length} keys missing, ${audit[0]!.extra.length} extra`;
    return { failure: indexFailure, crashed, recoveryCrashed, acknowledged };
  } finally {
    await store.close();
  }
}

/** The workload's length in file operations; it must flush, compact, rotate and purge. */
async function operationsIn(mode: Mode, seed: number): Promise<number> {
  const fs = new SimFileSystem();
  const store = await open(mode, fs);
  const result = await run(store, workload(seed, BATCHES), () => setup(store));
  const { engine, epochs } = store.stats();
  await store.close();
  if (result.crashed) throw new Error(`the workload of seed ${seed} fails without a crash`);
  const missing = [engine.flushes > 0 ? '' : 'flush', engine.compactions > 0 ? '' : 'compaction', (epochs?.segmentsPurged ?? 0) > 0 ? '' : 'purge'].filter(Boolean);
  if (missing.length > 0) throw new Error(`the workload of seed ${seed} never does: ${missing.join(', ')}`);
  return fs.operationCount;
}

const SEEDS = Number(process.env['DOCKET_DOC_CRASH_SEEDS'] ?? 6);
const POINTS_PER_SEED = Number(process.env['DOCKET_DOC_CRASH_POINTS'] ?? 130);

/**
 * Registers the sweep of one mode, or the replay of one failure of that mode. `half` runs only
 * the first or second half of the mode's seeds, so one mode can span two test files that tap
 * runs in parallel.
 */
export function sweep(modeName: string, half?: 1 | 2): void {
  const mode = MODES.find((m) => m.name === modeName)!;
  const only = process.env['DOCKET_DOC_CRASH_ONLY'];
  if (only) {
    t.test(`replay ${only}`, async (t) => {
      const [, seed, k, damage, again] = only.split(':');
      const execution = await checkOne(mode, Number(seed), Number(k), damage as Damage, again ? Number(again) : undefined);
      t.equal(execution.failure, undefined);
      t.ok(execution.crashed, 'the file layer reached the crash point');
    });
    return;
  }
  const periodic = mode.options.sync?.mode === 'periodic';
  const promise = periodic ? 'every synced transaction survives' : 'no acknowledged transaction lost';
  const all = Array.from({ length: periodic ? Math.ceil(SEEDS / 2) : SEEDS }, (_, i) => i + 1);
  const middle = Math.ceil(all.length / 2);
  const seeds = half === undefined ? all : half === 1 ? all.slice(0, middle) : all.slice(middle);
  t.test(`document crash sweep, ${mode.name}, seeds ${seeds[0]}-${seeds.at(-1)}: ${promise}, none partial, history a prefix`, async (t) => {
    let executions = 0;
    let againAsked = 0;
    const failures: string[] = [];
    // Counted from what the simulated file layer and the store did, not from this loop.
    let crashed = 0;
    let recoveryCrashed = 0;
    let acknowledged = 0;
    for (const seed of seeds) {
      const total = await operationsIn(mode, seed);
      const stride = Math.max(1, Math.floor(total / POINTS_PER_SEED));
      for (let k = 1; k <= total; k += stride) {
        const damage = DAMAGES[(seed + k) % DAMAGES.length]!;
        const again = k % 5 === 0 ? 1 + (k % 37) : undefined;
        const execution = await checkOne(mode, seed, k, damage, again);
        executions++;
        if (again !== undefined) againAsked++;
        if (execution.crashed) crashed++;
        if (execution.recoveryCrashed) recoveryCrashed++;
        acknowledged += execution.acknowledged;
        if (execution.failure) failures.push(`DOCKET_DOC_CRASH_ONLY="${mode.name}:${seed}:${k}:${damage}${again ? `:${again}` : ''}" → ${execution.failure}`);
      }
    }
    t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} crash executions failed`);
    // Each seed has far more operations than points, so about POINTS_PER_SEED of them are
    // crash points the file layer reaches (under \`periodic\` the timer moves the last few).
    t.ok(crashed >= seeds.length * Math.min(100, POINTS_PER_SEED / 2), `the file layer lost power at ${crashed} of ${executions} crash points`);
    t.ok(recoveryCrashed > againAsked / 2, `${recoveryCrashed} of ${againAsked} second crashes landed inside recovery`);
    t.ok(acknowledged > crashed, `${acknowledged} transactions acknowledged before the crashes, checked against the recovered stores`);
  });
}
