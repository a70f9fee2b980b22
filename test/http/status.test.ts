import t from 'tap';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

t.test('GET / names the server and GET /healthz answers ok', async (t) => {
  const app = await buildApp({ dataDirectory: t.testdir() });
  t.teardown(() => app.close());
  const root = await app.inject({ method: 'GET', url: '/' });
  t.equal(root.statusCode, 200);
  t.match(root.json(), { name: 'docket', role: 'primary' });
  t.same((await app.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok' });
  t.match((await app.inject({ method: 'GET', url: '/stats' })).json(), { lastLsn: 0, families: [] });
});

t.test('flags win over environment variables, which win over defaults', async (t) => {
  t.match(loadConfig([], {}), { host: '127.0.0.1', port: 8080, dataDirectory: './data' });
  t.match(loadConfig([], { DOCKET_PORT: '9000' }), { port: 9000 });
  t.match(loadConfig(['--port', '9100'], { DOCKET_PORT: '9000' }), { port: 9100 });
  t.match(loadConfig(['--data-dir=/tmp/x'], {}), { dataDirectory: '/tmp/x' });
  t.throws(() => loadConfig(['--port', 'abc'], {}), { message: /port must be an integer/ });
  t.throws(() => loadConfig(['--nope'], {}), { message: /unknown option --nope/ });
});
