// A real Docket server in a child process, for tests that need sockets, signals and crashes:
// `node dist/src/cli.js serve` on 127.0.0.1 and a free port. startServer resolves once the
// server logs that its store is open, and rejects with everything it printed if it exits first.
// NB: it runs the compiled dist/, which `npm test` rebuilds first; run `npm run build` by hand.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The compiled command line, found from this file's place in the repository. */
export const CLI_PATH = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

const READY_TIMEOUT_MS_DEFAULT = 30_000;

// Servers still running when the test process exits (a failed assertion, an exception) are
// killed rather than left behind holding a port and a data directory.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface ServerOptions {
  readonly dataDir: string;
  /** More `serve` flags, e.g. ['--sync', 'periodic']. Not --log-level: the ready line is at info. */
  readonly args?: readonly string[];
  /** More environment variables for the child (the parent's are inherited). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for the ready line before giving up. */
  readonly readyTimeoutMs?: number;
}

export interface RunningServer {
  /** http://127.0.0.1:PORT, without a trailing slash. */
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything the server printed so far, stdout and stderr interleaved as they arrived. */
  readonly logs: string[];
  /** The JSON (pino) lines of stdout so far, parsed, in order. */
  readonly records: LogRecord[];
  /**
   * Resolves with the first log record, already printed or yet to come, for which `matches`
   * is true (it sees each record once, in order); rejects if the server exits first or
   * nothing matches within `timeoutMs`.
   */
  waitForLog(matches: (record: LogRecord) => boolean, what: string, timeoutMs?: number): Promise<LogRecord>;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  /** SIGKILL: no shutdown at all, what a crash looks like. Waits for the exit. */
  kill(): Promise<number | string>;
}

/** One pino line: `msg`, and for request logs `reqId` with `req` (incoming) or `res` (completed). */
export interface LogRecord {
  readonly msg?: string;
  readonly reqId?: string;
  readonly req?: { readonly method?: string; readonly url?: string };
  readonly res?: { readonly statusCode?: number };
  readonly [field: string]: unknown;
}

const LOG_WAIT_MS_DEFAULT = 30_000;

export class ServerExitError extends Error {
  constructor(
    message: string,
    readonly logs: readonly string[],
  ) {
    super(`${message}\n--- server output ---\n${logs.join('')}`);
    this.name = 'ServerExitError';
  }
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  if (!existsSync(CLI_PATH)) throw new Error(`${CLI_PATH} is missing: run \`npm run build\` first`);
  const args = [CLI_PATH, 'serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', options.dataDir, '--log-level', 'info', ...(options.args ?? [])];
  const child = spawn(process.execPath, args, { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const logs: string[] = [];
  const records: LogRecord[] = [];
  const recordListeners = new Set<(record: LogRecord) => void>();
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve(code ?? signal ?? 'unknown');
    }),
  );
  let url: string | undefined;
  const ready = new Promise<string>((resolve, reject) => {
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      logs.push(chunk);
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        const record = recordOf(line);
        if (record !== undefined) {
          records.push(record);
          for (const listener of recordListeners) listener(record);
        }
        const address = typeof record?.address === 'string' ? record.address.replace(/\/$/, '') : undefined;
        if (address !== undefined && url === undefined) url = address;
        if (url !== undefined && line.includes('docket ready at')) resolve(url);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => logs.push(chunk));
    child.once('error', (error) => reject(new ServerExitError(`the server did not start: ${error.message}`, logs)));
    void exited.then((how) => reject(new ServerExitError(`the server exited (${how}) before it was ready`, logs)));
  });
  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS_DEFAULT;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ServerExitError(`the server was not ready within ${timeoutMs} ms`, logs)), timeoutMs);
  });
  try {
    await Promise.race([ready, timeout]);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const address = url!;
  const signal = async (name: NodeJS.Signals): Promise<number | string> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(name);
    return exited;
  };
  const waitForLog = (matches: (record: LogRecord) => boolean, what: string, timeoutMs = LOG_WAIT_MS_DEFAULT): Promise<LogRecord> => {
    const seen = records.find(matches);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = (): void => {
        recordListeners.delete(listener);
        clearTimeout(timer);
      };
      const listener = (record: LogRecord): void => {
        if (!matches(record)) return;
        done();
        resolve(record);
      };
      const timer = setTimeout(() => (done(), reject(new ServerExitError(`the server did not log ${what} within ${timeoutMs} ms`, logs))), timeoutMs);
      recordListeners.add(listener);
      void exited.then((how) => (done(), reject(new ServerExitError(`the server exited (${how}) before it logged ${what}`, logs))));
    });
  };
  return {
    url: address,
    port: Number(new URL(address).port),
    process: child,
    logs,
    records,
    waitForLog,
    exited,
    stop: (name = 'SIGTERM') => signal(name),
    kill: () => signal('SIGKILL'),
  };
}

/** A pino line, parsed; undefined for any other line. */
function recordOf(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const record = JSON.parse(line) as unknown;
    return typeof record === 'object' && record !== null ? (record as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** A test's temporary directory and the servers it starts there. */
export interface ServerGroup {
  readonly root: string;
  /** startServer, with the server killed at the test's teardown. */
  start(options: ServerOptions): Promise<RunningServer>;
}

/** A group whose servers are killed, then its directory removed, when the test ends. */
export function serverGroup(t: { teardown(fn: () => Promise<void>): void }, prefix: string): ServerGroup {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  const servers: RunningServer[] = [];
  t.teardown(async () => {
    for (const server of servers) await server.kill().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });
  return {
    root,
    async start(options) {
      const server = await startServer(options);
      servers.push(server);
      return server;
    },
  };
}
