// Graceful shutdown of the real server process: SIGTERM or SIGINT while writes are in flight.
// Every request the server received before the signal finishes with its normal answer, the
// process exits 0, and after a restart every acknowledged write is there.

import t from 'tap';
import { Agent, request } from 'undici';
import { startServer, type LogRecord } from '../helpers/server.js';

const CLIENTS = 16;
/** Each client writes until a write is refused, at most this many times. */
const WRITES_PER_CLIENT_MAX = 200;
/** The signal goes once the server has completed this many writes, with the others still coming. */
const WRITES_BEFORE_SIGNAL = 16;

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} finishes in-flight writes, syncs and exits 0`, async (t) => {
    const dataDir = t.testdir();
    const server = await startServer({ dataDir });
    t.teardown(() => server.kill());
    const agent = new Agent({ connections: CLIENTS });
    t.teardown(() => agent.close());
    t.equal((await request(`${server.url}/collections/c`, { method: 'PUT', dispatcher: agent })).statusCode, 201);
    const acknowledged = new Map<string, number>();
    const outcomes: (number | string)[] = [];
    // Each client keeps writing until the server refuses (503) or is gone, so writes are still
    // arriving whenever the signal lands.
    const clients = Array.from({ length: CLIENTS }, async (_, client) => {
      for (let n = 0; n < WRITES_PER_CLIENT_MAX; n++) {
        const id = `d${client}-${n}`;
        try {
          const response = await request(`${server.url}/collections/c/docs/${id}`, {
            method: 'PUT', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, text: 'x'.repeat(2000) }),
          });
          const body = (await response.body.json()) as { rev?: number; code?: string };
          outcomes.push(response.statusCode);
          if (response.statusCode !== 201) return;
          acknowledged.set(id, body.rev!);
        } catch (error) {
          outcomes.push((error as { code?: string }).code ?? 'error'); // Connection refused once it stopped listening.
          return;
        }
      }
    });
    // Signal once the server has completed some writes (its own log says so).
    let completed = 0;
    const isWrite = (record: LogRecord): boolean => record.msg === 'request completed' && record.res?.statusCode === 201 && ++completed >= WRITES_BEFORE_SIGNAL + 1;
    await server.waitForLog(isWrite, `${WRITES_BEFORE_SIGNAL} completed writes`);
    const exit = server.stop(signal);
    await Promise.all(clients);
    t.equal(await exit, 0, 'exit status 0');
    const shutdownAt = server.records.findIndex((record) => record.msg?.startsWith(`${signal}: shutting down`));
    t.ok(shutdownAt >= 0, 'logged the shutdown');
    // From the server's log: every request it had received when shutdown began was answered normally.
    const received = new Map<string, string>();
    for (const record of server.records.slice(0, shutdownAt)) if (record.msg === 'incoming request' && record.reqId) received.set(record.reqId, `${record.req?.method} ${record.req?.url}`);
    const answers = new Map<string, number | undefined>();
    let answeredAfterSignal = 0;
    server.records.forEach((record, at) => {
      if (record.msg !== 'request completed' || !record.reqId || !received.has(record.reqId)) return;
      answers.set(record.reqId, record.res?.statusCode);
      if (at > shutdownAt) answeredAfterSignal++;
    });
    const unanswered = [...received].filter(([reqId]) => answers.get(reqId) !== 201).map(([reqId, what]) => `${reqId} ${what}: ${answers.get(reqId) ?? 'no answer'}`);
    t.same(unanswered, [], `all ${received.size} requests received before the shutdown were answered 201 (${answeredAfterSignal} of them after the signal)`);
    const unexpected = outcomes.filter((o) => typeof o === 'number' && o !== 201 && o !== 503);
    t.same(unexpected, [], 'every answered write is 201, or 503 if it arrived after shutdown began');
    t.ok(acknowledged.size >= WRITES_BEFORE_SIGNAL, `${acknowledged.size} writes acknowledged before the exit (the server had completed ${WRITES_BEFORE_SIGNAL} when signalled)`);

    const again = await startServer({ dataDir });
    t.teardown(() => again.kill());
    for (const [id, rev] of acknowledged) {
      const response = await request(`${again.url}/collections/c/docs/${id}`);
      t.equal(response.statusCode, 200, `${id} survived`);
      t.equal(response.headers.etag, `"${rev}"`, `${id} at its acknowledged revision`);
      const document = (await response.body.json()) as { id: string };
      t.equal(document.id, id);
    }
    t.equal(await again.stop(), 0);
  });
}
