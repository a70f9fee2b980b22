// Crash-point sweep of the engine alone, through the simulated file layer. A seeded workload of
// tagged batches, flushes and compactions runs until the file layer "loses power" at operation k;
// the disk image after that (with one kind of damage) is reopened, sometimes crashing again
// during recovery. With the engine WAL on, every acknowledged batch must survive; with it off,
// every family must hold exactly what its last durable flush flag says, nothing more or less.
// Replay one failure: DOCKET_CRASH_ONLY="<seed>:<wal>:<k>:<damage>" npx tap test/storage/crash.test.ts

import t from 'tap';
import { Engine, WriteBatch } from '../../storage/index.js';
import { DAMAGES, SimFileSystem, type Damage } from '../../storage/sim-file-system.js';
import { applyRecords, expectedAtFlags, random, type BatchRecord, type Contents } from '../helpers/engine-model.js';

const FAMILIES = ['a', 'b', 'c'];
const OPTIONS = {
  directory: '/db',
  memtableSizeBytes: 1024,
  blockSizeBytes: 256,
  tableSizeBytesTarget: 2048,
  level1SizeBytes: 4096,
  l0CompactionTriggerFiles: 2,
};

type Op = { kind: 'write'; record: BatchRecord } | { kind: 'flush'; families: string[] } | { kind: 'compact' };

/** A deterministic workload: tagged batches (LSNs known in advance), flushes, compactions. */
function workload(seed: number, length: number): Op[] {
  const next = random(seed);
  const ops: Op[] = [];
  let lsn = 1;
  for (let tag = 1; ops.length < length; ) {
    const roll = next();
    if (roll < 0.1) ops.push({ kind: 'flush', families: FAMILIES.filter(() => next() < 0.6) });
    else if (roll < 0.14) ops.push({ kind: 'compact' });
    else {
      const big = next() < 0.05; // Larger than a memtable: one batch spans two.
      const count = big ? 12 : 1 + Math.floor(next() * 4);
      const items = Array.from({ length: count }, () => ({
        family: FAMILIES[Math.floor(next() * FAMILIES.length)]!,
        key: `k${Math.floor(next() * 24)}`,
        value: next() < 0.2 ? null : `v${tag}-`.padEnd(big ? 150 : 5 + Math.floor(next() * 120), 'x'),
      }));
      ops.push({ kind: 'write', record: { tag, lsnFirst: lsn, items } });
      lsn += count;
      tag++;
    }
  }
  return ops;
}

interface RunResult {
  acknowledged: BatchRecord[];
  issued: BatchRecord[];
}

async function run(fs: SimFileSystem, wal: boolean, ops: Op[]): Promise<RunResult> {
  const result: RunResult = { acknowledged: [], issued: [] };
  try {
    const engine = await Engine.open({ ...OPTIONS, fileSystem: fs, wal });
    for (const family of FAMILIES) await engine.createFamily(family);
    for (const op of ops) await step(engine, op, result);
    await engine.close();
  } catch (error) {
    if (!fs.crashed) throw error;
  }
  return result;
}

async function step(engine: Engine, op: Op, result: RunResult): Promise<void> {
  if (op.kind === 'flush') return engine.flush(op.families);
  if (op.kind === 'compact') return engine.compactAll();
  const batch = new WriteBatch();
  for (const item of op.record.items) {
    if (item.value === null) batch.delete(item.family, Buffer.from(item.key));
    else batch.put(item.family, Buffer.from(item.key), Buffer.from(item.value));
  }
  result.issued.push(op.record);
  const lsnFirst = await engine.write(batch, { tag: op.record.tag });
  if (lsnFirst !== op.record.lsnFirst) throw new Error(`batch ${op.record.tag} got LSN ${lsnFirst}, expected ${op.record.lsnFirst}`);
  result.acknowledged.push(op.record);
}

async function contentsOf(engine: Engine): Promise<Contents> {
  const contents: Contents = new Map();
  for (const family of engine.listFamilies()) {
    const map = new Map<string, string>();
    for await (const { key, value } of engine.iterator(family)) map.set(key.toString(), value.toString());
    if (map.size > 0) contents.set(family, map);
  }
  return contents;
}

