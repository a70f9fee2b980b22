// `naive` durability (engine WAL off, no flush flags) exists only to show what passive
// persistence prevents: the same acknowledged writes, the same crash, and naive loses what
// was still in memtables while passive replays it from the binlog.

import t from 'tap';
import { DocumentStore, type Durability } from '../../src/store.js';
import { SimFileSystem } from '../../storage/sim-file-system.js';

const DOCUMENTS = 200;

interface Outcome {
  /** What the store acknowledged: each put's id and the revision its result reported. */
  readonly acknowledged: ReadonlyMap<string, number>;
  /** Acknowledged documents read back after the crash at their acknowledged revision. */
  readonly survived: number;
  /** Acknowledged documents that came back at another revision (neither kept nor lost: wrong). */
  readonly changed: string[];
}

async function acknowledgedThenCrash(durability: Durability): Promise<Outcome> {
  const fs = new SimFileSystem();
  // Memtables large enough that nothing is flushed before the crash: only the binlog has the data.
  const options = { directory: '/db', durability, epochCheckIntervalMs: 0, engine: { memtableSizeBytes: 1024 * 1024 } };
  const store = await DocumentStore.open({ ...options, fileSystem: fs });
  await store.createCollection('c');
  const acknowledged = new Map<string, number>();
  for (let i = 0; i < DOCUMENTS; i++) {
    const id = `d${String(i).padStart(4, '0')}`;
    const result = await store.put('c', id, { i, text: `document ${i}` });
    acknowledged.set(result.id, result.revision);
  }
  const image = fs.image(1, 'drop-unsynced'); // The power fails after the last acknowledgement.
  const recovered = await DocumentStore.open({ ...options, fileSystem: image });
  let survived = 0;
  const changed: string[] = [];
  // Naive mode can lose even the collection (its catalog entry was in a memtable too).
  if (recovered.listCollections().some((c) => c.name === 'c')) {
    for (const [id, revision] of acknowledged) {
      const document = await recovered.get('c', id);
      if (document === undefined) continue;
      if (document.revision === revision && JSON.parse(document.json).i === Number(id.slice(1))) survived++;
      else changed.push(`${id} at revision ${document.revision} (acknowledged ${revision}): ${document.json}`);
    }
  }
  await recovered.close();
  return { acknowledged, survived, changed };
}

t.test('naive loses acknowledged writes that passive keeps, on the same crash', async (t) => {
  const passive = await acknowledgedThenCrash('passive');
  const naive = await acknowledgedThenCrash('naive');
  // The store's own results: one acknowledgement per put, each at its own revision.
  t.equal(passive.acknowledged.size, DOCUMENTS, 'passive: the store acknowledged every put under its id');
  t.equal(new Set(passive.acknowledged.values()).size, DOCUMENTS, 'passive: each at a distinct revision');
  t.equal(naive.acknowledged.size, DOCUMENTS, 'naive: the store acknowledged every put under its id');
  t.same(passive.changed, [], 'passive: nothing came back at a revision other than the acknowledged one');
  t.same(naive.changed, [], 'naive: nothing came back at a revision other than the acknowledged one');
  t.equal(passive.survived, passive.acknowledged.size, 'passive: every acknowledged document survives at its acknowledged revision');
  t.ok(naive.survived < naive.acknowledged.size, `naive: ${naive.survived} of ${naive.acknowledged.size} acknowledged documents survive`);
});
