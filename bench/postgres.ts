// PostgreSQL for the benchmarks that compare Docket with it (bench/peers.ts, bench/query.ts): its
// server binaries (Debian's packages, installed with apt-get if initdb is missing), a private
// cluster run as the postgres OS user on a free loopback port, COPY scripts of the dataset for
// psql, and a small client of PostgreSQL's wire protocol (protocol 3.0, trust authentication,
// the extended query protocol with named prepared statements, text results): what a driver does
// per query, without a dependency.

import { spawn, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdir, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { batchesOf, freePort, HOST, idOf, lastLines, requireSuccess, run, Server, type Dataset, type Finished } from './common.js';

// ---- the binaries ----

/** PostgreSQL's server binaries, installing Debian's postgresql if initdb cannot be found. */
export async function ensurePostgres(): Promise<string> {
  const find = (): string | undefined => {
    // Debian keeps them off PATH, under /usr/lib/postgresql/<major>/bin: the newest wins.
    const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a)) : [];
    return versions.map((version) => path.join('/usr/lib/postgresql', version, 'bin')).find((dir) => existsSync(path.join(dir, 'initdb')));
  };
  const usable = (dir: string | undefined): dir is string => dir !== undefined && ['initdb', 'postgres', 'psql'].every((name) => existsSync(path.join(dir, name)));
  const found = find();
  if (usable(found)) return found;
  console.log('PostgreSQL not found: apt-get install -y postgresql ...');
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  const script = `${sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${sudo}apt-get install -y -qq postgresql`;
  const finished = await run('sh', ['-c', script]);
  const installed = find();
  if (!usable(installed)) throw new Error(`apt-get install postgresql failed (exit ${finished.code}): ${lastLines(finished, 3)}`);
  return installed;
}

/** The postgres OS user's uid and gid, from /etc/passwd. */
export function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.startsWith('postgres:'));
  if (!line) throw new Error('no postgres user in /etc/passwd (the postgresql package creates it)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

// ---- COPY scripts ----

/** COPY's text format: backslash, tab, newline and carriage return are escaped; nothing else is special. */
export const copyText = (text: string): string => text.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));

/**
 * psql scripts that load the dataset into `comments (id, doc)`: one `COPY ... FROM STDIN` (each
 * its own transaction) per `batch` lines, dealt round-robin to `sessions` files, run as that many
 * concurrent psql sessions. Written before any clock starts.
 */
export async function writeCopyScripts(dataset: Dataset, dir: string, sessions: number, batch: number): Promise<string[]> {
  const scripts = Array.from({ length: sessions }, (_, i) => path.join(dir, `postgres-copy-${i}.sql`));
  const outs = scripts.map((file) => createWriteStream(file));
  let index = 0;
  for await (const lines of batchesOf(dataset.file, batch)) {
    const rows = lines.map((line) => `${copyText(idOf(line))}\t${copyText(line)}\n`).join('');
    const out = outs[index++ % outs.length]!;
    if (!out.write(`COPY comments (id, doc) FROM STDIN;\n${rows}\\.\n`)) await once(out, 'drain');
  }
  await Promise.all(outs.map((out) => new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())))));
  return scripts;
}

// ---- a private cluster ----

export interface ClusterOptions {
  /** The cluster's directory (created; removed at stop). */
  readonly dir: string;
  readonly name: string;
  /** `-c name=value` settings for the server. */
  readonly settings: Readonly<Record<string, string>>;
}

