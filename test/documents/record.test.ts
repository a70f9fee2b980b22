import t from 'tap';
import { ByteWriter, WriteBatch } from '../../storage/index.js';
import { beginRecord, decodeTransaction, encodeWriteFields, WriteFields } from '../../src/documents/record.js';
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
  beginRecord(writer, 1);
  encodeWriteFields(writer, 'put', 7, 'k1', false, fields);
  return Buffer.from(writer.view());
}

t.test('the worked example of FORMAT.md encodes byte for byte', async (t) => {
  t.same(example(), hex('01 01 03 01 07 02 6b 31 00 02 01 02 01 01 62 02 03 02 01 02 03 31 2e 30 02 03 03 22 78 22 01 05 02'));
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
  ]);
  t.equal(batch.valueSources[2], payload, 'a field value is a range of the record, not a copy');
  t.same(outline.families, ['c7.3'], 'the new field family is named for creation');
});

t.test('decodeTransaction reads the example back', async (t) => {
  const [op] = decodeTransaction(example()).ops;
  t.match(op, { kind: 'write', action: 'put', collectionId: 7, id: 'k1', deleted: false, fieldNumbers: [1, 2], assignments: [{ name: 'b', fieldNumber: 2, familyNumber: 3 }], deletes: [{ fieldNumber: 5, familyNumber: 2 }] });
});

t.test('a record of another version is refused naming the version', async (t) => {
  const payload = example();
  payload[0] = 2;
  t.throws(() => translate(payload, 9, new WriteBatch()), { code: 'DOCKET_ERR_STORAGE_UNSUPPORTED_VERSION', message: /version 2/ });
});

t.test('a truncated record is corruption, never a partial batch applied', async (t) => {
  const payload = example();
  for (let length = 2; length < payload.length; length++) {
    t.throws(() => translate(payload.subarray(0, length), 9, new WriteBatch()), { code: 'DOCKET_ERR_STORAGE_CORRUPTION' }, `cut at ${length}`);
  }
});
