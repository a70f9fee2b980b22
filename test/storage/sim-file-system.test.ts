// Tests of the simulated file system: what each crash image keeps, directory durability,
// crash points, injected faults, corruption and determinism.

import t from 'tap';
import { StorageError, StorageErrorCode } from '../../storage/errors.js';
import { DAMAGES, SimFileSystem, SimulatedCrash, type Damage } from '../../storage/sim-file-system.js';

const SEEDS = Array.from({ length: 40 }, (_, i) => i);

function bytes(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** A file system with /db made durable, so tests start from a clean disk. */
async function freshDisk(): Promise<SimFileSystem> {
  const fs = new SimFileSystem();
  await fs.mkdir('/db');
  return fs.clone();
}

/** Creates /db/<name> with `contents`, syncs it and its directory. */
async function durableFile(fs: SimFileSystem, name: string, contents: Buffer): Promise<void> {
  const file = await fs.open(`/db/${name}`, 'create');
  await file.append(contents);
  await file.sync();
  await file.close();
  await fs.syncDirectory('/db');
}

function snapshot(fs: SimFileSystem): Record<string, string> {
  return Object.fromEntries(fs.listAll().map((p) => [p, (fs.readFileSync(p) as Buffer).toString('hex')]));
}

function outcomes(fs: SimFileSystem, damage: Damage, filePath: string): Set<string> {
  return new Set(SEEDS.map((seed) => fs.image(seed, damage).readFileSync(filePath)?.toString('latin1') ?? '<missing>'));
}

t.test('synced data in a synced directory survives every damage kind', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'log', bytes('acknowledged'));
  for (const damage of DAMAGES) {
    for (const seed of SEEDS) {
      const contents = fs.image(seed, damage).readFileSync('/db/log');
      t.ok(contents?.subarray(0, 12).equals(bytes('acknowledged')), `${damage} seed ${seed}`);
      t.equal(contents?.length, 12, `${damage} seed ${seed} adds nothing to a fully synced file`);
    }
  }
});

t.test('drop-unsynced keeps only the bytes of the last sync', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'log', bytes('A'));
  const file = await fs.open('/db/log', 'write');
  await file.append(bytes('B'));
  t.same(outcomes(fs, 'drop-unsynced', '/db/log'), new Set(['A']));
  t.equal(fs.readFileSync('/db/log')?.toString(), 'AB', 'the current bytes still hold the unsynced write');
});

t.test('keep-prefix keeps a prefix of the unsynced writes and nothing else', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'log', bytes('A'));
  const file = await fs.open('/db/log', 'write');
  for (const chunk of ['B', 'C', 'D']) await file.append(bytes(chunk));
  const seen = outcomes(fs, 'keep-prefix', '/db/log');
  for (const outcome of seen) t.ok(['A', 'AB', 'ABC', 'ABCD'].includes(outcome), `${outcome} is a prefix`);
  t.ok(seen.size >= 3, 'different seeds keep different prefixes');
});

t.test('torn-write cuts the last kept write at a sector boundary and fills the sector', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'log', Buffer.alloc(0));
  const file = await fs.open('/db/log', 'write');
  const data = Buffer.alloc(2000, 0xaa);
  await file.append(data);
  const lengths = new Set<number>();
  for (const seed of SEEDS) {
    const image = fs.image(seed, 'torn-write').readFileSync('/db/log') as Buffer;
    lengths.add(image.length);
    t.ok([512, 1024, 1536, 2000].includes(image.length), `seed ${seed} ends at a sector or the write's end`);
    const intact = Math.floor((image.length - 1) / 512) * 512;
    t.ok(image.subarray(0, intact).equals(data.subarray(0, intact)), `seed ${seed} keeps whole sectors before the cut`);
    t.notOk(image.equals(data.subarray(0, image.length)), `seed ${seed} tears the last sector`);
  }
  t.ok(lengths.size >= 3, 'the cut moves with the seed');
});

t.test('reorder keeps or drops each unsynced write independently', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'data', Buffer.alloc(3, 0x2e));
  const file = await fs.open('/db/data', 'write');
  for (const [i, letter] of ['x', 'y', 'z'].entries()) await file.write(i, bytes(letter));
  const seen = outcomes(fs, 'reorder', '/db/data');
  for (const outcome of seen) t.match(outcome, /^[.x][.y][.z]$/, `${outcome} holds each write or the old byte`);
  t.ok(seen.has('..z') || seen.has('.y.') || seen.has('x.z') || seen.has('.yz'), 'a later write survives without an earlier one');
});