/** A private cluster: initdb --no-sync, then postgres on a free port of HOST, as the postgres user. */
export class PostgresCluster {
  private constructor(
    readonly binDir: string,
    readonly dir: string,
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(options: ClusterOptions): Promise<PostgresCluster> {
    const binDir = await ensurePostgres();
    const owner = postgresUser();
    await rm(options.dir, { recursive: true, force: true });
    await mkdir(path.join(options.dir, 'socket'), { recursive: true });
    // The cluster's directory and its socket directory belong to the postgres user (initdb insists).
    await chown(options.dir, owner.uid, owner.gid);
    await chown(path.join(options.dir, 'socket'), owner.uid, owner.gid);
    const asPostgres: SpawnOptions = { uid: owner.uid, gid: owner.gid, cwd: options.dir };
    const dataDir = path.join(options.dir, 'data');
    // --no-sync: the cluster's creation is set-up, not measured.
    requireSuccess('initdb', await run(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'], asPostgres));
    const port = await freePort();
    const args = ['-D', dataDir, '-p', String(port), '-k', path.join(options.dir, 'socket'), '-c', `listen_addresses=${HOST}`];
    for (const [name, value] of Object.entries(options.settings)) args.push('-c', `${name}=${value}`);
    // SIGQUIT at exit: an immediate shutdown in which the postmaster takes its backends with it.
    const server = new Server(options.name, spawn(path.join(binDir, 'postgres'), args, { ...asPostgres, stdio: ['ignore', 'pipe', 'pipe'] }), port, 'SIGQUIT');
    const cluster = new PostgresCluster(binDir, options.dir, server, port);
    try {
      await cluster.waitUntilReady();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** psql against the cluster, stopping at the first error. */
  psql(extra: readonly string[]): Promise<Finished> {
    return run(path.join(this.binDir, 'psql'), ['-X', '-q', '-h', HOST, '-p', String(this.port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', ...extra]);
  }

  /** One statement through psql; its unaligned, tuples-only output. */
  async query(sql: string): Promise<string> {
    return requireSuccess(`psql -c ${JSON.stringify(sql)}`, await this.psql(['-At', '-c', sql])).stdout.trim();
  }

  /** A fast shutdown, then the directory is removed. */
  async stop(): Promise<void> {
    await this.server.stop(undefined, 'SIGINT');
    await rm(this.dir, { recursive: true, force: true });
  }

  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (!this.server.running) throw new Error(`${this.server.name}: postgres exited (${await this.server.exited}) before it was ready:\n${this.server.output()}`);
      if ((await this.psql(['-At', '-c', 'SELECT 1'])).code === 0) return;
      if (Date.now() > deadline) throw new Error(`${this.server.name}: not ready after 60 s:\n${this.server.output()}`);
      await sleep(100);
    }
  }
}

// ---- the wire protocol ----

/** A query's rows, each column as text (null for SQL NULL). */
export type Rows = (string | null)[][];

interface Pending {
  rows: Rows;
  error: string | undefined;
  resolve(rows: Rows): void;
  reject(error: Error): void;
}

/**
 * One connection speaking PostgreSQL's protocol 3.0, as user postgres with trust authentication.
 * Queries are sent one at a time per connection (the caller awaits each), as a driver's pool does.
 */
export class PgConnection {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly queue: Pending[] = [];
  private readonly prepared = new Set<string>();
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('PostgreSQL closed the connection')));
  }

  static async open(port: number, database = 'postgres'): Promise<PgConnection> {
    const socket = connect({ host: HOST, port });
    await once(socket, 'connect');
    const connection = new PgConnection(socket);
    const params = Buffer.from(`user\0postgres\0database\0${database}\0\0`, 'utf8');
    const startup = Buffer.alloc(8 + params.length);
    startup.writeInt32BE(startup.length, 0);
    startup.writeInt32BE(196608, 4); // 3.0
    params.copy(startup, 8);
    await connection.send(startup); // Answered by AuthenticationOk ... ReadyForQuery.
    return connection;
  }

  /** The simple query protocol: one or more statements, text results of the last. */
  simple(sql: string): Promise<Rows> {
    return this.send(message(0x51, cstring(sql)));
  }

  /** Runs the statement `sql` (prepared once per connection under `name`) with text parameters. */
  execute(name: string, sql: string, params: readonly string[]): Promise<Rows> {
    const parts: Buffer[] = [];
    if (!this.prepared.has(name)) {
      this.prepared.add(name);
      parts.push(message(0x50, Buffer.concat([cstring(name), cstring(sql), int16(0)]))); // Parse: parameter types inferred.
    }
    const values: Buffer[] = [int16(0), int16(params.length)]; // All parameters as text.
    for (const param of params) {
      const bytes = Buffer.from(param, 'utf8');
      values.push(int32(bytes.length), bytes);
    }
    values.push(int16(0)); // All results as text.
    parts.push(message(0x42, Buffer.concat([cstring(''), cstring(name), ...values]))); // Bind
    parts.push(message(0x45, Buffer.concat([cstring(''), int32(0)]))); // Execute, every row
    parts.push(message(0x53, Buffer.alloc(0))); // Sync
    return this.send(Buffer.concat(parts));
  }

  close(): void {
    this.socket.end(message(0x58, Buffer.alloc(0))); // Terminate
  }

  private send(bytes: Buffer): Promise<Rows> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.queue.push({ rows: [], error: undefined, resolve, reject });
      this.socket.write(bytes);
    });
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let at = 0;
    while (this.buffered.length - at >= 5) {
      const type = this.buffered[at]!;
      const length = this.buffered.readInt32BE(at + 1);
      if (this.buffered.length - at < 1 + length) break;
      this.handle(type, this.buffered.subarray(at + 5, at + 1 + length));
      at += 1 + length;
    }
    this.buffered = at === this.buffered.length ? Buffer.alloc(0) : this.buffered.subarray(at);
  }

  private handle(type: number, body: Buffer): void {
    const pending = this.queue[0];
    switch (type) {
      case 0x44: { // DataRow
        const columns = body.readInt16BE(0);
        const row: (string | null)[] = [];
        let at = 2;
        for (let i = 0; i < columns; i++) {
          const length = body.readInt32BE(at);
          at += 4;
          if (length < 0) row.push(null);
          else {
            row.push(body.toString('utf8', at, at + length));
            at += length;
          }
        }
        pending?.rows.push(row);
        return;
      }
      case 0x45: // ErrorResponse: fields of (code byte, text); M is the message.
        if (pending) pending.error = errorText(body);
        return;
      case 0x52: // Authentication: only AuthenticationOk (0) is spoken here.
        if (body.readInt32BE(0) !== 0) this.fail(new Error(`PostgreSQL asks for authentication method ${body.readInt32BE(0)}; the benchmark cluster uses trust`));
        return;
      case 0x5a: { // ReadyForQuery: the request is answered.
        this.queue.shift();
        if (!pending) return;
        if (pending.error !== undefined) pending.reject(new Error(`PostgreSQL: ${pending.error}`));
        else pending.resolve(pending.rows);
        return;
      }
      default: // ParseComplete, BindComplete, RowDescription, CommandComplete, ParameterStatus, BackendKeyData, notices ...
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.queue.splice(0)) pending.reject(error);
  }
}

function message(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

const cstring = (text: string): Buffer => Buffer.from(`${text}\0`, 'utf8');
const int16 = (value: number): Buffer => {
  const out = Buffer.alloc(2);
  out.writeInt16BE(value, 0);
  return out;
};
const int32 = (value: number): Buffer => {
  const out = Buffer.alloc(4);
  out.writeInt32BE(value, 0);
  return out;
};

function errorText(body: Buffer): string {
  const fields: string[] = [];
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = String.fromCharCode(body[at]!);
    const end = body.indexOf(0, at + 1);
    if (code === 'M' || code === 'C' || code === 'D') fields.push(body.toString('utf8', at + 1, end));
    at = end + 1;
  }
  return fields.join(' / ');
}
