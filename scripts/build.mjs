#!/usr/bin/env node
// `npm run build` and `npm start`'s prestart: compiles with `tsc -p tsconfig.build.json` and,
// when tsc succeeds, records the time the build began in dist/.build-stamp. With
// `--if-stale` (prestart) it compiles only when the build is not current: no stamp (a fresh
// clone, a failed or interrupted build, dist/ removed), no dist/src/cli.js, or a source file
// (.ts under src/, routes/, storage/, bench/) or tsconfig.json, tsconfig.build.json or
// package.json changed after the last good build began. A current build starts in well
// under a second instead of the ~20 s tsc takes.
//
// Plain JavaScript on purpose: it must run before anything is compiled.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync, mkdirSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const stampOf = (root) => path.join(root, 'dist', '.build-stamp');
const SOURCE_DIRECTORIES = ['src', 'server', 'loader', 'routes', 'storage', 'bench'];
const CONFIG_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];

/** The newest modification time (ms) of the build's inputs. */
function newestInputMs(root) {
  let newest = 0;
  const visit = (directory) => {
    for (const entry of readdirSync(directory, { withFileTypes: true })) {
      const file = path.join(directory, entry.name);
      if (entry.isDirectory()) visit(file);
      else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(file).mtimeMs);
    }
  };
  for (const directory of SOURCE_DIRECTORIES) if (existsSync(path.join(root, directory))) visit(path.join(root, directory));
  for (const file of CONFIG_FILES) if (existsSync(path.join(root, file))) newest = Math.max(newest, statSync(path.join(root, file)).mtimeMs);
  return newest;
}

/** Why the build of the checkout at `root` is stale, or undefined when it is current. */
export function staleness(root = ROOT) {
  if (!existsSync(stampOf(root))) return 'no completed build';
  if (!existsSync(path.join(root, 'dist', 'src', 'cli.js'))) return 'dist/src/cli.js is missing';
  if (newestInputMs(root) > statSync(stampOf(root)).mtimeMs) return 'sources changed since the last build';
  return undefined;
}

function build(root = ROOT) {
  const STAMP = stampOf(root);
  const began = new Date();
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) return result.status ?? 1;
  mkdirSync(path.dirname(STAMP), { recursive: true });
  writeFileSync(STAMP, 'the time the last successful build began, as this file\'s mtime (scripts/build.mjs)\n');
  utimesSync(STAMP, began, began); // A file edited while tsc ran is newer than the stamp: the next start rebuilds.
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--if-stale')) {
    const why = staleness();
    if (why === undefined) process.exit(0);
    process.stderr.write(`building (${why})...\n`);
  }
  process.exit(build());
}
