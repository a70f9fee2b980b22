import t from 'tap';
import { ByteWriter, WriteBatch } from '../../storage/index.js';
import { beginRecord, decodeTransaction, encodeCount, encodeEntries, encodeIndex, encodeWriteFields, WriteFields } from '../../src/documents/record.js';
import { translate } from '../../src/documents/translate.js';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

const KEY_OLD = hex('07 80 00 00 01 03 00 6b 31'); // index key: a = 2, id "k1"
const KEY_NEW = hex('07 80 00 00 01 02 00 6b 31'); // index key: a = 1.0, id "k1"

/** The worked example of src/documents/FORMAT.md (version 3: the write's index entries follow it). */
function example(): Buffer {
  const writer = new ByteWriter(64);
  beginRecord(writer, 3);
  encodeWriteFields(writer, 'put', 7, 'k1', false, exampleFields());
  encodeEntries(writer, 7, 72, [KEY_OLD], [KEY_NEW]);
  encodeCount(writer, 7, 5);
  return Buffer.from(writer.view());
}

/** The version 2 worked example: the same put, without index entries. */
function exampleV2(): Buffer {
  const writer = new ByteWriter(64);
  beginRecord(writer, 2);
  encodeWriteFields(writer, 'put', 7, 'k1', false, exampleFields());
  encodeCount(writer, 7, 5);
  const payload = Buffer.from(writer.view());
  payload[0] = 2;
  return payload;
}

function exampleFields(): WriteFields {
  const fields = new WriteFields();
  fields.fieldNumbers.push(1, 2);
  fields.assignments.push({ name: 'b', fieldNumber: 2, familyNumber: 3 });
  fields.putFieldNumbers.push(1, 2);
  fields.putFamilyNumbers.push(2, 3);
  fields.putValues.push(Buffer.from('1.0'), Buffer.from('"x"'));
  fields.deleteFieldNumbers.push(5);
  fields.deleteFamilyNumbers.push(2);
  return fields;
}

t.test('the worked example of FORMAT.md encodes byte for byte', async (t) => {
  t.same(
    example(),
    hex('03 03 03 01 07 02 6b 31 00 02 01 02 01 01 62 02 03 02 01 02 03 31 2e 30 02 03 03 22 78 22 01 05 02' + ' 07 07 48 01 09 07 80 00 00 01 03 00 6b 31 01 09 07 80 00 00 01 02 00 6b 31' + ' 04 07 05'),
  );
  t.same(exampleV2(), hex('02 02 03 01 07 02 6b 31 00 02 01 02 01 01 62 02 03 02 01 02 03 31 2e 30 02 03 03 22 78 22 01 05 02 04 07 05'), 'version 2 as it was');
});

t.test('a version 2 record translates to the same items it always did', async (t) => {
  const batch = new WriteBatch();
  translate(exampleV2(), 9, batch);
  const items = Array.from({ length: batch.length }, (_, i) => [batch.families[i], batch.kinds[i], batch.key(i).toString('hex'), batch.value(i).toString('hex')]);
  t.same(items, [
    ['catalog', 1, '66000000000007' + '62', '0203'],
    ['c7.0', 1, '6b31', '010009020102'],
    ['c7.2', 1, '6b310001', Buffer.from('1.0').toString('hex')],
    ['c7.3', 1, '6b310002', Buffer.from('"x"').toString('hex')],
    ['c7.2', 0, '6b310005', ''],
    ['catalog', 1, '6e000000000007', '05'],
  ]);
  const v2Index = Buffer.from(exampleV2());
  v2Index[1] = 3;
  const writer = new ByteWriter(64);
  encodeIndex(writer, 7, 'by_a', 72, '{}');
  t.throws(() => translate(Buffer.concat([v2Index, writer.view()]), 9, new WriteBatch()), { code: 'DOCKET_ERR_STORAGE_CORRUPTION', message: /kind 5/ }, 'an index op in a version 2 record is corruption');
});

t.test('version 3: an index op puts its definition and names its family; entries delete then put, keys as ranges of the record', async (t) => {
  const writer = new ByteWriter(64);
  beginRecord(writer, 1);
  encodeIndex(writer, 7, 'by_a', 72, '{"x":1}');
  const batch = new WriteBatch();
  const outline = translate(Buffer.from(writer.view()), 8, batch);
  t.same([batch.families[0], batch.key(0).toString('hex'), batch.value(0).toString()], ['catalog', '78000000000007' + Buffer.from('by_a').toString('hex'), '{"x":1}']);
  t.same(outline.families, ['c7.72']);
  t.match(decodeTransaction(example()).ops[1], { kind: 'entries', collectionId: 7, familyNumber: 72, deletes: [KEY_OLD], puts: [KEY_NEW] });
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
    ['c7.72', 0, KEY_OLD.toString('hex'), ''],
    ['c7.72', 1, KEY_NEW.toString('hex'), ''],
    ['catalog', 1, '6e000000000007', '05'],
  ]);
  t.equal(batch.valueSources[2], payload, 'a field value is a range of the record, not a copy');
  t.same(outline.families, ['c7.3'], 'the new field family is named for creation');
});

t.test('decodeTransaction reads the example back', async (t) => {
  const [op, , count] = decodeTransaction(example()).ops;
  t.same(count, { kind: 'count', collectionId: 7, documents: 5 });
  t.match(op, { kind: 'write', action: 'put', collectionId: 7, id: 'k1', deleted: false, fieldNumbers: [1, 2], assignments: [{ name: 'b', fieldNumber: 2, familyNumber: 3 }], deletes: [{ fieldNumber: 5, familyNumber: 2 }] });
});

t.test('a record of another version is refused naming the version', async (t) => {
  for (const version of [0, 4, 255]) {
    const payload = example();
    payload[0] = version;
    t.throws(() => translate(payload, 9, new WriteBatch()), { code: 'DOCKET_ERR_STORAGE_UNSUPPORTED_VERSION', message: new RegExp(`version ${version}\\b`) });
    t.throws(() => decodeTransaction(payload), { code: 'DOCKET_ERR_STORAGE_UNSUPPORTED_VERSION' });
  }
});

t.test('version 1 (no count op) still translates to the same items; a count op in it is corruption', async (t) => {
  const v2 = exampleV2();
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
