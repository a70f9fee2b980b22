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

async function checkOne(seed: number, wal: boolean, k: number, damage: Damage, recoveryCrash: number | undefined): Promise<string | undefined> {
  const ops = workload(seed, 40);
  const fs = new SimFileSystem();
  fs.crashAfter(k);
  const result = await run(fs, wal, ops);
  const engine = await recover(fs.image(seed, damage), recoveryCrash, seed, damage);
  try {
    return await verifyRecovered(engine, wal, result);
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
