// `docket serve`: builds the app (app.ts), listens at once so /healthz can answer 503 while
// the store recovers, logs "ready" when it is open, and on SIGTERM or SIGINT finishes requests,
// syncs the binlog and closes the engine before it exits.

import { isLoopback } from './auth/tokens.js';
import { helpText, loadConfig } from './config.js';

export async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  const config = loadConfig(argv, process.env);
  const { buildApp } = await import('./app.js');
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
