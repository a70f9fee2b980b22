#!/usr/bin/env node
// The `docket` command. `docket serve` starts the server (what `npm start` runs).

import { buildApp } from './app.js';
import { ConfigError, helpText, loadConfig } from './config.js';

async function serve(argv: string[]): Promise<void> {
  if (argv.includes('--help')) {
    process.stdout.write(helpText());
    return;
  }
  const config = loadConfig(argv, process.env);
  const app = await buildApp({ dataDirectory: config.dataDirectory, logger: true });
  const address = await app.listen({ host: config.host, port: config.port });
  app.log.info(`docket ready at ${address} (data in ${config.dataDirectory})`);
  const stop = (): void => {
    app.log.info('shutting down');
    void app.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

const [command, ...rest] = process.argv.slice(2);
if (command !== 'serve') {
  process.stderr.write(`Usage: docket serve [options]   (docket serve --help lists them)\n`);
  process.exit(command === undefined || command === '--help' ? 0 : 2);
}
serve(rest).catch((error: unknown) => {
  process.stderr.write(`docket: ${error instanceof ConfigError ? error.message : (error as Error).stack}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
