// `naive` durability (engine WAL off, no flush flags) exists only to show what passive
// persistence prevents: the same acknowledged writes, the same crash, and naive loses what
// was still in memtables while passive replays it from the binlog.

import t from 'tap';
import { DocumentStore, type Durability } from '../../src/store.js';
import { SimFileSystem } from '../../storage/sim-file-system.js';

const DOCUMENTS = 200;

async function acknowledgedThenCrash(durability: Durability): Promise<{ acknowledged: number; survived: number }> {
  const fs = new SimFileSystem();
  // Memtables large enough that nothing is flushed before the crash: only the binlog has the data.
  const options = { directory: '/db', durability, epochCheckIntervalMs: 0, engine: { memtableSizeBytes: 1024 * 1024 } };
  const store = await DocumentStore.open({ ...options, fileSystem: fs });
  await store.createCollection('c');
  let acknowledged = 0;
  for (let i = 0; i < DOCUMENTS; i++) {
    await store.put('c', `d${String(i).padStart(4, '0')}`, { i, text: `document ${i}` });
    acknowledged++;
  }
  const image = fs.image(1, 'drop-unsynced'); // The power fails after the last acknowledgement.
  const recovered = await DocumentStore.open({ ...options, fileSystem: image });
  let survived = 0;
  // Naive mode can lose even the collection (its catalog entry was in a memtable too).
  if (recovered.listCollections().some((c) => c.name === 'c')) {
    for (let i = 0; i < DOCUMENTS; i++) if (await recovered.get('c', `d${String(i).padStart(4, '0')}`)) survived++;
  }
  await recovered.close();
  return { acknowledged, survived };
}

t.test('naive loses acknowledged writes that passive keeps, on the same crash', async (t) => {
  const passive = await acknowledgedThenCrash('passive');
  const naive = await acknowledgedThenCrash('naive');
  t.equal(passive.acknowledged, DOCUMENTS);
  t.equal(passive.survived, DOCUMENTS, 'passive: every acknowledged document survives');
  t.equal(naive.acknowledged, DOCUMENTS);
  t.ok(naive.survived < DOCUMENTS, `naive: ${naive.survived} of ${DOCUMENTS} acknowledged documents survive`);
});
