// Crash-point sweep of the engine alone, through the simulated file layer. A seeded workload of
// tagged batches, flushes and compactions runs until the file layer "loses power" at operation k;
// the disk image after that (with one kind of damage) is reopened, sometimes crashing again
// during recovery. With the engine WAL on, every acknowledged batch must survive; with it off,
// every family must hold exactly what its last durable flush flag says, nothing more or less.
// Replay one failure: DOCKET_CRASH_ONLY="<seed>:<wal>:<k>:<damage>" npx tap test/storage/crash.test.ts

import t from 'tap';
import { Engine } from '../../storage/index.js';
import { DAMAGES, SimFileSystem, type Damage } from '../../storage/sim-file-system.js';
import { OPTIONS, run, verifyRecovered, workload } from '../helpers/engine-workload.js';

/**
 * Opens the image, crashing once more during recovery when asked, then opens for real. Says
 * whether the simulated file layer reached that second crash point (a recovery shorter than
 * it opens and closes whole).
 */
async function recover(image: SimFileSystem, crashDuringRecoveryAt: number | undefined, seed: number, damage: Damage): Promise<{ engine: Engine; recoveryCrashed: boolean }> {
  let disk = image;
  let recoveryCrashed = false;
  if (crashDuringRecoveryAt !== undefined) {
    const attempt = disk.clone();
    attempt.crashAfter(crashDuringRecoveryAt);
    try {
      const engine = await Engine.open({ ...OPTIONS, fileSystem: attempt });
      await engine.close();
    } catch (error) {
      if (!attempt.crashed) throw error;
    }
    recoveryCrashed = attempt.crashed;
    disk = attempt.image(seed + 1, damage);
  }
  return { engine: await Engine.open({ ...OPTIONS, fileSystem: disk }), recoveryCrashed };
}

interface Execution {
  /** What differs from what must have survived, or undefined. */
  readonly failure: string | undefined;
  /** The simulated file layer lost power at operation k (not: the workload ended first). */
  readonly crashed: boolean;
  readonly recoveryCrashed: boolean;
  /** Batches the engine acknowledged before the crash, all of which verifyRecovered found (WAL on). */
  readonly acknowledged: number;
}

async function checkOne(seed: number, wal: boolean, k: number, damage: Damage, recoveryCrash: number | undefined): Promise<Execution> {
  const ops = workload(seed, 40);
  const fs = new SimFileSystem();
  fs.crashAfter(k);
  const result = await run(fs, wal, ops);
  const crashed = fs.crashed;
  const { engine, recoveryCrashed } = await recover(fs.image(seed, damage), recoveryCrash, seed, damage);
  try {
    return { failure: await verifyRecovered(engine, wal, result), crashed, recoveryCrashed, acknowledged: result.acknowledged.length };
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
    const execution = await checkOne(Number(seed), wal === 'true', Number(k), damage as Damage, again ? Number(again) : undefined);
    t.equal(execution.failure, undefined);
    t.ok(execution.crashed, 'the file layer reached the crash point');
  });
} else {
  for (const wal of [false, true]) {
    t.test(`engine crash sweep, WAL ${wal ? 'on' : 'off'}: ${wal ? 'every acknowledged batch survives' : 'each family recovers exactly to its flag'}`, async (t) => {
      let executions = 0;
      let recoveryCrashesAsked = 0;
      const failures: string[] = [];
      // Counted from what the simulated file layer did, not from this loop.
      const missed: string[] = [];
      let crashed = 0;
      let recoveryCrashed = 0;
      let acknowledged = 0;
      for (let seed = 1; seed <= SEEDS; seed++) {
        const total = await operationsIn(seed, wal);
        const stride = Math.max(1, Math.floor(total / 300));
        for (let k = 1; k <= total; k += stride) {
          const damage = DAMAGES[(seed + k) % DAMAGES.length]!;
          const recoveryCrash = k % 5 === 0 ? 1 + (k % 23) : undefined;
          const execution = await checkOne(seed, wal, k, damage, recoveryCrash);
          const replay = `DOCKET_CRASH_ONLY="${seed}:${wal}:${k}:${damage}${recoveryCrash ? `:${recoveryCrash}` : ''}"`;
          executions++;
          if (recoveryCrash !== undefined) recoveryCrashesAsked++;
          if (execution.failure) failures.push(`${replay} → ${execution.failure}`);
          if (execution.crashed) crashed++;
          else missed.push(replay);
          if (execution.recoveryCrashed) recoveryCrashed++;
          acknowledged += execution.acknowledged;
        }
      }
      t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} crash executions failed`);
      // Every k is within the workload's length, so the power must fail at each one.
      t.same(missed.slice(0, 5), [], `the file layer lost power at ${crashed} of ${executions} crash points`);
      t.ok(crashed >= SEEDS * 150, `${crashed} crash points reached (at least ${SEEDS * 150})`);
      t.ok(recoveryCrashed > recoveryCrashesAsked / 2, `${recoveryCrashed} of ${recoveryCrashesAsked} second crashes landed inside recovery`);
      t.ok(acknowledged > crashed, `${acknowledged} batches acknowledged before the crashes, checked against the recovered engines`);
    });
  }
}
