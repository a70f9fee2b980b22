// Online checkpoints through the simulated file layer. A seeded workload of concurrent batches,
// collection drops, flushes, compactions, rotations and purges (helpers/document-workload.ts)
// runs; before one of its groups a checkpoint starts and runs alongside the groups that follow.
// The copy, opened like any data directory (after a power loss that drops whatever was not
// synced), must hold every transaction acknowledged before the checkpoint began and be exactly
// the store's history through the checkpoint's TSN. Then the power fails at operation k of the
// same run, for many k during the checkpoint: a copy never looks complete unless it is, an
// incomplete one refuses to open, and the source still holds every acknowledged transaction.
// Seeds take turns between passive, double and periodic sync (NB: its timer runs on real time,
// so a replayed periodic failure may crash at another point).
// Replay one failure: DOCKET_CHECKPOINT_ONLY="<seed>:<group>:<k|-1>:<damage>:<local|stream>:<mode>" npx tap test/checkpoint/checkpoint-crash.test.ts

import t from 'tap';
import { DocumentStore, type StoreOptions } from '../../src/store.js';
import { writeCheckpoint } from '../../src/checkpoint/target.js';
import { installCheckpoint, streamCheckpoint } from '../../src/checkpoint/stream.js';
import { COMPLETE_MARKER, INCOMPLETE_MARKER, type CheckpointDescriptor } from '../../src/checkpoint/checkpoint.js';
import { DAMAGES, SimFileSystem, type Damage } from '../../storage/sim-file-system.js';
import { MAIN, run, STORE_OPTIONS, verify, workload, type RunResult, type Step } from '../helpers/document-workload.js';

const BATCHES = 40;
const SETUP_TSNS = 1;
const SOURCE = '/db';
const COPY = '/copy';
type Via = 'local' | 'stream';

interface Outcome {
  readonly failure: string | undefined;
  /** The power failed (k reached) before the run ended. */
  readonly crashed: boolean;
  readonly complete: boolean;
  /** File operations from the checkpoint's start to its end (no crash). */
  readonly operations: number;
  readonly descriptor: CheckpointDescriptor | undefined;
  readonly acknowledgedBefore: number;
}

/** Seeds take turns: passive, double (engine WAL too), periodic sync (5 ms, real time). */
type Mode = 'passive' | 'double' | 'periodic';
const MODES: readonly Mode[] = ['passive', 'double', 'periodic'];
const MODE_OPTIONS: Record<Mode, Partial<StoreOptions>> = {
  passive: { durability: 'passive' },
  double: { durability: 'double' },
  periodic: { durability: 'passive', sync: { mode: 'periodic', intervalMs: 5 } },
};

function openStore(fileSystem: SimFileSystem, directory: string, mode: Mode): Promise<DocumentStore> {
  return DocumentStore.open({ ...STORE_OPTIONS, ...MODE_OPTIONS[mode], directory, fileSystem });
}

async function checkpointInto(store: DocumentStore, fileSystem: SimFileSystem, via: Via): Promise<CheckpointDescriptor> {
  const source = await store.checkpoint();
  try {
    if (via === 'local') return await writeCheckpoint(source, { fileSystem, directory: COPY });
    return await installCheckpoint(streamCheckpoint(source).chunks, { fileSystem, directory: COPY });
  } finally {
    source.release();
  }
}

