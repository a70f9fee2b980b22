// Faults under the document layer, through the simulated file layer:
//   - the I/O-error loop: EIO, ENOSPC or a short write at the Nth mutating file operation, once
//     or from then on, for every N the workload reaches;
//   - the flaky disk: every write fails once N bytes have been written;
//   - corruption: one bit flipped in each binlog record replay needs.
// After a fault, every error a caller saw is coded, nothing is acknowledged once the store has
// failed, and the disk, reopened healthy, holds every acknowledged transaction (and no partial
// one). Replay one: DOCKET_DOC_FAULT_ONLY="<seed>:<operation>:<kind>:<persistent>" npx tap test/crash/document-faults.test.ts

import t from 'tap';
import { DocumentStore } from '../../src/store.js';
import { SimFileSystem, type FaultKind } from '../../storage/sim-file-system.js';
import { MAIN, run, STORE_OPTIONS, verify, workload, type RunResult, type Step } from '../helpers/document-workload.js';

const BATCHES = 24;
const options = { ...STORE_OPTIONS, directory: '/db' };

/** Runs the workload on a disk that fails as `arm` says; then checks the healthy image. */
/** Runs in which the armed fault failed an operation (what a sweep counts, not its own loop). */
const fired = { runs: 0 };

async function faultRun(seed: number, arm: (fs: SimFileSystem) => void): Promise<string | undefined> {
  const groups = workload(seed, BATCHES);
  const fs = new SimFileSystem();
  arm(fs);
  try {
    return await faultRunOn(fs, seed, groups);
  } finally {
    if (fs.faultsFired > 0) fired.runs++;
  }
}

async function faultRunOn(fs: SimFileSystem, seed: number, groups: ReturnType<typeof workload>): Promise<string | undefined> {
  let store: DocumentStore | undefined;
  try {
    store = await DocumentStore.open({ ...options, fileSystem: fs });
  } catch (error) {
    return coded(error) ? undefined : `open failed with an uncoded error: ${String(error)}`;
  }
  const errors: unknown[] = [];
  const result: RunResult = await run(store, groups, async () => void (await store!.createCollection(MAIN, { fieldFamiliesMax: 6 })), errors);
  for (const error of errors) if (!coded(error)) return `a caller saw an uncoded error: ${String(error)}`;
  if (result.crashed) {
    // One more write after the failure: refused with a code, or (when the fault was harmless,
    // like a failed purge) acknowledged, and then it must survive like any other.
    const late = lateStep(groups);
    const outcome = await store.batch(late.ops).then(([written]) => written!.tsn, (error: unknown) => error);
    if (typeof outcome === 'number') result.acknowledged.set(late.write, outcome);
    else if (!coded(outcome)) return `a late write failed with an uncoded error: ${String(outcome)}`;
    groups.push([late]);
  }
  await store.close().catch(() => undefined);
  fs.clearFaults();
  const healthy = fs.image(seed, 'drop-unsynced');
  const recovered = await DocumentStore.open({ ...options, fileSystem: healthy });
  try {
    return await verify(recovered, groups, result, 1, Number.MAX_SAFE_INTEGER);
  } finally {
    await recovered.close();
  }
}

function lateStep(groups: Step[][]): Step & { kind: 'batch' } {
  const write = 1 + Math.max(...groups.flat().map((step) => (step.kind === 'batch' ? step.write : 0)));
  return { kind: 'batch', write, ops: [{ op: 'put', collection: MAIN, id: `m${write}`, document: { w: write, late: true } }] };
}

function coded(error: unknown): boolean {
  return typeof (error as { code?: unknown })?.code === 'string' && (error as { code: string }).code.startsWith('DOCKET_ERR_');
}

async function operationsIn(seed: number): Promise<{ operations: number; bytes: number }> {
  const fs = new SimFileSystem();
  const store = await DocumentStore.open({ ...options, fileSystem: fs });
  const result = await run(store, workload(seed, BATCHES), async () => void (await store.createCollection(MAIN, { fieldFamiliesMax: 6 })));
  await store.close();
  if (result.crashed) throw new Error(`seed ${seed} fails without a fault`);
  return { operations: fs.operationCount, bytes: fs.bytesWritten };
}

const KINDS: readonly FaultKind[] = ['EIO', 'ENOSPC', 'short-write'];
const only = process.env['DOCKET_DOC_FAULT_ONLY'];
/** Operations of the workload where faults are injected (DOCKET_DOC_FAULT_POINTS, default 120). */
const FAULT_POINTS = Number(process.env['DOCKET_DOC_FAULT_POINTS'] ?? 120);

