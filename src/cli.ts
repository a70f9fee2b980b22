#!/usr/bin/env node
// The `docket` command. `docket serve` starts the server (what `npm start` runs); `docket load`
// loads NDJSON files into it (src/load/); `docket token` makes and revokes access tokens
// (src/auth/).

import { isLoopback } from './auth/tokens.js';
import { ConfigError, helpText, loadConfig } from './config.js';

const USAGE = `Usage: docket <command> [options]

Commands:
  serve     run the server (docket serve --help lists its options)
  load      load NDJSON files (plain, .gz, .zst or stdin) into a collection (docket load --help)
  token     create, list and revoke access tokens (docket token --help)
`;

async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  const config = loadConfig(argv, process.env);
  const { buildApp } = await import('./app.js'); // Only here: `docket load` starts without the server's modules.
  const app = await buildApp({ config, logger: true });
  // Listen at once so /healthz can say 503 while recovery runs; log "ready" when it is over.
  const address = await app.listen({ host: config.host, port: config.port });
  app.log.info({ address, dataDirectory: config.dataDirectory }, `docket listening at ${address}, recovering`);
  if (!isLoopback(config.host) && config.tlsCert === '') app.log.warn(`listening on ${config.host} without TLS: tokens and documents cross the network in clear text (--tls-cert, --tls-key)`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    app.log.info(`${signal}: shutting down (finishing requests, syncing the binlog, closing the engine)`);
    app.close().then(
      () => {
        app.log.info({ signal }, 'docket stopped: requests finished, binlog synced, engine closed');
        process.exit(0);
      },
      (error: unknown) => {
        app.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  try {
    const store = await app.docket.opened;
    app.log.info({ address, tsn: store.lastTsn, sync: config.sync, durability: config.durability }, `docket ready at ${address} (data in ${config.dataDirectory})`);
  } catch (error) {
    app.log.fatal({ err: error }, 'the store did not open');
    await app.close().catch(() => undefined);
    process.exit(1);
  }
}

const [command, ...rest] = process.argv.slice(2);
if (command === 'serve') {
  serve(rest).catch((error: unknown) => {
    process.stderr.write(`docket: ${error instanceof ConfigError ? error.message : (error as Error).stack}\n`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
} else if (command === 'load') {
  import('./load/command.js').then(({ load }) => load(rest)).then(
    (status) => (process.exitCode = status),
    (error: unknown) => {
      process.stderr.write(`docket load: ${(error as Error).stack}\n`);
      process.exitCode = 3;
    },
  );
} else if (command === 'token') {
  import('./auth/command.js').then(({ token }) => token(rest)).then(
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