t.test('revert-directories keeps all written bytes but undoes unsynced directory changes', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'old', bytes('1'));
  const old = await fs.open('/db/old', 'write');
  await old.append(bytes('2'));
  const created = await fs.open('/db/new', 'create');
  await created.append(bytes('N'));
  await created.sync();
  for (const seed of SEEDS.slice(0, 5)) {
    const image = fs.image(seed, 'revert-directories');
    t.equal(image.readFileSync('/db/old')?.toString(), '12', 'unsynced bytes of a kept file are there');
    t.equal(image.readFileSync('/db/new'), undefined, 'the file whose directory was not synced is gone');
  }
});

t.test('zero-extend appends only zeros, at most 8192, and only to files with unsynced writes', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'log', bytes('A'));
  await durableFile(fs, 'table', bytes('T'));
  const file = await fs.open('/db/log', 'write');
  await file.append(bytes('B'));
  let extended = 0;
  for (const seed of SEEDS) {
    const image = fs.image(seed, 'zero-extend');
    const log = image.readFileSync('/db/log') as Buffer;
    t.equal(log.toString('latin1', 0, 1), 'A');
    t.ok(log.length <= 1 + 8192 && log.subarray(1).every((byte) => byte === 0), `seed ${seed} extends with zeros`);
    t.equal(image.readFileSync('/db/table')?.toString(), 'T', 'a fully synced file is never extended');
    if (log.length > 1) extended += 1;
  }
  t.ok(extended > 0 && extended < SEEDS.length, 'some seeds extend and some do not');
});

t.test('a created and synced file is lost under drop-unsynced until its directory is synced', async (t) => {
  const fs = await freshDisk();
  const file = await fs.open('/db/MANIFEST-1', 'create');
  await file.append(bytes('m'));
  await file.sync();
  t.equal(fs.image(1, 'drop-unsynced').readFileSync('/db/MANIFEST-1'), undefined);
  await fs.syncDirectory('/db');
  t.equal(fs.image(1, 'drop-unsynced').readFileSync('/db/MANIFEST-1')?.toString(), 'm');
});

t.test('a new directory is lost until its parent directory is synced', async (t) => {
  const fs = new SimFileSystem();
  await fs.mkdir('/a/b');
  await fs.syncDirectory('/a');
  t.same(fs.image(1, 'drop-unsynced').listAll(), []);
  t.equal(await fs.image(1, 'drop-unsynced').exists('/a'), false);
  await fs.syncDirectory('/');
  t.equal(await fs.image(1, 'drop-unsynced').exists('/a/b'), true);
});

t.test('rename is atomic: the target holds the whole old or the whole new file', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'CURRENT', bytes('old'));
  await durableFile(fs, 'CURRENT.tmp', bytes('new'));
  await fs.rename('/db/CURRENT.tmp', '/db/CURRENT');
  for (const damage of DAMAGES) {
    for (const seed of SEEDS) {
      const image = fs.image(seed, damage);
      const current = image.readFileSync('/db/CURRENT')?.toString();
      const temp = image.readFileSync('/db/CURRENT.tmp')?.toString();
      t.ok((current === 'old' && temp === 'new') || (current === 'new' && temp === undefined), `${damage} seed ${seed}`);
    }
  }
  await fs.syncDirectory('/db');
  t.same(snapshot(fs.image(3, 'drop-unsynced')), { '/db/CURRENT': Buffer.from('new').toString('hex') });
});

t.test('an unsynced rename and unlink are reverted under drop-unsynced', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'a', bytes('A'));
  await durableFile(fs, 'b', bytes('B'));
  await fs.rename('/db/a', '/db/c');
  await fs.unlink('/db/b');
  t.same(await fs.list('/db'), ['c']);
  t.same(fs.image(7, 'drop-unsynced').listAll(), ['/db/a', '/db/b']);
});

t.test('a rename whose directory change is kept still carries only the synced bytes', async (t) => {
  const fs = await freshDisk();
  const temp = await fs.open('/db/CURRENT.tmp', 'create');
  await temp.append(bytes('unsynced'));
  await fs.rename('/db/CURRENT.tmp', '/db/CURRENT');
  const seen = outcomes(fs, 'keep-prefix', '/db/CURRENT');
  t.ok(seen.has('') || seen.has('<missing>'), 'the classic bug shows: an empty or missing CURRENT');
  for (const outcome of seen) t.ok(['', 'unsynced', '<missing>'].includes(outcome), outcome);
});

t.test('an open file keeps working after rename and unlink', async (t) => {
  const fs = await freshDisk();
  const file = await fs.open('/db/f', 'create');
  await file.append(bytes('one'));
  await fs.rename('/db/f', '/db/g');
  await file.append(bytes('two'));
  t.equal(fs.readFileSync('/db/g')?.toString(), 'onetwo');
  await fs.unlink('/db/g');
  await file.append(bytes('three'));
  t.equal((await file.read(0, 100)).toString(), 'onetwothree');
  t.equal(await fs.exists('/db/g'), false);
});

