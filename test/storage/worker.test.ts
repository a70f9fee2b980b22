// The worker-thread path of flush and compaction runs only from compiled JavaScript, so this
// test loads the engine from dist/ (npm test builds it first) and checks it against a model.

import t from 'tap';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { random } from '../helpers/engine-model.js';

const compiled = new URL('../../dist/storage/index.js', import.meta.url);

t.test('flushes and compactions on worker threads keep every write', { skip: !existsSync(fileURLToPath(compiled)) && 'dist/ is not built' }, async (t) => {
  const { Engine, WriteBatch } = (await import(compiled.href)) as typeof import('../../storage/index.js');
  const directory = t.testdir();
  const options = { directory, backgroundThread: true, memtableSizeBytes: 64 * 1024, tableSizeBytesTarget: 32 * 1024, l0CompactionTriggerFiles: 2, level1SizeBytes: 128 * 1024 };
  const engine = await Engine.open(options);
  await engine.createFamily('f');
  const next = random(11);
  const model = new Map<string, string>();
  for (let batchNumber = 0; batchNumber < 200; batchNumber++) {
    const batch = new WriteBatch();
    for (let i = 0; i < 20; i++) {
      const key = `k${Math.floor(next() * 3000)}`;
      if (next() < 0.1) {
        batch.delete('f', Buffer.from(key));
        model.delete(key);
      } else {
        const value = `${key}-${batchNumber}`.padEnd(200, '.');
        batch.put('f', Buffer.from(key), Buffer.from(value));
        model.set(key, value);
      }
    }
    await engine.write(batch, { tag: batchNumber + 1 });
  }
  await engine.flush();
  await engine.compactAll();
  const stats = engine.stats();
  t.ok(stats.flushes > 5 && stats.compactions > 0, `${stats.flushes} flushes, ${stats.compactions} compactions`);
  await engine.close();
  const reopened = await Engine.open(options);
  const seen = new Map<string, string>();
  for await (const { key, value } of reopened.iterator('f')) seen.set(key.toString(), value.toString());
  t.same([...seen].sort(), [...model].sort(), 'the store after reopen equals the model');
  t.equal(String(await reopened.get('f', Buffer.from([...model.keys()][0]!))), [...model.values()][0]);
  await reopened.close();
});

t.test('flushing a tiny memtable to a worker leaves other buffers intact', { skip: !existsSync(fileURLToPath(compiled)) && 'dist/ is not built' }, async (t) => {
  const { Engine, WriteBatch } = (await import(compiled.href)) as typeof import('../../storage/index.js');
  const engine = await Engine.open({ directory: t.testdir(), backgroundThread: true });
  await engine.createFamily('f');
  const bystander = Buffer.from('still here');
  await engine.write(new WriteBatch().put('f', Buffer.from('a'), Buffer.from('1')));
  await engine.flush();
  t.equal(bystander.toString(), 'still here', 'a pooled buffer made before the flush still reads');
  t.equal(Buffer.from('made after').toString(), 'made after');
  t.equal(String(await engine.get('f', Buffer.from('a'))), '1');
  await engine.close();
});
