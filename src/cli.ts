#!/usr/bin/env node
// The `docket` command: the program's one entry point, which hands each subcommand to its
// part. `docket serve` starts the server (server/serve.ts; what `npm start` runs); `docket
// load` loads NDJSON files into one (loader/); `docket backup` writes a server's checkpoint
// to a directory (loader/backup.ts); `docket token` makes and revokes access tokens (server/auth/). Each part is imported only when asked for: `docket load` starts without the
// server's modules.

import { ConfigError } from '../server/config.js';

const USAGE = `Usage: docket <command> [options]

Commands:
  serve     run the server (docket serve --help lists its options)
  load      load NDJSON files (plain, .gz, .zst or stdin) into a collection (docket load --help)
  token     create, list and revoke access tokens (docket token --help)
  backup    write a consistent online backup of a running server to a directory (docket backup --help)
`;

const [command, ...rest] = process.argv.slice(2);
if (command === 'serve') {
  import('../server/serve.js').then(({ serve }) => serve(rest)).catch((error: unknown) => {
    process.stderr.write(`docket: ${error instanceof ConfigError ? error.message : (error as Error).stack}\n`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
} else if (command === 'load') {
  import('../loader/command.js').then(({ load }) => load(rest)).then(
    (status) => (process.exitCode = status),
    (error: unknown) => {
      process.stderr.write(`docket load: ${(error as Error).stack}\n`);
      process.exitCode = 3;
    },
  );
} else if (command === 'backup') {
  import('../loader/backup.js').then(({ backup }) => backup(rest)).then(
    (status) => (process.exitCode = status),
    (error: unknown) => {
      process.stderr.write(`docket backup: ${(error as Error).stack}\n`);
      process.exitCode = 3;
    },
  );
} else if (command === 'token') {
  import('../server/auth/command.js').then(({ token }) => token(rest)).then(
    (status) => (process.exitCode = status),
    (error: unknown) => {
      process.stderr.write(`docket token: ${(error as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
} else {
  process.stderr.write(USAGE);
  process.exit(command === undefined || command === '--help' || command === '-h' ? 0 : 2);
}