t.test('open rejects with StorageError IO: EEXIST on create, ENOENT on a missing file', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'x', bytes('x'));
  const exists = await fs.open('/db/x', 'create').catch((error: unknown) => error);
  t.ok(exists instanceof StorageError);
  t.equal((exists as StorageError).code, StorageErrorCode.IO);
  t.equal(((exists as StorageError).cause as { code: string }).code, 'EEXIST');
  const missing = await fs.open('/db/y', 'read').catch((error: unknown) => error);
  t.equal((missing as StorageError).code, StorageErrorCode.IO);
  t.equal(((missing as StorageError).cause as { code: string }).code, 'ENOENT');
  await t.rejects(fs.open('/nowhere/z', 'create'), { code: StorageErrorCode.IO });
  await t.rejects(fs.readFile('/db/y'), { code: StorageErrorCode.IO });
});

t.test('list returns the sorted names of files and subdirectories', async (t) => {
  const fs = new SimFileSystem();
  await fs.mkdir('db/sub');
  for (const name of ['b', 'a', 'c']) await (await fs.open(`/db/${name}`, 'create')).close();
  t.same(await fs.list('/db'), ['a', 'b', 'c', 'sub']);
  t.same(await fs.list('/db/sub'), []);
  t.same(fs.listAll(), ['/db/a', '/db/b', '/db/c'], 'listAll gives absolute file paths');
  await t.rejects(fs.list('/nope'), { code: StorageErrorCode.IO });
});

t.test('reads return copies; reads past the end are short; gaps and extensions read as zeros', async (t) => {
  const fs = await freshDisk();
  const file = await fs.open('/db/f', 'create');
  await file.write(4, bytes('ab'));
  t.equal(file.size(), 6);
  t.same([...(await file.read(0, 10))], [0, 0, 0, 0, 97, 98]);
  t.equal((await file.read(10, 4)).length, 0);
  const read = await file.read(4, 2);
  read[0] = 0;
  (await fs.readFile('/db/f'))[5] = 0;
  t.equal((await file.read(4, 2)).toString(), 'ab', 'mutating a returned buffer does not change the disk');
  await file.truncate(5);
  await file.truncate(7);
  t.same([...(await fs.readFile('/db/f'))], [0, 0, 0, 0, 97, 0, 0]);
  await t.rejects((await fs.open('/db/f', 'read')).append(bytes('x')), { code: StorageErrorCode.IO });
});

t.test('operationCount numbers every mutating operation and nothing else', async (t) => {
  const fs = new SimFileSystem();
  await fs.mkdir('/db');
  const file = await fs.open('/db/f', 'create');
  await file.append(bytes('a'));
  await file.write(0, bytes('b'));
  await file.truncate(1);
  await file.sync();
  await fs.rename('/db/f', '/db/g');
  await fs.syncDirectory('/db');
  await fs.unlink('/db/g');
  t.equal(fs.operationCount, 9);
  await file.read(0, 1);
  await fs.list('/db');
  await fs.exists('/db/g');
  await (await fs.open('/db', 'read').catch(() => file)).close();
  t.equal(fs.operationCount, 9);
});

t.test('crashAfter lets k operations complete, then every operation rejects with SimulatedCrash', async (t) => {
  const fs = await freshDisk();
  const file = await fs.open('/db/f', 'create');
  fs.crashAfter(2);
  await file.append(bytes('a'));
  t.equal(fs.crashed, false);
  await file.append(bytes('b'));
  t.equal(fs.crashed, true);
  const error = await file.append(bytes('c')).catch((e: unknown) => e);
  t.ok(error instanceof SimulatedCrash);
  t.equal((error as Error).name, 'SimulatedCrash');
  await t.rejects(file.read(0, 1), SimulatedCrash);
  await t.rejects(fs.readFile('/db/f'), SimulatedCrash);
  await t.rejects(fs.exists('/db/f'), SimulatedCrash);
  await t.rejects(fs.syncDirectory('/db'), SimulatedCrash);
  t.equal(fs.readFileSync('/db/f')?.toString(), 'ab', 'nothing changed after the crash');
  t.equal(fs.operationCount, 3);
  t.equal(await fs.image(1, 'revert-directories').exists('/db'), true, 'a crashed disk still yields images');
});

t.test('crashNow rejects the very next operation', async (t) => {
  const fs = await freshDisk();
  fs.crashNow();
  t.equal(fs.crashed, true);
  await t.rejects(fs.mkdir('/x'), SimulatedCrash);
  t.equal(fs.operationCount, 0);
});

