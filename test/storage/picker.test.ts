import t from 'tap';
import { levelScores, levelTargetBytes, pickCompaction, pickWholeLevel, type PickerConfig } from '../../storage/compaction/picker.js';
import { LEVELS } from '../../storage/limits.js';
import type { FileMeta } from '../../storage/manifest/version-edit.js';

const CONFIG: PickerConfig = { l0TriggerFiles: 4, level1SizeBytes: 1000 };
const file = (number: number, smallest: string, largest: string, sizeBytes = 100): FileMeta => ({
  number, sizeBytes, smallestKey: Buffer.from(smallest), largestKey: Buffer.from(largest), lsnMin: 1, lsnMax: number, entries: 1,
});
const levels = (...byLevel: FileMeta[][]): FileMeta[][] => Array.from({ length: LEVELS }, (_, i) => byLevel[i] ?? []);

t.test('each level below L1 may hold ten times the one above', async (t) => {
  t.equal(levelTargetBytes(1, CONFIG), 1000);
  t.equal(levelTargetBytes(2, CONFIG), 10_000);
  t.equal(levelTargetBytes(4, CONFIG), 1_000_000);
});

t.test('nothing is picked while every level is under its trigger', async (t) => {
  t.equal(pickCompaction(levels([file(1, 'a', 'b'), file(2, 'a', 'b')], [file(3, 'a', 'z', 900)]), [], CONFIG), undefined);
});

t.test('L0 at its file trigger compacts all of L0 with the L1 tables it overlaps', async (t) => {
  const l0 = [file(4, 'c', 'd'), file(5, 'a', 'b'), file(6, 'b', 'c'), file(7, 'a', 'd')];
  const pick = pickCompaction(levels(l0, [file(1, 'a', 'a'), file(2, 'e', 'f'), file(3, 'c', 'c')]), [], CONFIG)!;
  t.equal(pick.level, 0);
  t.same(pick.inputs.map((f) => f.number), [4, 5, 6, 7]);
  t.same(pick.nextInputs.map((f) => f.number), [1, 3], 'the L1 table at e..f does not overlap a..d');
});

t.test('an oversized level compacts one table at a time, round-robin after the last one', async (t) => {
  const l1 = [file(1, 'a', 'b', 400), file(2, 'c', 'd', 400), file(3, 'e', 'f', 400)];
  const state = levels([], l1, [file(9, 'c', 'c'), file(10, 'x', 'y')]);
  const first = pickCompaction(state, [], CONFIG)!;
  t.same([first.level, first.inputs[0]!.number], [1, 1]);
  const next = pickCompaction(state, [undefined, Buffer.from('b')], CONFIG)!;
  t.equal(next.inputs[0]!.number, 2, 'the table after the pointer');
  t.same(next.nextInputs.map((f) => f.number), [9]);
  const wrapped = pickCompaction(state, [undefined, Buffer.from('f')], CONFIG)!;
  t.equal(wrapped.inputs[0]!.number, 1, 'past the last table it starts over');
});

t.test('the bottom level never wants compaction, and the highest score wins', async (t) => {
  const bottom = Array.from({ length: LEVELS }, (_, i) => (i === LEVELS - 1 ? [file(1, 'a', 'z', 1e12)] : []));
  t.equal(levelScores(bottom, CONFIG)[LEVELS - 1], 0);
  const both = levels([file(1, 'a', 'b'), file(2, 'a', 'b'), file(3, 'a', 'b'), file(4, 'a', 'b')], [file(5, 'a', 'b', 3000)]);
  t.equal(pickCompaction(both, [], CONFIG)!.level, 1, 'L1 at 3x its target outranks L0 at 1x');
});

t.test('a whole-level pick takes every table of the level', async (t) => {
  const pick = pickWholeLevel(levels([], [file(1, 'a', 'b'), file(2, 'c', 'd')], [file(3, 'b', 'c')]), 1)!;
  t.same(pick.inputs.map((f) => f.number), [1, 2]);
  t.same(pick.nextInputs.map((f) => f.number), [3]);
  t.equal(pickWholeLevel(levels(), 1), undefined);
});
