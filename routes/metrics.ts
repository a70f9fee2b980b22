// GET /metrics: Prometheus text format. HTTP request counts and latencies by route, the store's
// figures read at scrape time (TSNs, binlog and engine bytes, syncs, flushes, compactions,
// stalls, memtables, levels, the replay point), and Node's process metrics. Each app has its
// own registry, so several apps in one process (tests) do not collide.

import type { FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Docket } from '../server/http/context.js';
import type { StoreStats } from '../src/store.js';

export const metricsRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  // The onResponse hook below must see every route, not only this plugin's: see the end.
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'docket_' });

  const requests = new Counter({ name: 'docket_http_requests_total', help: 'HTTP requests answered, by method, route and status', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const latency = new Histogram({
    name: 'docket_http_request_duration_seconds',
    help: 'Time from request to response, by method and route',
    labelNames: ['method', 'route'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    latency.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  // Store figures: gauges whose value is read from store.stats() when scraped.
  const gauges: [string, string, (stats: StoreStats) => number][] = [
    ['docket_tsn_last', 'Last TSN sequenced', (s) => s.tsn],
    ['docket_binlog_durable_tsn', 'Last TSN known durable in the binlog', (s) => s.binlog.durableTsn],
    ['docket_binlog_first_tsn', 'Oldest TSN the binlog still holds', (s) => s.binlog.firstTsn],
    ['docket_binlog_segments', 'Binlog segments on disk', (s) => s.binlog.segments],
    ['docket_binlog_written_bytes', 'Binlog bytes written since open (framed records)', (s) => s.binlog.bytesWritten],
    ['docket_binlog_syncs', 'Binlog fdatasyncs since open', (s) => s.binlog.syncs],
    ['docket_binlog_groups', 'Binlog commit groups since open', (s) => s.binlog.groups],
    ['docket_binlog_records', 'Binlog records since open', (s) => s.binlog.records],
    ['docket_engine_written_user_bytes', 'Bytes the engine was asked to write since open', (s) => s.engine.bytesWritten.user],
    ['docket_engine_written_wal_bytes', 'Engine WAL bytes since open (durability double only)', (s) => s.engine.bytesWritten.wal],
    ['docket_engine_written_flush_bytes', 'Bytes of tables written by flushes since open', (s) => s.engine.bytesWritten.flush],
    ['docket_engine_written_compaction_bytes', 'Bytes of tables written by compactions since open', (s) => s.engine.bytesWritten.compaction],
    ['docket_engine_write_amplification', '(WAL + flush + compaction bytes) / user bytes', (s) => s.engine.writeAmplification],
    ['docket_engine_flushes', 'Memtable flushes since open', (s) => s.engine.flushes],
    ['docket_engine_compactions', 'Compactions since open', (s) => s.engine.compactions],
    ['docket_engine_stall_ms', 'Milliseconds writes waited on back-pressure since open', (s) => s.engine.stallMs],
    ['docket_engine_families', 'Column families', (s) => s.engine.families.length],
    ['docket_engine_memtable_bytes', 'Bytes in memtables, all families', (s) => s.engine.families.reduce((sum, f) => sum + f.memtableBytes, 0)],
    ['docket_engine_table_bytes', 'Bytes of tables, all families and levels', (s) => s.engine.families.reduce((sum, f) => sum + f.levels.reduce((n, l) => n + l.bytes, 0), 0)],
    ['docket_engine_block_cache_hit_ratio', 'Block cache hits / lookups', (s) => s.engine.blockCache.hitRatio],
    ['docket_document_cache_hits', 'Whole-document reads answered from the document cache since open', (s) => s.documentCache.hits],
    ['docket_document_cache_misses', 'Whole-document reads assembled from the engine since open', (s) => s.documentCache.misses],
    ['docket_document_cache_bytes', 'Bytes charged to the document cache', (s) => s.documentCache.usageBytes],
    ['docket_epoch_replay_from_tsn', 'Smallest flush-flag TSN: where replay would start (the global epoch)', (s) => s.epochs?.replayFromTsn ?? 0],
  ];
  // One stats() call per scrape, not one per gauge.
  let snapshot: { atMs: number; stats: StoreStats } | undefined;
  const current = (): StoreStats => {
    const now = Date.now();
    if (!snapshot || now - snapshot.atMs > 100) snapshot = { atMs: now, stats: docket.store.stats() };
    return snapshot.stats;
  };
  for (const [name, help, read] of gauges) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (docket.phase === 'ready') this.set(read(current()));
      },
    });
  }

  // Replication (pg_stat_replication's figures): on a primary per standby, on a standby its own.
  const replication = () => (docket.phase === 'ready' ? docket.replication : undefined);
  new Gauge({
    name: 'docket_replication_term',
    help: 'The replication term this server is in',
    registers: [registry],
    collect() {
      const node = replication();
      if (node) this.set(node.terms.term);
    },
  });
  new Gauge({
    name: 'docket_replication_standby_tsn',
    help: 'Primary: per standby, the last TSN it reported written, durable, replayed',
    labelNames: ['standby', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of replication()?.source?.standbyStates() ?? []) for (const kind of ['written', 'durable', 'replayed'] as const) this.set({ standby: s.name, kind }, s[kind]);
    },
  });
  new Gauge({
    name: 'docket_replication_standby_lag_seconds',
    help: 'Primary: per standby, how long ago the first record it has not written, made durable, replayed became durable here',
    labelNames: ['standby', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      const source = replication()?.source;
      for (const s of source?.standbyStates() ?? []) for (const kind of ['written', 'durable', 'replayed'] as const) this.set({ standby: s.name, kind }, source!.lagMs(s[kind]) / 1000);
    },
  });
  new Gauge({
    name: 'docket_replication_standby_in_quorum',
    help: 'Primary: per standby, 1 while it counts towards the commit quorum',
    labelNames: ['standby'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of replication()?.source?.standbyStates() ?? []) this.set({ standby: s.name }, s.inQuorum ? 1 : 0);
    },
  });
  new Gauge({
    name: 'docket_replication_quorum_leaves',
    help: 'Primary: times a standby left the commit quorum since start',
    registers: [registry],
    collect() {
      const source = replication()?.source;
      if (source) this.set(source.counters.quorumLeaves);
    },
  });
  new Gauge({
    name: 'docket_replication_commit_timeouts',
    help: 'Primary: writes answered 503 because their commit level was not met in time',
    registers: [registry],
    collect() {
      const source = replication()?.source;
      if (source) this.set(source.counters.timeouts);
    },
  });
  new Gauge({
    name: 'docket_replication_local_tsn',
    help: "Standby: its written, durable, replayed TSN and the primary's durable and safe TSN",
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      const node = replication();
      if (!node || node.role !== 'standby') return;
      const s = node.standby!.stats() as Record<string, number>;
      for (const [kind, key] of [['written', 'writtenTsn'], ['durable', 'durableTsn'], ['replayed', 'replayedTsn'], ['primary_durable', 'primaryDurableTsn'], ['safe', 'safeTsn']] as const) this.set({ kind }, s[key]!);
    },
  });
  new Gauge({
    name: 'docket_replication_replay_lag_seconds',
    help: 'Standby: how long the oldest record not yet replayed has been here',
    registers: [registry],
    collect() {
      const node = replication();
      if (node?.role === 'standby') this.set(((node.standby!.stats() as { replayLagMs: number }).replayLagMs) / 1000);
    },
  });

  app.get('/metrics', async (_request, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
};

// Not encapsulated (what fastify-plugin does): the request hook applies to the whole app.
Object.assign(metricsRoutes, { [Symbol.for('skip-override')]: true });