for (const kind of ['EIO', 'ENOSPC', 'short-write'] as const) {
  const code = kind === 'EIO' ? StorageErrorCode.IO : StorageErrorCode.NO_SPACE;

  t.test(`a one-shot ${kind} fails the Nth operation only`, async (t) => {
    const fs = await freshDisk();
    const file = await fs.open('/db/f', 'create');
    fs.injectFault({ operation: 2, kind, persistent: false });
    await file.append(bytes('1111'));
    await t.rejects(file.append(bytes('2222')), { code });
    t.equal(fs.readFileSync('/db/f')?.toString(), kind === 'short-write' ? '111122' : '1111');
    await file.append(bytes('3333'));
    await file.sync();
    t.ok(fs.readFileSync('/db/f')?.toString().endsWith('3333'), 'later operations succeed');
  });

  t.test(`a persistent ${kind} fails the Nth and every later operation`, async (t) => {
    const fs = await freshDisk();
    fs.injectFault({ operation: 1, kind, persistent: true });
    await t.rejects(fs.open('/db/f', 'create'), { code });
    await t.rejects(fs.mkdir('/db/sub'), { code });
    await t.rejects(fs.syncDirectory('/db'), { code });
    t.same(await fs.list('/db'), [], 'failed operations changed nothing');
    fs.clearFaults();
    await fs.mkdir('/db/sub');
  });
}

t.test('a fault filtered by call and path counts only matching operations', async (t) => {
  const fs = await freshDisk();
  const log = await fs.open('/db/000001.log', 'create');
  const table = await fs.open('/db/000002.sst', 'create');
  fs.injectFault({ operation: 2, kind: 'EIO', persistent: false, call: 'sync', path: '.log' });
  await table.sync();
  await log.sync();
  await table.sync();
  await t.rejects(log.sync(), { code: StorageErrorCode.IO });
  await log.sync();
});

t.test('a failed sync discards the unsynced data, so a retried sync cannot bring it back', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'log', bytes('A'));
  const file = await fs.open('/db/log', 'write');
  await file.append(bytes('B'));
  fs.injectFault({ operation: 1, kind: 'EIO', persistent: false, call: 'sync' });
  await t.rejects(file.sync(), { code: StorageErrorCode.IO });
  t.equal(file.size(), 1);
  await file.sync();
  t.equal(fs.readFileSync('/db/log')?.toString(), 'A');
  t.equal(fs.image(0, 'revert-directories').readFileSync('/db/log')?.toString(), 'A');
});

t.test('failAfterBytes writes the crossing write short and fails every later write', async (t) => {
  const fs = await freshDisk();
  const file = await fs.open('/db/f', 'create');
  await file.append(bytes('12'));
  fs.failAfterBytes(5, 'ENOSPC');
  await file.append(bytes('345'));
  await t.rejects(file.append(bytes('6789')), { code: StorageErrorCode.NO_SPACE });
  t.equal(fs.readFileSync('/db/f')?.toString(), '1234567', 'the crossing write keeps its first two bytes');
  await t.rejects(file.write(0, bytes('x')), { code: StorageErrorCode.NO_SPACE });
  t.equal(fs.bytesWritten, 7);
  await file.sync();
  fs.failAfterBytes(0, 'EIO');
  await t.rejects(file.append(bytes('x')), { code: StorageErrorCode.IO });
});

t.test('flipBit flips one bit in the current and the durable bytes', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'sst', Buffer.from([0, 0, 0]));
  fs.flipBit('/db/sst', 1, 3);
  t.same([...(fs.readFileSync('/db/sst') as Buffer)], [0, 8, 0]);
  for (const damage of DAMAGES) t.equal(fs.image(5, damage).readFileSync('/db/sst')?.[1], 8, damage);
  t.throws(() => fs.flipBit('/db/sst', 3, 0), RangeError);
});

t.test('image is deterministic for a seed and does not change the source', async (t) => {
  const fs = await freshDisk();
  await durableFile(fs, 'a', bytes('a'));
  const file = await fs.open('/db/a', 'write');
  for (let i = 0; i < 20; i++) await file.append(Buffer.alloc(300, i));
  const created = await fs.open('/db/b', 'create');
  await created.append(bytes('b'));
  const before = snapshot(fs);
  for (const damage of DAMAGES) {
    t.same(snapshot(fs.image(42, damage)), snapshot(fs.image(42, damage)), damage);
  }
  const distinct = new Set(SEEDS.map((seed) => JSON.stringify(snapshot(fs.image(seed, 'torn-write')))));
  t.ok(distinct.size > 10, 'different seeds give different images');
  t.same(snapshot(fs), before);
  t.equal(fs.operationCount, 26);
});

t.test('clone copies the current state with everything durable', async (t) => {
  const fs = await freshDisk();
  const file = await fs.open('/db/f', 'create');
  await file.append(bytes('unsynced'));
  const copy = fs.clone();
  t.equal(copy.image(0, 'drop-unsynced').readFileSync('/db/f')?.toString(), 'unsynced');
  await file.append(bytes('!'));
  t.equal(copy.readFileSync('/db/f')?.toString(), 'unsynced', 'the clone is independent');
  t.equal(copy.operationCount, 0);
});
