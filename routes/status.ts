// GET /, /healthz and /stats: what the server is and how its engine is doing.

import type { FastifyPluginAsync } from 'fastify';
import type { Engine } from '../storage/index.js';

const VERSION = '0.1.0';

export const statusRoutes: FastifyPluginAsync<{ engine: Engine }> = async (app, { engine }) => {
  app.get('/', async () => ({ name: 'docket', version: VERSION, role: 'primary', lastLsn: engine.lastLsnAssigned }));
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/stats', async () => engine.stats());
};
