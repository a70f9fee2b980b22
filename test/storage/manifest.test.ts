import t from 'tap';
import { corruption } from '../../storage/errors.js';
import { Manifest } from '../../storage/manifest/manifest.js';
import { ManifestState } from '../../storage/manifest/manifest-state.js';
import { decodeEdit, encodeEdit, type FileMeta, type VersionEdit } from '../../storage/manifest/version-edit.js';
import { SimFileSystem } from '../../storage/sim-file-system.js';

const file = (number: number, smallest: string, largest: string, lsnMax = number): FileMeta => ({
  number, sizeBytes: 100 * number, smallestKey: Buffer.from(smallest), largestKey: Buffer.from(largest), lsnMin: 1, lsnMax, entries: 3,
});

t.test('a version edit round-trips through its encoding', async (t) => {
  const edit: VersionEdit = {
    nextFileNumber: 9, lastLsn: 77, nextFamilyId: 3,
    addedFamilies: [{ id: 2, name: 'comments.body' }], droppedFamilies: [1],
    addedFiles: [{ familyId: 2, level: 1, file: file(7, 'a', 'm') }], deletedFiles: [{ familyId: 2, level: 0, number: 5 }],
    flags: [{ familyId: 2, flag: { tag: 42, lsnFirst: 100, lsnLast: 103 } }], persistedLsns: [{ familyId: 2, lsn: 103 }],
  };
  t.same(decodeEdit(encodeEdit(edit)), edit);
});

t.test('the worked example of manifest/FORMAT.md is what the encoder writes', async (t) => {
  const bytes = encodeEdit({ nextFileNumber: 9, flags: [{ familyId: 1, flag: { tag: 42, lsnFirst: 100, lsnLast: 103 } }], persistedLsns: [{ familyId: 1, lsn: 103 }] });
  t.equal(bytes.toString('hex'), '0109' + '07012a6467' + '080167');
});

t.test('an unknown tag is corruption, not a guess', async (t) => {
  t.throws(() => decodeEdit(Buffer.from([0x63, 0x01])), corruption('x').constructor);
  t.throws(() => decodeEdit(Buffer.from([0x63, 0x01])), { code: 'DOCKET_ERR_STORAGE_CORRUPTION' });
});

t.test('applying edits keeps L0 newest first and deeper levels sorted by key', async (t) => {
  const state = new ManifestState();
  state.apply({ addedFamilies: [{ id: 0, name: 'f' }] });
  state.apply({ addedFiles: [{ familyId: 0, level: 0, file: file(4, 'a', 'z', 10) }, { familyId: 0, level: 0, file: file(5, 'b', 'c', 20) }] });
  state.apply({ addedFiles: [{ familyId: 0, level: 1, file: file(8, 'n', 'p') }, { familyId: 0, level: 1, file: file(6, 'a', 'c') }] });
  const levels = state.family(0).levels;
  t.same(levels[0]!.map((f) => f.number), [5, 4]);
  t.same(levels[1]!.map((f) => f.number), [6, 8]);
  t.equal(state.nextFileNumber, 9, 'file numbers stay above every table');
  t.throws(() => state.apply({ deletedFiles: [{ familyId: 0, level: 2, number: 6 }] }), { code: 'DOCKET_ERR_STORAGE_CORRUPTION' });
});

t.test('the manifest is rewritten as a snapshot past its size bound, and reopens to the same state', async (t) => {
  const fs = new SimFileSystem();
  await fs.mkdir('/db');
  await fs.syncDirectory('/'); // The directory itself must survive the crash below.
  const manifest = await Manifest.open(fs, '/db', 1, 512);
  await manifest.log({ addedFamilies: [{ id: 0, name: 'f' }], nextFamilyId: 1 });
  for (let i = 0; i < 40; i++) await manifest.log({ flags: [{ familyId: 0, flag: { tag: i, lsnFirst: i * 2 + 1, lsnLast: i * 2 + 2 } }] });
  const first = manifest.manifestNumber;
  t.ok(first > 2, `rewritten to manifest ${first}`);
  t.equal(fs.listAll().filter((path) => path.includes('MANIFEST-')).length, 1, 'the old manifests are gone');
  await manifest.close();
  const reopened = await Manifest.open(fs.image(3, 'drop-unsynced'), '/db', 1, 512);
  t.same(reopened.state.family(0).flag, { tag: 39, lsnFirst: 79, lsnLast: 80 });
  await reopened.close();
});
