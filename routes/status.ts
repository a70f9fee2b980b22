// GET /, /healthz and /stats: what the server is, whether it serves, how its store is doing.

import type { FastifyPluginAsync } from 'fastify';
import type { Docket } from '../server/http/context.js';
import { PACKAGE } from '../src/version.js';

export const statusRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  app.get('/', async () => ({
    name: PACKAGE.name,
    version: PACKAGE.version,
    role: docket.replication?.role ?? (docket.config.replicaOf !== '' ? 'standby' : 'primary'), // A standby recovering or swapping in a rebuilt copy has no node for a moment.
    ...(docket.replication?.primary ? { primary: docket.replication.primary } : {}),
    phase: docket.phase,
    tsn: docket.phase === 'ready' ? docket.store.lastTsn : null,
  }));

  // 200 once recovery is over; 503 (DOCKET_ERR_UNAVAILABLE) while it runs or after shutdown began.
  app.get('/healthz', async () => {
    docket.store;
    return { status: 'ok' };
  });

  app.get('/stats', async () => {
    const stats = docket.store.stats();
    return {
      ...stats,
      sync: { mode: docket.config.sync, ...(docket.config.sync === 'periodic' ? { intervalMs: docket.config.syncIntervalMs } : {}) },
      ...(docket.overload ? { overload: docket.overload.stats() } : {}),
      ...(docket.replication ? { replication: { ...docket.replication.stats(), ...(docket.seeded ? { seeded: docket.seeded } : {}) } } : {}),
    };
  });
};