/** Runs the workload with a checkpoint started before group `at`; the power fails k operations after it starts (k < 0: never). */
async function runWithCheckpoint(groups: Step[][], at: number, k: number, via: Via, mode: Mode) {
  const fs = new SimFileSystem();
  const store = await openStore(fs, SOURCE, mode);
  let checkpoint: Promise<CheckpointDescriptor> | undefined;
  let before = new Map<number, number>();
  let startedAt = 0;
  let finishedAt = 0;
  let startedTsn = 0;
  const result = await run(store, groups, async () => void (await store.createCollection(MAIN, { fieldFamiliesMax: 6 })), [], (index, acknowledged) => {
    if (index !== at) return;
    before = new Map(acknowledged);
    startedTsn = store.lastTsn;
    startedAt = fs.operationCount;
    if (k >= 0) fs.crashAfter(k);
    checkpoint = checkpointInto(store, fs, via).then((descriptor) => {
      finishedAt = fs.operationCount;
      return descriptor;
    });
    checkpoint.catch(() => undefined);
  });
  let descriptor: CheckpointDescriptor | undefined;
  let error: unknown;
  try {
    descriptor = await checkpoint;
  } catch (caught) {
    error = caught;
  }
  const operations = finishedAt - startedAt;
  if (!fs.crashed) await store.close();
  if (error !== undefined && !fs.crashed) throw error;
  return { fs, result, before, startedTsn, descriptor, operations };
}

async function checkOne(seed: number, at: number, k: number, damage: Damage, via: Via, mode: Mode): Promise<Outcome> {
  const groups = workload(seed, BATCHES);
  const { fs, result, before, startedTsn, descriptor, operations } = await runWithCheckpoint(groups, at, k, via, mode);
  const crashed = fs.crashed;
  if (!crashed) fs.crashNow();
  const image = fs.image(seed, damage);
  const base = { crashed, operations, descriptor, acknowledgedBefore: before.size };
  const complete = image.readFileSync(`${COPY}/${COMPLETE_MARKER}`) !== undefined;
  if (!crashed && !complete) return { ...base, complete, failure: 'a checkpoint that finished is not complete after the power loss' };
  const failure = complete ? await checkCopy(image, groups, result, before, startedTsn, mode) : await checkIncomplete(image, mode);
  if (failure) return { ...base, complete, failure };
  // The source survives too, with every transaction it acknowledged (immediate sync).
  return { ...base, complete, failure: await checkSource(image, groups, result, mode) };
}

/** The copy opens and is exactly the history through its TSN, holding every write acknowledged before it began. */
async function checkCopy(image: SimFileSystem, groups: Step[][], result: RunResult, before: Map<number, number>, startedTsn: number, mode: Mode): Promise<string | undefined> {
  const marker = JSON.parse(image.readFileSync(`${COPY}/${COMPLETE_MARKER}`)!.toString('utf8')) as CheckpointDescriptor;
  if (marker.tsn < startedTsn) return `the checkpoint holds TSNs through ${marker.tsn}, but ${startedTsn} had been handed out when it began`;
  if (image.readFileSync(`${COPY}/${INCOMPLETE_MARKER}`) !== undefined && image.listAll().length === 0) return 'both markers';
  let copy: DocumentStore;
  try {
    copy = await openStore(image, COPY, mode);
  } catch (error) {
    return `the complete copy does not open: ${(error as Error).message}`;
  }
  try {
    if (copy.lastTsn !== marker.tsn) return `the copy ends at TSN ${copy.lastTsn}, its marker says ${marker.tsn}`;
    const problem = await verify(copy, groups, { ...result, acknowledged: before }, SETUP_TSNS, Number.MAX_SAFE_INTEGER);
    return problem && `copy: ${problem}`;
  } finally {
    await copy.close();
  }
}

/** An incomplete copy is marked so (if anything of it exists) and refuses to open. */
async function checkIncomplete(image: SimFileSystem, mode: Mode): Promise<string | undefined> {
  const files = image.listAll().filter((file) => file.startsWith(`${COPY}/`));
  if (files.length === 0) return undefined; // Nothing of it reached the disk.
  if (!files.includes(`${COPY}/${INCOMPLETE_MARKER}`)) return `an incomplete copy holds ${files.length} files but no ${INCOMPLETE_MARKER} marker`;
  try {
    const store = await openStore(image, COPY, mode);
    await store.close();
    return 'an incomplete copy opened';
  } catch (error) {
    const code = (error as { code?: string }).code;
    return code === 'DOCKET_ERR_CHECKPOINT_INCOMPLETE' ? undefined : `an incomplete copy failed to open with ${code}: ${(error as Error).message}`;
  }
}

