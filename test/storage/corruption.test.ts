// Corruption through the whole engine: one bit flipped in a table or the manifest must be
// detected and reported as DOCKET_ERR_STORAGE_CORRUPTION, never read back as a wrong answer.

import t from 'tap';
import { Engine, StorageError, StorageErrorCode, WriteBatch } from '../../storage/index.js';
import { SimFileSystem } from '../../storage/sim-file-system.js';

const OPTIONS = { directory: '/db', memtableSizeBytes: 2048, blockSizeBytes: 256, tableSizeBytesTarget: 2048, autoCompaction: false };

/** A store with tables in L0 and at the bottom level, all durable. */
async function buildStore(): Promise<SimFileSystem> {
  const fs = new SimFileSystem();
  const engine = await Engine.open({ ...OPTIONS, fileSystem: fs });
  await engine.createFamily('a');
  await engine.createFamily('b');
  for (let i = 0; i < 120; i++) {
    const batch = new WriteBatch().put('a', Buffer.from(`key${i % 70}`), Buffer.from(`value-${i}`.repeat(3)));
    if (i % 4 === 0) batch.delete('b', Buffer.from(`key${i % 9}`));
    else batch.put('b', Buffer.from(`key${i % 9}`), Buffer.from(`b${i}`));
    await engine.write(batch, { tag: i + 1 });
    if (i === 60) {
      await engine.flush();
      await engine.compactAll();
    }
  }
  await engine.flush();
  await engine.close();
  return fs.clone();
}

async function readEverything(fs: SimFileSystem): Promise<string> {
  const engine = await Engine.open({ ...OPTIONS, fileSystem: fs });
  try {
    const parts: string[] = [];
    for (const family of engine.listFamilies()) {
      for await (const { key, value } of engine.iterator(family)) parts.push(`${family}/${key}=${value}`);
    }
    const torn = engine.recoveryReport.manifestTornTail;
    return parts.join(',') + (torn ? ` [reported: torn manifest tail at ${torn.offset}]` : '');
  } finally {
    await engine.close().catch(() => undefined);
  }
}

/** 'detected', or what went wrong instead. */
async function flipAndRead(base: SimFileSystem, path: string, offset: number, bit: number, intact: string): Promise<string> {
  const fs = base.clone();
  fs.flipBit(path, offset, bit);
  try {
    const result = await readEverything(fs);
    if (result.includes('[reported:')) return 'reported';
    return result === intact ? `undetected and harmless?` : `undetected: read back wrong data`;
  } catch (error) {
    if (error instanceof StorageError && error.code === StorageErrorCode.CORRUPTION) return 'detected';
    return `wrong error: ${(error as Error).stack}`;
  }
}

t.test('a flipped bit anywhere in any table is detected as corruption', async (t) => {
  const base = await buildStore();
  const intact = await readEverything(base.clone());
  const tables = base.listAll().filter((path) => path.endsWith('.sst'));
  t.ok(tables.length >= 2, `${tables.length} tables`);
  const failures: string[] = [];
  let flips = 0;
  for (const path of tables) {
    const size = base.readFileSync(path)!.length;
    for (let offset = 0; offset < size; offset += 3) {
      const outcome = await flipAndRead(base, path, offset, offset % 8, intact);
      flips++;
      if (outcome !== 'detected') failures.push(`${path} byte ${offset}: ${outcome}`);
    }
  }
  t.same(failures.slice(0, 5), [], `${failures.length} of ${flips} flips not detected`);
});

t.test('a flipped bit in the manifest is detected, or reported when it hits the last edit', async (t) => {
  const base = await buildStore();
  const intact = await readEverything(base.clone());
  const manifest = base.listAll().find((path) => path.includes('MANIFEST-'))!;
  const size = base.readFileSync(manifest)!.length;
  const failures: string[] = [];
  const outcomes = new Map<string, number>();
  for (let offset = 0; offset < size; offset++) {
    for (let bit = 0; bit < 8; bit += 3) {
      const outcome = await flipAndRead(base, manifest, offset, bit, intact);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome !== 'detected' && outcome !== 'reported') failures.push(`byte ${offset} bit ${bit}: ${outcome}`);
    }
  }
  t.same(failures.slice(0, 5), [], `${failures.length} flips neither detected nor reported`);
  t.ok((outcomes.get('detected') ?? 0) > 0, `outcomes: ${JSON.stringify([...outcomes])}`);
});

t.test('a CURRENT that names no manifest refuses to open', async (t) => {
  const base = await buildStore();
  base.flipBit('/db/CURRENT', 2, 0);
  await t.rejects(readEverything(base), StorageError);
});
