// Load shedding: past each bound (connections, requests in flight, event-loop delay) the
// server answers 503 DOCKET_ERR_OVERLOADED with Retry-After at once, /healthz and /metrics are
// never shed, the figures show in /stats, and the flags are in --help. Requests are held in
// flight by bodies the test has not finished sending, so every step waits on an event.

import t, { type Test } from 'tap';
import { Readable } from 'node:stream';
import { Client } from 'undici';
import { buildApp } from '../../server/app.js';
import { helpText, loadConfig } from '../../server/config.js';
import { eventLoopDelayProbe, type EventLoopDelayProbe } from '../../server/http/overload.js';

function fakeProbe(): EventLoopDelayProbe & { value: number } {
  return {
    value: 0,
    delayMs() {
      return this.value;
    },
    stop() {},
  };
}

async function listening(t: Test, config: Parameters<typeof buildApp>[0]): Promise<{ app: Awaited<ReturnType<typeof buildApp>>; origin: string }> {
  const app = await buildApp(config);
  t.teardown(() => app.close());
  await app.docket.opened;
  const origin = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, origin };
}

function expectOverloaded(t: Test, response: { statusCode: number; headers: Record<string, unknown>; body: string }, what: string, message: RegExp): void {
  t.equal(response.statusCode, 503, `${what}: 503`);
  t.equal(response.headers['retry-after'], '1', `${what}: Retry-After`);
  t.match(JSON.parse(response.body), { statusCode: 503, code: 'DOCKET_ERR_OVERLOADED', error: 'Service Unavailable', message }, `${what}: body`);
}

t.test('event-loop delay past its bound: 503 with Retry-After; /healthz and /metrics still answer', async (t) => {
  const probe = fakeProbe();
  const app = await buildApp({ config: { dataDirectory: t.testdir(), eventLoopDelayMaxMs: 200 }, eventLoopDelayProbe: probe });
  t.teardown(() => app.close());
  await app.docket.opened;
  t.equal((await app.inject({ method: 'GET', url: '/collections' })).statusCode, 200, 'under the bound');
  probe.value = 200;
  t.equal((await app.inject({ method: 'GET', url: '/collections' })).statusCode, 200, 'at the bound');
  probe.value = 250;
  const refused = await app.inject({ method: 'PUT', url: '/collections/c', payload: '{}', headers: { 'content-type': 'application/json' } });
  expectOverloaded(t, { ...refused, headers: refused.headers }, 'past the bound', /event loop is 250 ms late, past its bound of 200 ms/);
  t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200, '/healthz is not shed');
  t.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200, '/metrics is not shed');
  t.equal((await app.inject({ method: 'GET', url: '/stats' })).statusCode, 503, '/stats is shed');
  probe.value = 10;
  const stats = (await app.inject({ method: 'GET', url: '/stats' })).json();
  t.match(stats.overload, { eventLoopDelayMaxMs: 200, eventLoopDelayMs: 10, shed: { connections: 0, requestsInFlight: 0, eventLoopDelay: 2 } });
  t.equal((await app.inject({ method: 'GET', url: '/collections/c' })).statusCode, 404, 'back under: served (the refused PUT wrote nothing)');
});

t.test('requests in flight past the bound: 503 at once; room again once one is answered', async (t) => {
  const { app, origin } = await listening(t, { config: { dataDirectory: t.testdir(), requestsInFlightMax: 2 } });
  const clients = [new Client(origin), new Client(origin), new Client(origin)];
  t.teardown(async () => Promise.all(clients.map((c) => c.destroy())));
  await (await clients[2]!.request({ method: 'PUT', path: '/collections/c', body: '{}', headers: { 'content-type': 'application/json' } })).body.text();

  // Two bulk requests whose bodies are held back are in flight until released.
  const releases: (() => void)[] = [];
  const held = clients.slice(0, 2).map((c) => {
    const gate = new Promise<void>((resolve) => releases.push(resolve));
    async function* body(): AsyncGenerator<string> {
      yield '{"id":"a"}\n';
      await gate;
      yield '{"id":"b"}\n';
    }
    return c.request({ method: 'POST', path: '/collections/c/bulk', body: Readable.from(body()), headers: { 'content-type': 'application/x-ndjson' } });
  });
  // Wait until the server has received both (their headers; the bodies are held).
  const guard = app.docket.overload!;
  await until(() => guard.stats().requestsInFlight === 2);
  const third = await clients[2]!.request({ method: 'GET', path: '/collections' });
  expectOverloaded(t, { statusCode: third.statusCode, headers: third.headers, body: await third.body.text() }, 'a third request', /2 requests in flight, its bound/);
  const health = await clients[2]!.request({ method: 'GET', path: '/healthz' });
  t.equal(health.statusCode, 200, '/healthz is not shed');
  await health.body.text();
  // A long poll waits rather than works: not counted, not shed.
  const poll = await clients[2]!.request({ method: 'GET', path: '/changes?feed=longpoll&timeout=0&since=1000' });
  t.equal(poll.statusCode, 200, 'a long poll is not shed');
  await poll.body.text();

  releases[0]!();
  const first = await held[0]!;
  t.equal(first.statusCode, 200, 'the first held request completes');
  t.match(JSON.parse(await first.body.text()), { lines: 2, stored: 2 });
  await until(() => guard.stats().requestsInFlight === 1);
  const fourth = await clients[2]!.request({ method: 'GET', path: '/collections' });
  t.equal(fourth.statusCode, 200, 'room again');
  await fourth.body.text();
  releases[1]!();
  t.equal((await held[1]!).statusCode, 200);
  await until(() => guard.stats().requestsInFlight === 0);
  t.match((await statsOf(clients[2]!)).overload, { requestsInFlightMax: 2, requestsInFlight: 1, shed: { requestsInFlight: 1 } }, '/stats counts itself');
});