async function checkSource(image: SimFileSystem, groups: Step[][], result: RunResult, mode: Mode): Promise<string | undefined> {
  const store = await openStore(image, SOURCE, mode);
  try {
    // Under periodic sync the source may lose what it had not synced; the copy may not.
    const required = mode === 'periodic' ? result.durableTsn : Number.MAX_SAFE_INTEGER;
    const problem = await verify(store, groups, result, SETUP_TSNS, required);
    return problem && `source: ${problem}`;
  } finally {
    await store.close();
  }
}

const SEEDS = Number(process.env['DOCKET_CHECKPOINT_SEEDS'] ?? 4);
const STARTS_PER_SEED = Number(process.env['DOCKET_CHECKPOINT_STARTS'] ?? 5);
const CRASHES_PER_START = Number(process.env['DOCKET_CHECKPOINT_CRASHES'] ?? 10);

const only = process.env['DOCKET_CHECKPOINT_ONLY'];
if (only) {
  t.test(`replay ${only}`, async (t) => {
    const [seed, at, k, damage, via, mode] = only.split(':');
    const outcome = await checkOne(Number(seed), Number(at), Number(k), damage as Damage, via as Via, (mode ?? 'passive') as Mode);
    t.equal(outcome.failure, undefined);
  });
} else {
  t.test('a checkpoint taken anywhere in a workload, crashed anywhere in itself, opens whole or never looks complete', async (t) => {
    const failures: string[] = [];
    let completed = 0;
    let interrupted = 0;
    let acknowledgedBefore = 0;
    let flushes = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const groups = workload(seed, BATCHES);
      const mode = MODES[(seed - 1) % MODES.length]!;
      for (let s = 0; s < STARTS_PER_SEED; s++) {
        const at = 1 + Math.floor(((s + 0.5) * (groups.length - 2)) / STARTS_PER_SEED);
        const via: Via = (seed + s) % 2 === 0 ? 'local' : 'stream';
        const clean = await checkOne(seed, at, -1, DAMAGES[(seed + s) % DAMAGES.length]!, via, mode);
        const replay = (k: number, damage: Damage): string => `DOCKET_CHECKPOINT_ONLY="${seed}:${at}:${k}:${damage}:${via}:${mode}"`;
        if (clean.failure) failures.push(`${replay(-1, DAMAGES[(seed + s) % DAMAGES.length]!)} → ${clean.failure}`);
        if (clean.complete) completed++;
        acknowledgedBefore += clean.acknowledgedBefore;
        flushes += clean.descriptor?.files.filter((file) => file.name.endsWith('.sst')).length ?? 0;
        for (let c = 0; c < CRASHES_PER_START; c++) {
          const k = 1 + Math.floor((c * clean.operations) / CRASHES_PER_START);
          const damage = DAMAGES[(seed + s + c) % DAMAGES.length]!;
          const outcome = await checkOne(seed, at, k, damage, via, mode);
          if (outcome.failure) failures.push(`${replay(k, damage)} → ${outcome.failure}`);
          if (outcome.crashed && !outcome.complete) interrupted++;
          if (outcome.complete) completed++;
        }
      }
    }
    t.same(failures.slice(0, 5), [], `${failures.length} failures`);
    t.ok(completed >= SEEDS * STARTS_PER_SEED, `${completed} complete checkpoints opened and checked`);
    t.ok(interrupted >= (SEEDS * STARTS_PER_SEED * CRASHES_PER_START) / 2, `${interrupted} checkpoints cut short by the power failing`);
    t.ok(acknowledgedBefore > SEEDS * STARTS_PER_SEED, `${acknowledgedBefore} transactions acknowledged before the checkpoints began, each found in its copy`);
    t.ok(flushes > 0, `${flushes} tables captured in the clean checkpoints`);
  });
}
