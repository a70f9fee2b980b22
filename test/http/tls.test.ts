// TLS and tokens end to end, against a real server process on 127.0.0.1: a self-signed
// certificate made at test time, tokens made and revoked with the `docket token` command,
// `docket load --token --ca-file` over HTTPS, and the server's whole log (at trace level)
// scanned for the secrets.

import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { Agent, request } from 'undici';
import { CLI_PATH, startServer } from '../helpers/server.js';

function run(args: string[], options: { cwd?: string; env?: Record<string, string> } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('HTTPS with --tls-cert/--tls-key, tokens from the CLI, docket load --token --ca-file, no secret logged', async (t) => {
  const dir = t.testdir();
  const dataDir = path.join(dir, 'data');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const ca = readFileSync(cert);

  const made = await run(['token', 'create', '--role', 'readwrite', '--name', 'loader', '--data-dir', dataDir]);
  t.equal(made.code, 0, made.stderr);
  const token = made.stdout.trim();
  t.match(token, /^dkt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/, 'the token, alone on standard output');
  const secret = token.split('_').slice(2).join('_');
  const admin = (await run(['token', 'create', '--role', 'admin', '--data-dir', dataDir])).stdout.trim();
  const list = await run(['token', 'list', '--data-dir', dataDir, '--json']);
  t.equal(list.code, 0);
  t.match(JSON.parse(list.stdout), [{ role: 'readwrite', name: 'loader', expires: null, expired: false }, { role: 'admin' }]);
  t.notOk(list.stdout.includes(secret), 'token list shows no secret');
  t.notOk(readFileSync(path.join(dataDir, 'tokens.json'), 'utf8').includes(secret), 'the token file holds no secret');
  t.equal((await run(['token', 'create', '--role', 'root', '--data-dir', dataDir])).code, 2, 'an unknown role is refused');

  const server = await startServer({ dataDir, args: ['--tls-cert', cert, '--tls-key', key, '--log-level', 'trace', '--token-reload-ms', '0'] });
  t.teardown(() => server.stop());
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const dispatcher = new Agent({ connect: { ca } });
  t.teardown(() => dispatcher.close());

  const health = await request(`${server.url}/healthz`, { dispatcher });
  t.equal(health.statusCode, 200, 'HTTPS, trusting the certificate');
  await health.body.text();
  await t.rejects(request(`${server.url}/healthz`), { code: /SELF_SIGNED|UNABLE_TO_VERIFY|DEPTH_ZERO/ }, 'a client that does not trust it is refused');
  const anonymous = await request(`${server.url}/collections`, { dispatcher });
  t.equal(anonymous.statusCode, 401);
  await anonymous.body.text();
  await (await request(`${server.url}/collections/comments`, { method: 'PUT', dispatcher, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{}' })).body.text();

  await writeFile(path.join(dir, 'in.ndjson'), Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `d${i}`, body: `comment ${i}` })).join('\n') + '\n');
  const common = ['load', 'in.ndjson', '--collection', 'comments', '--url', server.url, '--json', '--quiet'];
  const noCa = await run([...common, '--token', token], { cwd: dir });
  t.equal(noCa.code, 3, 'without --ca-file the load cannot connect');
  const noToken = await run([...common, '--ca-file', cert, '--restart'], { cwd: dir });
  t.equal(noToken.code, 3, 'without a token the server refuses the load');
  t.match(noToken.stderr, /401 DOCKET_ERR_AUTH_REQUIRED/);
  const loaded = await run([...common, '--ca-file', cert, '--restart'], { cwd: dir, env: { DOCKET_TOKEN: token } });
  t.equal(loaded.code, 0, loaded.stderr);
  t.match(JSON.parse(loaded.stdout), { lines: 50, stored: 50, failed: 0, complete: true });
  t.notOk(loaded.stderr.includes(secret) || loaded.stdout.includes(secret), 'the loader prints no secret');

  const listed = await request(`${server.url}/collections/comments/docs?limit=1000`, { dispatcher, headers: { authorization: `Bearer ${token}` } });
  t.equal((JSON.parse(await listed.body.text()) as { documents: unknown[] }).documents.length, 50, 'every line stored');

  // docket backup over HTTPS: an admin token and the CA; a readwrite token is refused.
  const forbidden = await run(['backup', '--url', server.url, '--ca-file', cert, '--token', token, '--quiet', path.join(dir, 'backup-rw')]);
  t.equal(forbidden.code, 3, 'a backup with a readwrite token fails');
  t.match(forbidden.stderr, /403 DOCKET_ERR_AUTH_FORBIDDEN/);
  const backedUp = await run(['backup', '--url', server.url, '--ca-file', cert, '--json', '--quiet', path.join(dir, 'backup')], { env: { DOCKET_TOKEN: admin } });
  t.equal(backedUp.code, 0, backedUp.stderr);
  t.match(JSON.parse(backedUp.stdout), { tsn: 2 });
  t.ok(existsSync(path.join(dir, 'backup', 'CHECKPOINT')), 'the backup is complete');
  t.notOk(backedUp.stderr.includes(admin.split('_').slice(2).join('_')), 'docket backup prints no secret');

  // Revoked with the CLI while the server runs: refused from the next request on.
  const id = token.split('_')[1]!;
  const revoked = await run(['token', 'revoke', id, '--data-dir', dataDir]);
  t.equal(revoked.code, 0, revoked.stderr);
  const after = await request(`${server.url}/collections`, { dispatcher, headers: { authorization: `Bearer ${token}` } });
  t.equal(after.statusCode, 401, 'revoked');
  await after.body.text();
  t.equal((await run(['token', 'revoke', id, '--data-dir', dataDir])).code, 1, 'revoking an unknown id');

  await server.stop();
  const log = server.logs.join('');
  t.match(log, /"res":\{"statusCode":401\}/, 'refused requests are in the log');
  t.match(log, /"url":"\/collections\/comments\/bulk\?id_field=id"/, 'the loader\'s requests are in the log');
  t.match(log, /docket ready at https:\/\/127\.0\.0\.1/);
  for (const secretOf of [token, admin]) t.notOk(log.includes(secretOf.split('_').slice(2).join('_')), 'no token secret in the server log');
});
