// A standby's rebuild in place (server/rebuild.ts) crashed at every mutating file operation,
// under every kind of crash damage, on the simulated file layer: the download of the new copy
// beside the data directory (in the order a checkpoint target writes: INCOMPLETE marker, files,
// COMPLETE marker) and the swap (two renames and an fsync of the parent, then the old copy
// deleted). After each crash, settleRebuild (what a restart runs before the store opens) must
// leave exactly one data directory holding one whole copy, the old or the new one, never a
// mixture and never none; the new one whenever the swap had returned; and no rebuild or old
// directory behind. About 1 s.

import t from 'tap';
import * as path from 'node:path';
import { DAMAGES, SimFileSystem, SimulatedCrash } from '../../storage/sim-file-system.js';
import type { FileSystem } from '../../storage/index.js';
import { rebuildPaths, settleRebuild, swapIn } from '../../server/rebuild.js';
import { COMPLETE_MARKER, INCOMPLETE_MARKER } from '../../src/checkpoint/checkpoint.js';

const DATA = '/disk/standby/data';
const FILES = ['engine/MANIFEST-1', 'engine/000007.sst', 'binlog/000001.log', 'term.json'];

async function writeFile(fs: FileSystem, file: string, text: string): Promise<void> {
  const handle = await fs.open(file, 'create');
  await handle.append(Buffer.from(text));
  await handle.sync();
  await handle.close();
}

/** A copy of a store: every file says which copy it belongs to, with the checkpoint's markers as a target leaves them. */
async function writeCopy(fs: FileSystem, directory: string, which: string): Promise<void> {
  await fs.mkdir(directory);
  await fs.syncDirectory(path.dirname(directory));
  await writeFile(fs, path.join(directory, INCOMPLETE_MARKER), 'cut short\n');
  await fs.syncDirectory(directory);
  for (const sub of ['engine', 'binlog']) await fs.mkdir(path.join(directory, sub));
  await fs.syncDirectory(directory);
  for (const file of FILES) {
    await writeFile(fs, path.join(directory, file), `${which}:${file}`);
    await fs.syncDirectory(path.dirname(path.join(directory, file)));
  }
  // As src/checkpoint/target.ts completes: the marker written under a temporary name, synced, renamed.
  await writeFile(fs, path.join(directory, `${COMPLETE_MARKER}.tmp`), `${which}\n`);
  await fs.rename(path.join(directory, `${COMPLETE_MARKER}.tmp`), path.join(directory, COMPLETE_MARKER));
  await fs.syncDirectory(directory);
  await fs.unlink(path.join(directory, INCOMPLETE_MARKER));
  await fs.syncDirectory(directory);
}

/** What the simulated layer can delete of a tree: its files (a directory stays, empty). */
function removeTree(fs: SimFileSystem): (directory: string) => Promise<void> {
  const remove = async (directory: string): Promise<void> => {
    if (!(await fs.exists(directory))) return;
    for (const name of await fs.list(directory)) {
      const child = path.join(directory, name);
      if (fs.readFileSync(child) !== undefined) await fs.unlink(child);
      else await remove(child);
    }
  };
  return remove;
}

/** The whole copy in `directory`, 'old' or 'new', or a description of what is wrong with it. */
function copyIn(fs: SimFileSystem, directory: string): string {
  const marker = fs.readFileSync(path.join(directory, COMPLETE_MARKER))?.toString();
  if (marker === undefined) return `no ${COMPLETE_MARKER} in ${directory}`;
  const which = marker.trim();
  for (const file of FILES) {
    const text = fs.readFileSync(path.join(directory, file))?.toString();
    if (text !== `${which}:${file}`) return `${file} holds ${JSON.stringify(text)} in the ${which} copy`;
  }
  return which;
}

/** The rebuild: the new copy beside the data directory, then the swap. Resolves 'swapped' once swapIn returned. */
async function rebuild(fs: SimFileSystem, marks: { swapped: boolean }): Promise<void> {
  const paths = rebuildPaths(DATA);
  await writeCopy(fs, paths.rebuild, 'new');
  await swapIn(fs, paths, removeTree(fs));
  marks.swapped = true;
}

async function oldStore(): Promise<SimFileSystem> {
  const fs = new SimFileSystem();
  await fs.mkdir('/disk/standby');
  await fs.syncDirectory('/');
  await fs.syncDirectory('/disk');
  await writeCopy(fs, DATA, 'old');
  return fs;
}

t.test('a rebuild in place crashed at every operation settles to one whole copy', async (t) => {
  const clean = await oldStore();
  const before = clean.operationCount;
  await rebuild(clean, { swapped: false });
  const operations = clean.operationCount - before;
  t.equal(copyIn(clean, DATA), 'new', 'without a crash the new copy is the data directory');
  t.ok(operations > 20, `the rebuild takes ${operations} mutating operations`);

  const problems: string[] = [];
  const outcomes = new Map<string, number>();
  let seed = 1;
  for (let crashAt = 1; crashAt <= operations; crashAt++) {
    for (const damage of DAMAGES) {
      const fs = await oldStore();
      const marks = { swapped: false };
      fs.crashAfter(crashAt);
      try {
        await rebuild(fs, marks);
      } catch (error) {
        if (!(error instanceof SimulatedCrash) && !fs.crashed) throw error;
      }
      const disk = fs.image(seed++, damage);
      const where = `crash at operation ${crashAt}/${operations}, ${damage}`;
      let settled: string;
      try {
        settled = await settleRebuild(disk, DATA, removeTree(disk));
      } catch (error) {
        problems.push(`${where}: settleRebuild threw ${(error as Error).message}`);
        continue;
      }
      const copy = copyIn(disk, DATA);
      if (copy !== 'old' && copy !== 'new') problems.push(`${where}: ${copy}`);
      if (marks.swapped && copy !== 'new') problems.push(`${where}: the swap had returned but the ${copy} copy is there`);
      const paths = rebuildPaths(DATA);
      if (await disk.exists(paths.rebuild)) problems.push(`${where}: ${paths.rebuild} is left`);
      if (await disk.exists(paths.old)) problems.push(`${where}: ${paths.old} is left`);
      // Settling twice changes nothing more (a crash during settling is a crash before it).
      if ((await settleRebuild(disk, DATA, removeTree(disk))) !== 'nothing') problems.push(`${where}: a second settle found more to do`);
      const key = `${copy} (${settled})`;
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }
  }
  t.same(problems.slice(0, 20), [], 'every crash point settles to one whole copy');
  t.comment(JSON.stringify(Object.fromEntries(outcomes)));
  const seen = [...outcomes.keys()].join(' ');
  // The sweep reached the cases it is for: cut-short downloads, roll-forwards between or after the renames, the old copy deleted.
  t.match(seen, /old \(removed-incomplete\)/, 'downloads cut short were removed');
  t.match(seen, /new \(rolled-forward\)/, 'complete copies were swapped in at the restart');
  t.match(seen, /new \(nothing\)|new \(removed-old\)/, 'swaps that finished kept the new copy');
});
