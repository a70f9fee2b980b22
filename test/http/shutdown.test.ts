// Graceful shutdown of the real server process: SIGTERM or SIGINT while writes are in flight.
// Every request the server received before the signal finishes with its normal answer, the
// process exits 0, and after a restart every acknowledged write is there.

import t from 'tap';
import { Agent, request } from 'undici';
import { startServer } from '../helpers/server.js';

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} finishes in-flight writes, syncs and exits 0`, async (t) => {
    const dataDir = t.testdir();
    const server = await startServer({ dataDir });
    t.teardown(() => server.kill());
    const agent = new Agent({ connections: 16 });
    t.teardown(() => agent.close());
    t.equal((await request(`${server.url}/collections/c`, { method: 'PUT', dispatcher: agent })).statusCode, 201);
    const acknowledged = new Map<string, number>();
    const outcomes: (number | string)[] = [];
    const writes = Array.from({ length: 64 }, async (_, i) => {
      try {
        const response = await request(`${server.url}/collections/c/docs/d${i}`, {
          method: 'PUT', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i, text: 'x'.repeat(2000) }),
        });
        const body = (await response.body.json()) as { rev?: number; code?: string };
        outcomes.push(response.statusCode);
        if (response.statusCode === 201) acknowledged.set(`d${i}`, body.rev!);
      } catch (error) {
        outcomes.push((error as { code?: string }).code ?? 'error'); // Connection refused once it stopped listening.
      }
    });
    // Let some requests reach the server, then signal while others are still arriving.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const exit = server.stop(signal);
    await Promise.all(writes);
    t.equal(await exit, 0, 'exit status 0');
    t.ok(server.logs.join('').includes(`${signal}: shutting down`), 'logged the shutdown');
    const unexpected = outcomes.filter((o) => typeof o === 'number' && o !== 201 && o !== 503);
    t.same(unexpected, [], 'every answered write is 201, or 503 if it arrived after shutdown began');
    t.ok(acknowledged.size > 0, `${acknowledged.size} of 64 writes acknowledged before the exit`);

    const again = await startServer({ dataDir });
    t.teardown(() => again.kill());
    for (const [id, rev] of acknowledged) {
      const response = await request(`${again.url}/collections/c/docs/${id}`);
      t.equal(response.statusCode, 200, `${id} survived`);
      t.equal(response.headers.etag, `"${rev}"`, `${id} at its acknowledged revision`);
      const document = (await response.body.json()) as { i: number };
      t.equal(document.i, Number(id.slice(1)));
    }
    t.equal(await again.stop(), 0);
  });
}
