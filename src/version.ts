// The package's name and version, read from package.json wherever the code runs from (the
// TypeScript sources under tap, or the compiled copy under dist/).

import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackage(): { name: string; version: string } {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(directory, 'package.json');
    if (existsSync(candidate)) {
      const json = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (json.name === 'docket' && json.version) return { name: json.name, version: json.version };
    }
    const parent = path.dirname(directory);
    if (parent === directory) return { name: 'docket', version: '0.0.0' };
    directory = parent;
  }
}

export const PACKAGE = findPackage();
