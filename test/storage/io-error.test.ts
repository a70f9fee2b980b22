// The I/O-error loop: the engine workload runs with a fault at every mutating file operation in
// turn, each as EIO, ENOSPC and a short write, once and from then on. Afterwards the disk loses
// power (unsynced data dropped) and is reopened healthy. No acknowledged batch may be lost (WAL
// on) and every family must match its flag (WAL off); every failure must be a coded error, and
// after the first failure the engine must refuse writes rather than retry.
// Replay one failure: DOCKET_FAULT_ONLY="<wal>:<operation>:<kind>:<persistent>" npx tap test/storage/io-error.test.ts

import t from 'tap';
import { Engine, StorageError, StorageErrorCode, WriteBatch } from '../../storage/index.js';
import { SimFileSystem, type FaultKind } from '../../storage/sim-file-system.js';
import { OPTIONS, run, verifyRecovered, workload } from '../helpers/engine-workload.js';

const SEED = 7;
const OPS = 24;
const KINDS: FaultKind[] = ['EIO', 'ENOSPC', 'short-write'];

/** Runs in which the injected fault failed an operation. */
const fired = { runs: 0 };

async function checkOne(wal: boolean, operation: number, kind: FaultKind, persistent: boolean): Promise<string | undefined> {
  const fs = new SimFileSystem();
  fs.injectFault({ operation, kind, persistent });
  try {
    return await checkOn(fs, wal);
  } finally {
    if (fs.faultsFired > 0) fired.runs++;
  }
}

async function checkOn(fs: SimFileSystem, wal: boolean): Promise<string | undefined> {
  let result;
  try {
    result = await run(fs, wal, workload(SEED, OPS), { stopOnError: false });
  } catch (error) {
    if (!(error instanceof StorageError)) return `an uncoded error escaped: ${(error as Error).stack}`;
    return undefined; // Open itself failed: nothing was acknowledged.
  }
  if (result.acknowledgedAfterFailure) return `batch ${result.acknowledgedAfterFailure} was acknowledged after a write had failed`;
  if (result.uncoded) return `an uncoded error: ${result.uncoded}`;
  fs.clearFaults();
  const engine = await Engine.open({ ...OPTIONS, fileSystem: fs.image(SEED, 'drop-unsynced') });
  try {
    return await verifyRecovered(engine, wal, result);
  } finally {
    await engine.close();
  }
}

const only = process.env['DOCKET_FAULT_ONLY'];
if (only) {
  t.test(`replay ${only}`, async (t) => {
    const [wal, operation, kind, persistent] = only.split(':');
    t.equal(await checkOne(wal === 'true', Number(operation), kind as FaultKind, persistent === 'true'), undefined);
  });
} else {
  for (const wal of [false, true]) {
    t.test(`every I/O error at every operation, WAL ${wal ? 'on' : 'off'}, loses nothing acknowledged`, async (t) => {
      const clean = new SimFileSystem();
      await run(clean, wal, workload(SEED, OPS));
      const failures: string[] = [];
      let executions = 0;
      const firedBefore = fired.runs;
      for (let operation = 1; operation <= clean.operationCount; operation++) {
        for (const kind of KINDS) {
          for (const persistent of [false, true]) {
            const failure = await checkOne(wal, operation, kind, persistent);
            executions++;
            if (failure) failures.push(`DOCKET_FAULT_ONLY="${wal}:${operation}:${kind}:${persistent}" → ${failure}`);
          }
        }
      }
      t.same(failures.slice(0, 5), [], `${failures.length} of ${executions} fault executions failed`);
      t.equal(fired.runs - firedBefore, executions, `the fault fired in ${fired.runs - firedBefore} of ${executions} runs`);
      t.ok(executions >= clean.operationCount * 6, `${executions} fault executions over ${clean.operationCount} operations`);
    });
  }
}

t.test('a disk that fills up fails writes with NO_SPACE or READ_ONLY, and they work again after reopen', async (t) => {
  const fs = new SimFileSystem();
  const engine = await Engine.open({ ...OPTIONS, fileSystem: fs, wal: true });
  await engine.createFamily('a');
  fs.failAfterBytes(2000, 'ENOSPC');
  let failed: unknown;
  for (let i = 0; i < 100 && !failed; i++) {
    await engine.write(new WriteBatch().put('a', Buffer.from(`k${i}`), Buffer.alloc(100, 1))).catch((error) => (failed = error));
  }
  t.equal((failed as StorageError).code, StorageErrorCode.NO_SPACE, 'the failing write names the full disk');
  await t.rejects(engine.write(new WriteBatch().put('a', Buffer.from('x'), Buffer.from('y'))), { code: StorageErrorCode.READ_ONLY });
  fs.clearFaults();
  const reopened = await Engine.open({ ...OPTIONS, fileSystem: fs.image(1, 'drop-unsynced'), wal: true });
  await reopened.write(new WriteBatch().put('a', Buffer.from('x'), Buffer.from('y')));
  t.equal(String(await reopened.get('a', Buffer.from('x'))), 'y');
  await reopened.close();
});
