// The HTTP application: fastify with the routes of routes/. The document API arrives with the
// document layer; today the server exposes the engine's health and stats.

import Fastify, { type FastifyInstance } from 'fastify';
import { Engine } from '../storage/index.js';
import { statusRoutes } from '../routes/status.js';

export interface AppOptions {
  readonly dataDirectory: string;
  readonly logger?: boolean;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const engine = await Engine.open({ directory: options.dataDirectory });
  const app = Fastify({ logger: options.logger ?? false, requestTimeout: 30_000 });
  app.decorate('engine', engine);
  await app.register(statusRoutes, { engine });
  app.addHook('onClose', async () => engine.close());
  return app;
}
