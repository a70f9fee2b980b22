import t from 'tap';
import { buildApp } from '../../server/app.js';
import { helpText, loadConfig } from '../../server/config.js';

t.test('GET / names the server, GET /healthz is 200 once recovered, GET /stats shows the store', async (t) => {
  const app = await buildApp({ config: { dataDirectory: t.testdir() } });
  t.teardown(() => app.close());
  await app.docket.opened;
  const root = await app.inject({ method: 'GET', url: '/' });
  t.equal(root.statusCode, 200);
  t.match(root.json(), { name: 'docket', role: 'primary', phase: 'ready', tsn: 0 });
  t.same((await app.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok' });
  t.match((await app.inject({ method: 'GET', url: '/stats' })).json(), { tsn: 0, durability: 'passive', sync: { mode: 'immediate' }, binlog: { lastTsn: 0 } });
});

t.test('healthz is 503 with a coded body while the store recovers and after shutdown begins', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const app = await buildApp({ config: { dataDirectory: t.testdir() } });
  // A second app whose store open waits on the gate stands in for a long recovery.
  const { Docket } = await import('../../server/http/context.js');
  const slow = new Docket(app.docket.config, async () => {
    await gate;
    return app.docket.opened;
  });
  t.equal(slow.phase, 'recovering');
  t.throws(() => slow.store, { code: 'DOCKET_ERR_UNAVAILABLE', message: /recovering/ });
  release();
  await slow.opened;
  t.equal(slow.phase, 'ready');
  slow.beginClose();
  t.throws(() => slow.store, { code: 'DOCKET_ERR_UNAVAILABLE', message: /shutting down/ });
  await app.close();
  const after = await app.inject({ method: 'GET', url: '/healthz' }).catch((error: unknown) => error);
  t.ok(after instanceof Error || (after as { statusCode: number }).statusCode === 503, 'a closed app does not claim health');
});

t.test('flags win over environment variables, which win over defaults', async (t) => {
  t.match(loadConfig([], {}), { host: '127.0.0.1', port: 8080, dataDirectory: './data', sync: 'immediate', durability: 'passive' });
  t.match(loadConfig([], { DOCKET_PORT: '9000' }), { port: 9000 });
  t.match(loadConfig(['--port', '9100'], { DOCKET_PORT: '9000' }), { port: 9100 });
  t.match(loadConfig(['--data-dir=/tmp/x'], {}), { dataDirectory: '/tmp/x' });
  t.match(loadConfig(['--sync', 'periodic', '--sync-interval-ms=50'], {}), { sync: 'periodic', syncIntervalMs: 50 });
  t.match(loadConfig([], { DOCKET_DURABILITY: 'double' }), { durability: 'double' });
  t.throws(() => loadConfig(['--port', 'abc'], {}), { message: /--port must be an integer/ });
  t.throws(() => loadConfig(['--sync', 'sometimes'], {}), { message: /--sync must be one of immediate, periodic/ });
  t.throws(() => loadConfig([], { DOCKET_PORT: '70000' }), { message: /DOCKET_PORT must be an integer 0..65535/ });
  t.throws(() => loadConfig(['--nope'], {}), { message: /unknown option --nope/ });
  t.throws(() => loadConfig(['--port'], {}), { message: /--port needs a value/ });
  const help = helpText();
  for (const flag of ['--host', '--port', '--data-dir', '--sync', '--sync-interval-ms', '--durability', '--body-limit-bytes', '--request-timeout-ms']) t.match(help, flag);
  t.match(help, 'DOCKET_DATA_DIR');
});
