import t from 'tap';
import { buildApp } from '../../server/app.js';

t.test('GET /metrics speaks Prometheus text with request counts and store figures', async (t) => {
  const app = await buildApp({ config: { dataDirectory: t.testdir() }, store: { epochCheckIntervalMs: 0 } });
  t.teardown(() => app.close());
  await app.docket.opened;
  await app.inject({ method: 'PUT', url: '/collections/c' });
  for (let i = 0; i < 3; i++) await app.inject({ method: 'PUT', url: `/collections/c/docs/d${i}`, payload: { i } });
  await app.inject({ method: 'GET', url: '/collections/c/docs/nope' });
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  const text = response.body;
  const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1]);
  t.equal(value(/^docket_http_requests_total\{method="PUT",route="\/collections\/:collection\/docs\/:id",status="201"\} (\d+)$/m), 3, 'three creates counted under their route');
  t.equal(value(/^docket_http_requests_total\{method="GET",route="\/collections\/:collection\/docs\/:id",status="404"\} (\d+)$/m), 1);
  t.equal(value(/^docket_tsn_last (\d+)$/m), 4, 'one create and three puts');
  t.equal(value(/^docket_binlog_durable_tsn (\d+)$/m), 4);
  t.ok(value(/^docket_binlog_syncs (\d+)$/m) >= 1);
  t.ok(value(/^docket_engine_families (\d+)$/m) >= 3, 'catalog, meta and a field family');
  t.match(text, /^docket_process_resident_memory_bytes \d+/m);
  t.match(text, /^docket_http_request_duration_seconds_bucket\{le="0\.005",method="PUT"/m);
});