if (only) {
  t.test(`replay ${only}`, async (t) => {
    const [seed, operation, kind, persistent] = only.split(':');
    t.equal(await faultRun(Number(seed), (fs) => fs.injectFault({ operation: Number(operation), kind: kind as FaultKind, persistent: persistent === 'true' })), undefined);
  });
} else {
  t.test('I/O-error loop: every operation × EIO, ENOSPC, short write × once, persistent', async (t) => {
    const failures: string[] = [];
    let executions = 0;
    const firedBefore = fired.runs;
    for (const seed of [1]) {
      const { operations } = await operationsIn(seed);
      const stride = Math.max(1, Math.floor(operations / FAULT_POINTS));
      for (let operation = 1; operation <= operations; operation += stride) {
        for (const kind of KINDS) {
          for (const persistent of [false, true]) {
            const failure = await faultRun(seed, (fs) => fs.injectFault({ operation, kind, persistent }));
            executions++;
            if (failure) failures.push(`DOCKET_DOC_FAULT_ONLY="${seed}:${operation}:${kind}:${persistent}" → ${failure}`);
          }
        }
      }
    }
    t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} fault executions failed`);
    // At least FAULT_POINTS operations, each with every kind of fault, once and persistent, and
    // in every run the file layer failed the operation the fault was armed for.
    t.equal(fired.runs - firedBefore, executions, `the fault fired in ${fired.runs - firedBefore} of ${executions} runs`);
    t.ok(executions >= FAULT_POINTS * KINDS.length * 2, `${executions} fault executions ran (at least ${FAULT_POINTS} points × ${KINDS.length * 2})`);
  });

  t.test('flaky disk: writes fail after N bytes; every write acknowledged before survives', async (t) => {
    const failures: string[] = [];
    let executions = 0;
    const firedBefore = fired.runs;
    for (const seed of [3]) {
      const { bytes } = await operationsIn(seed);
      for (let limit = 1; limit < bytes; limit += Math.max(1, Math.floor(bytes / 160))) {
        for (const kind of ['EIO', 'ENOSPC'] as const) {
          const failure = await faultRun(seed, (fs) => fs.failAfterBytes(limit, kind));
          executions++;
          if (failure) failures.push(`seed ${seed}, ${kind} after ${limit} bytes → ${failure}`);
        }
      }
    }
    t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} flaky-disk executions failed`);
    t.equal(fired.runs - firedBefore, executions, `the disk refused bytes in ${fired.runs - firedBefore} of ${executions} runs`);
    t.ok(executions >= 300, `${executions} flaky-disk executions ran`);
  });

  t.test('a bit flipped in any binlog record that replay needs stops the store from opening', async (t) => {
    const fs = new SimFileSystem();
    // Nothing is flushed, so replay needs every record; small segments, so there are several.
    const store = await DocumentStore.open({ ...options, fileSystem: fs, engine: { memtableSizeBytes: 4 * 1024 * 1024 } });
    await store.createCollection(MAIN);
    for (let i = 0; i < 60; i++) await store.put(MAIN, `d${i}`, { i, text: 'x'.repeat(200) });
    await store.close({ flush: false });
    const segments = fs.listAll().filter((name) => name.endsWith('.binlog')).sort();
    t.ok(segments.length >= 3, `${segments.length} segments`);
    // Every record but the very last: damage there is corruption, never a torn tail.
    const records = segments.flatMap((segment) => recordOffsets(fs.readFileSync(segment)!).map((offset) => ({ segment, offset })));
    const last = records.pop()!;
    let flips = 0;
    const refusals = new Set<string>();
    for (const { segment, offset } of records) {
      const image = fs.clone();
      image.flipBit(segment, offset, flips++ % 8);
      refusals.add(await openOutcome(image));
    }
    t.ok(flips >= 20, `${flips} records damaged`);
    t.same([...refusals].sort(), ['DOCKET_ERR_BINLOG_CORRUPTION'], 'every damaged record refuses the open with a corruption error');
    // NB: the known limit of any log (src/binlog/FORMAT.md): a flip in the last record looks
    // exactly like a torn append, so that record is cut and the store opens without it.
    const image = fs.clone();
    image.flipBit(last.segment, last.offset, 0);
    const reopened = await DocumentStore.open({ ...options, fileSystem: image });
    t.equal(reopened.lastTsn, 60, 'the damaged last transaction (TSN 61) is cut as a torn tail');
    await reopened.close();
  });
}

function openOutcome(image: SimFileSystem): Promise<string> {
  return DocumentStore.open({ ...options, fileSystem: image }).then(
    async (opened) => (await opened.close(), 'opened'),
    (error: unknown) => (error as { code?: string }).code ?? String(error),
  );
}

/** An offset inside the payload of every record of a segment (framing: storage/log/FORMAT.md). */
function recordOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let at = 0; at + 8 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at + 4);
    if (length === 0) break;
    offsets.push(at + 8 + Math.floor(length / 2));
    at += 8 + length;
  }
  return offsets;
}
