// An app on a fresh data directory, open and closed with the test: what most HTTP tests that
// need no real server (app.inject) start from.

import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import { buildApp, type AppOptions } from '../../server/app.js';
import type { Config } from '../../server/config.js';

export interface OpenAppOptions {
  readonly config?: Partial<Config>;
  readonly store?: AppOptions['store'];
  /** A collection to create before the test starts. */
  readonly collection?: string;
}

export async function openApp(t: Test, options: OpenAppOptions = {}): Promise<FastifyInstance> {
  const app = await buildApp({ config: { dataDirectory: t.testdir(), ...options.config }, store: { epochCheckIntervalMs: 0, ...options.store } });
  t.teardown(() => app.close());
  await app.docket.opened;
  if (options.collection !== undefined) {
    const created = await app.inject({ method: 'PUT', url: `/collections/${options.collection}` });
    if (created.statusCode !== 201) throw new Error(`creating ${options.collection}: ${created.statusCode} ${created.body}`);
  }
  return app;
}
