// The rebuild of a running standby when it fails (server/rebuild.ts): a primary that cannot be
// reached. Nothing the standby serves from changes (the swap is never called, no rebuild
// directory is left), /stats figures say why with a code, and while the failure repeats the next
// attempt waits (5 s, doubling), so a standby refused every 5 s does not refetch at once.
// Under 1 s.

import t, { type Test } from 'tap';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { RealFileSystem } from '../../storage/index.js';
import { DEFAULTS } from '../../server/config.js';
import { StandbyRebuilder } from '../../server/rebuild.js';
import { DocketError, DocketErrorCode } from '../../src/errors.js';

const cause = new DocketError(DocketErrorCode.CHECKPOINT_NEEDED, 'the primary answered 409: diverged');

function rebuilder(t: Test, primary: string, stillWanted = (): boolean => true): { rebuilder: StandbyRebuilder; data: string; swaps: number[] } {
  const root = mkdtempSync(path.join(tmpdir(), 'docket-rebuilder-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const data = path.join(root, 'data');
  mkdirSync(data);
  writeFileSync(path.join(data, 'old'), 'the old copy');
  const swaps: number[] = [];
  return {
    data,
    swaps,
    rebuilder: new StandbyRebuilder({
      config: () => ({ ...DEFAULTS, dataDirectory: data, replicaOf: primary }),
      log: () => undefined,
      fileSystem: new RealFileSystem(),
      removeTree: (directory) => rm(directory, { recursive: true, force: true }),
      swap: async () => void swaps.push(Date.now()),
      stillWanted,
    }),
  };
}

t.test('a rebuild whose primary cannot be reached changes nothing, says why, and backs off', async (t) => {
  const { rebuilder: r, data, swaps } = rebuilder(t, 'http://127.0.0.1:1');
  await r.request(cause);
  await r.idle();
  const figures = r.stats();
  t.equal(figures.attempts, 1);
  t.equal(figures.failed, 1);
  t.equal(figures.completed, 0);
  t.equal(figures.state, 'idle');
  t.equal(figures.cause?.code, 'DOCKET_ERR_CHECKPOINT_NEEDED', 'the refusal that started it');
  t.equal(figures.lastError?.code, 'DOCKET_ERR_STANDBY_REBUILD_FAILED', 'the failure, coded');
  t.ok(figures.nextAttemptNotBefore && Date.parse(figures.nextAttemptNotBefore) > Date.now(), 'the next attempt waits');
  t.same(swaps, [], 'no swap');
  t.notOk(existsSync(`${data}.rebuild`), 'no rebuild directory left');
  t.ok(existsSync(path.join(data, 'old')), 'the old copy is untouched');
  await r.request(cause);
  await r.idle();
  t.equal(r.stats().attempts, 1, 'a refusal within the wait starts no attempt');
});