/** Opens the image, crashing once more during recovery when asked, then opens for real. */
async function recover(image: SimFileSystem, crashDuringRecoveryAt: number | undefined, seed: number, damage: Damage): Promise<Engine> {
  let disk = image;
  if (crashDuringRecoveryAt !== undefined) {
    const attempt = disk.clone();
    attempt.crashAfter(crashDuringRecoveryAt);
    try {
      const engine = await Engine.open({ ...OPTIONS, fileSystem: attempt });
      await engine.close();
    } catch (error) {
      if (!attempt.crashed) throw error;
    }
    disk = attempt.image(seed + 1, damage);
  }
  return Engine.open({ ...OPTIONS, fileSystem: disk });
}

function describe(contents: Contents): string {
  const families = [...contents].sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify(families.map(([family, map]) => [family, [...map].map(([key, value]) => `${key}=${value.slice(0, 6)}`).sort()]));
}

async function checkOne(seed: number, wal: boolean, k: number, damage: Damage, recoveryCrash: number | undefined): Promise<string | undefined> {
  const ops = workload(seed, 40);
  const fs = new SimFileSystem();
  fs.crashAfter(k);
  const { acknowledged, issued } = await run(fs, wal, ops);
  const engine = await recover(fs.image(seed, damage), recoveryCrash, seed, damage);
  try {
    const actual = describe(await contentsOf(engine));
    if (wal) {
      // Every acknowledged batch survives; the one in flight is wholly there or wholly absent.
      const allowed = [applyRecords(acknowledged), applyRecords(issued)].map(describe);
      if (!allowed.includes(actual)) return `WAL on: recovered ${actual}, acknowledged ${allowed[0]}`;
      return undefined;
    }
    const flags = engine.flags();
    const expected = expectedAtFlags(issued, flags, FAMILIES);
    if (typeof expected === 'string') return expected;
    if (describe(expected) !== actual) return `WAL off: recovered ${actual}, flags say ${describe(expected)}`;
    return undefined;
  } finally {
    await engine.close();
  }
}

async function operationsIn(seed: number, wal: boolean): Promise<number> {
  const fs = new SimFileSystem();
  await run(fs, wal, workload(seed, 40));
  return fs.operationCount;
}

const only = process.env['DOCKET_CRASH_ONLY'];
const SEEDS = Number(process.env['DOCKET_CRASH_SEEDS'] ?? 10);

if (only) {
  t.test(`replay ${only}`, async (t) => {
    const [seed, wal, k, damage, again] = only.split(':');
    const failure = await checkOne(Number(seed), wal === 'true', Number(k), damage as Damage, again ? Number(again) : undefined);
    t.equal(failure, undefined);
  });
} else {
  for (const wal of [false, true]) {
    t.test(`engine crash sweep, WAL ${wal ? 'on' : 'off'}: ${wal ? 'every acknowledged batch survives' : 'each family recovers exactly to its flag'}`, async (t) => {
      let executions = 0;
      const failures: string[] = [];
      for (let seed = 1; seed <= SEEDS; seed++) {
        const total = await operationsIn(seed, wal);
        const stride = Math.max(1, Math.floor(total / 300));
        for (let k = 1; k <= total; k += stride) {
          const damage = DAMAGES[(seed + k) % DAMAGES.length]!;
          const recoveryCrash = k % 5 === 0 ? 1 + (k % 23) : undefined;
          const failure = await checkOne(seed, wal, k, damage, recoveryCrash);
          executions++;
          if (failure) failures.push(`DOCKET_CRASH_ONLY="${seed}:${wal}:${k}:${damage}${recoveryCrash ? `:${recoveryCrash}` : ''}" → ${failure}`);
        }
      }
      t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} crash executions failed`);
      t.ok(executions >= SEEDS * 150, `${executions} crash executions ran`);
    });
  }
}
