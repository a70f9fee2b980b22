import t from 'tap';
import { ByteWriter, WriteBatch } from '../../storage/index.js';
import { beginRecord, decodeTransaction, encodeCount, encodeWriteFields, WriteFields } from '../../src/documents/record.js';
import { translate } from '../../src/documents/translate.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

/** The worked example of src/documents/FORMAT.md. */
function example(): Buffer {
  const writer = new ByteWriter(64);
  const fields = new WriteFields();
  fields.fieldNumbers.push(1, 2);
  fields.assignments.push({ name: 'b', fieldNumber: 2, familyNumber: 3 });
  fields.putFieldNumbers.push(1, 2);
  fields.putFamilyNumbers.push(2, 3);
  fields.putValues.push(Buffer.from('1.0'), Buffer.from('"x"'));
  fields.deleteFieldNumbers.push(5);
  fields.deleteFamilyNumbers.push(2);
  beginRecord(writer, 2);
  encodeWriteFields(writer, 'put', 7, 'k1', false, fields);
  encodeCount(writer, 7, 5);
  return Buffer.from(writer.view());
}

t.test('the worked example of FORMAT.md encodes byte for byte', async (t) => {
  t.same(example(), hex('02 02 03 01 07 02 6b 31 00 02 01 02 01 01 62 02 03 02 01 02 03 31 2e 30 02 03 03 22 78 22 01 05 02 04 07 05'));
});

t.test('the worked example translates to the items FORMAT.md lists, values as ranges of the record', async (t) => {
  const payload = example();
  const batch = new WriteBatch();
  const outline = translate(payload, 9, batch);
  const items = Array.from({ length: batch.length }, (_, i) => [batch.families[i], batch.kinds[i], batch.key(i).toString('hex'), batch.value(i).toString('hex')]);
  t.same(items, [
    ['catalog', 1, '66000000000007' + '62', '0203'],
    ['c7.0', 1, '6b31', '010009020102'],
    ['c7.2', 1, '6b310001', Buffer.from('1.0').toString('hex')],
    ['c7.3', 1, '6b310002', Buffer.from('"x"').toString('hex')],
    ['c7.2', 0, '6b310005', ''],
    ['catalog', 1, '6e000000000007', '05'],
  ]);
  t.equal(batch.valueSources[2], payload, 'a field value is a range of the record, not a copy');
  t.same(outline.families, ['c7.3'], 'the new field family is named for creation');
});

t.test('decodeTransaction reads the example back', async (t) => {
  const [op, count] = decodeTransaction(example()).ops;
  t.same(count, { kind: 'count', collectionId: 7, documents: 5 });
  t.match(op, { kind: 'write', action: 'put', collectionId: 7, id: 'k1', deleted: false, fieldNumbers: [1, 2], assignments: [{ name: 'b', fieldNumber: 2, familyNumber: 3 }], deletes: [{ fieldNumber: 5, familyNumber: 2 }] });
});

t.test('a record of another version is refused naming the version', async (t) => {
  for (const version of [0, 3, 255]) {
    const payload = example();
    payload[0] = version;
    t.throws(() => translate(payload, 9, new WriteBatch()), { code: 'DOCKET_ERR_STORAGE_UNSUPPORTED_VERSION', message: new RegExp(`version ${version}\\b`) });
    t.throws(() => decodeTransaction(payload), { code: 'DOCKET_ERR_STORAGE_UNSUPPORTED_VERSION' });
  }
});

t.test('version 1 (no count op) still translates to the same items; a count op in it is corruption', async (t) => {
  const v2 = example();
  const v1 = Buffer.from(v2.subarray(0, v2.length - 3)); // Without the count op,
  v1[0] = 1; // as version 1,
  v1[1] = 1; // of one operation.
  const batch = new WriteBatch();
  translate(v1, 9, batch);
  t.equal(batch.length, 5, 'the write op translates to its five items');
  const withCount = Buffer.from(v2);
  withCount[0] = 1;
  t.throws(() => translate(withCount, 9, new WriteBatch()), { code: 'DOCKET_ERR_STORAGE_CORRUPTION', message: /kind 4/ });
  t.throws(() => decodeTransaction(withCount), { code: 'DOCKET_ERR_STORAGE_CORRUPTION' });
});

t.test('a version 1 drop deletes no count item; a version 2 drop does', async (t) => {
  const drop = (version: number): string[] => {
    const writer = new ByteWriter(64);
    writer.byte(version).varint(1).byte(2).varint(7).string('c').varint(1).varint(2).varint(1).string('a');
    const batch = new WriteBatch();
    translate(Buffer.from(writer.view()), 9, batch);
    return Array.from({ length: batch.length }, (_, i) => batch.key(i).toString('hex'));
  };
  t.same(drop(1), ['63' + '63', '66000000000007' + '61']);
  t.same(drop(2), ['63' + '63', '66000000000007' + '61', '6e000000000007']);
});

t.test('a truncated record is corruption, never a partial batch applied', async (t) => {
  const payload = example();
  for (let length = 2; length < payload.length; length++) {
    t.throws(() => translate(payload.subarray(0, length), 9, new WriteBatch()), { code: 'DOCKET_ERR_STORAGE_CORRUPTION' }, `cut at ${length}`);
  }
});