t.test('connections past the bound: requests on the excess connection get 503 and it is closed; the others are served', async (t) => {
  const { app, origin } = await listening(t, { config: { dataDirectory: t.testdir(), connectionsMax: 2 } });
  const first = new Client(origin);
  const second = new Client(origin);
  const third = new Client(origin);
  t.teardown(async () => Promise.all([first, second, third].map((c) => c.destroy())));
  for (const c of [first, second]) {
    const response = await c.request({ method: 'GET', path: '/collections' });
    t.equal(response.statusCode, 200);
    await response.body.text();
  }
  const refused = await third.request({ method: 'GET', path: '/collections' });
  expectOverloaded(t, { statusCode: refused.statusCode, headers: refused.headers, body: await refused.body.text() }, 'the third connection', /3 connections open, past its bound of 2/);
  t.equal(refused.headers.connection, 'close', 'the excess connection is closed');
  const stats = await statsOf(first);
  t.match(stats.overload, { connectionsMax: 2, shed: { connections: 1 } });
  // Once it and one of the others are gone, a new connection is within the bound again.
  await second.close();
  await until(() => app.docket.overload!.stats().connections === 1);
  const fourth = new Client(origin);
  t.teardown(() => fourth.close());
  const served = await fourth.request({ method: 'GET', path: '/collections' });
  t.equal(served.statusCode, 200, 'a new connection after the excess one closed');
  await served.body.text();
});

t.test('the real event-loop probe sees a blocked loop', async (t) => {
  const probe = eventLoopDelayProbe(60_000);
  t.teardown(() => probe.stop());
  // Node's monitor records from its second timer callback on (the first only starts its clock),
  // so the loop is blocked until the probe reports it, at most five times; after each block the
  // monitor's overdue timer fires in the next timers phase, before the zero-delay timer awaited.
  for (let round = 0; round < 5 && probe.delayMs() < 200; round++) {
    const until = Date.now() + 250;
    while (Date.now() < until) {
      // Block the event loop, as a long synchronous task would.
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  t.ok(probe.delayMs() >= 200, `delay seen: ${probe.delayMs()} ms`);
});

t.test('the bounds are flags, environment variables and in --help', async (t) => {
  t.match(loadConfig([], {}), { connectionsMax: 1024, requestsInFlightMax: 256, eventLoopDelayMaxMs: 1000 });
  t.match(loadConfig(['--connections-max', '10', '--requests-in-flight-max=5', '--event-loop-delay-max-ms', '0'], {}), { connectionsMax: 10, requestsInFlightMax: 5, eventLoopDelayMaxMs: 0 });
  t.match(loadConfig([], { DOCKET_REQUESTS_IN_FLIGHT_MAX: '7' }), { requestsInFlightMax: 7 });
  t.throws(() => loadConfig(['--connections-max', '-1'], {}), /--connections-max must be an integer/);
  t.throws(() => loadConfig(['--tls-cert', 'a.pem'], {}), /--tls-cert and --tls-key go together/);
  for (const flag of ['--connections-max', '--requests-in-flight-max', '--event-loop-delay-max-ms', '--tls-cert', '--tls-key', '--token-reload-ms']) t.match(helpText(), flag);
});

interface Stats {
  overload: { connections: number; requestsInFlight: number; requestsInFlightMax: number; shed: Record<string, number> };
}

async function statsOf(client: Client): Promise<Stats> {
  const response = await client.request({ method: 'GET', path: '/stats' });
  return JSON.parse(await response.body.text()) as Stats;
}

/** Re-checks `condition` after each turn of the event loop (no timer) until it holds. */
async function until(condition: () => boolean, turns = 100_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not reached');
}
