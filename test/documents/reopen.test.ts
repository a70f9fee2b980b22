// A clean close leaves nothing to replay: every family, flushed or idle, records a flag at the
// last transaction. A bug kept a flushed family's flag at its memtable's last batch (the
// catalog's at the first document's field assignments), so the next open replayed the whole load.

import t from 'tap';
import { SimFileSystem } from '../../storage/sim-file-system.js';
import { DocumentStore } from '../../src/store.js';

t.test('after a clean close the next open replays at most the last transaction, whatever family wrote last', async (t) => {
  const fileSystem = new SimFileSystem();
  const options = { directory: '/db', fileSystem, epochCheckIntervalMs: 0 };
  let store = await DocumentStore.open(options);
  await store.createCollection('c');
  await store.put('c', 'first', { a: 1, b: 2 }); // The catalog's last items: these fields' assignments.
  for (let i = 0; i < 50; i++) await store.put('c', `doc${i}`, { a: i, b: `text ${i}` });
  const last = store.lastTsn;
  await store.close();
  store = await DocumentStore.open(options);
  t.teardown(() => store.close());
  const replay = store.stats().recovery.replay!;
  t.ok(replay.records <= 1, `replayed ${replay.records} records from TSN ${replay.fromTsn} (the last is ${last})`);
  t.equal((await store.get('c', 'doc49'))!.json, '{"a":49,"b":"text 49"}');
  t.equal((await store.get('c', 'first'))!.json, '{"a":1,"b":2}');
});
