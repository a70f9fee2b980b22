// `docket backup --url URL DIR`: streams a consistent online checkpoint from a running server
// (GET /admin/checkpoint) into DIR, checking every file's checksum, fsyncing each file and
// directory, and writing the CHECKPOINT marker last; `docket serve --data-dir DIR` then opens
// the copy. A backup cut short keeps CHECKPOINT-INCOMPLETE and refuses to open.

import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { serverConnectionOf, UsageError } from './server-url.js';
import { SingleBar } from 'cli-progress';
import { Agent, request } from 'undici';
import { RealFileSystem } from '../storage/index.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import { installCheckpoint } from '../src/checkpoint/stream.js';
import { INCOMPLETE_MARKER } from '../src/checkpoint/checkpoint.js';

/** Exit statuses. */
export const BACKUP_EXIT = { OK: 0, USAGE: 2, FAILED: 3 } as const;

export const BACKUP_HELP = `Usage: docket backup --url URL DIR [options]

Takes a consistent online backup of a running server into DIR (new or empty): the server
keeps serving reads and writes, and the backup holds every write acknowledged before it
began. Every file's checksum is checked and every file fsynced; the CHECKPOINT marker is
written last, so a backup cut short is recognisably incomplete (it keeps
${INCOMPLETE_MARKER}, and docket serve refuses to open it). Restore: stop nothing, copy DIR
where you want it, and run docket serve --data-dir DIR.

Options:
  --url URL                the server (default http://127.0.0.1:8080; https:// for TLS)
  --token TOKEN            an admin access token; default the DOCKET_TOKEN environment
                           variable, which keeps it out of the process list
  --ca-file PATH           PEM certificates to trust for an https:// server
  --flush                  have the server flush its memtables first: a backup with almost
                           no binlog, which opens at once (costs the server a flush)
  --progress-interval-ms N a progress line this often when not on a terminal (default 10000)
  --quiet                  no progress output
  --json                   print the summary as one JSON object on standard output

Exit status: 0 the backup is complete, 2 bad arguments or DIR not empty, 3 the backup
failed (server unreachable or refusing, stream corrupt or cut short, disk error).
`;


interface Arguments {
  readonly directory: string;
  readonly url: string;
  readonly token: string | undefined;
  readonly ca: Buffer | undefined;
  readonly flush: boolean;
  readonly progressIntervalMs: number;
  readonly quiet: boolean;
  readonly json: boolean;
}

/** Runs `docket backup` with `argv` (after the command name); resolves with the exit status. */
export async function backup(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(BACKUP_HELP);
    return BACKUP_EXIT.OK;
  }
  let args: Arguments;
  try {
    args = parseArguments(argv, process.env);
    await checkTarget(args.directory);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof DocketError)) throw error;
    process.stderr.write(`docket backup: ${error instanceof DocketError ? `${error.code}: ` : ''}${error.message}\n`);
    return BACKUP_EXIT.USAGE;
  }
  try {
    return await run(args);
  } catch (error) {
    const code = error instanceof DocketError ? `${error.code}: ` : '';
    process.stderr.write(`docket backup: failed: ${code}${(error as Error).message}\n`);
    process.stderr.write(`docket backup: ${args.directory} is incomplete and does not open; remove it and run the backup again\n`);
    return BACKUP_EXIT.FAILED;
  }
}

async function run(args: Arguments): Promise<number> {
  const dispatcher = new Agent({ headersTimeout: 0, bodyTimeout: 0, ...(args.ca ? { connect: { ca: args.ca } } : {}) });
  try {
    const started = performance.now();
    const response = await request(`${args.url}/admin/checkpoint${args.flush ? '?flush=true' : ''}`, {
      dispatcher,
      headers: args.token === undefined ? {} : { authorization: `Bearer ${args.token}` },
    });
    if (response.statusCode !== 200) throw await refusal(response.statusCode, await response.body.text());
    const totalBytes = Number(response.headers['content-length'] ?? 0);
    const progress = showProgress(args, totalBytes);
    let descriptor;
    try {
      descriptor = await installCheckpoint(response.body, { fileSystem: new RealFileSystem(), directory: args.directory }, ({ bytes }) => progress.update(bytes));
    } finally {
      progress.stop();
    }
    const seconds = (performance.now() - started) / 1000;
    const bytes = descriptor.files.reduce((sum, file) => sum + file.sizeBytes, 0);
    const summary = { directory: args.directory, tsn: descriptor.tsn, startedTsn: descriptor.startedTsn, files: descriptor.files.length, bytes, seconds, megabytesPerSecond: bytes / 1e6 / Math.max(seconds, 1e-3) };
    process.stderr.write(`docket backup: done. ${summary.files} files, ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s (${summary.megabytesPerSecond.toFixed(1)} MB/s); every transaction through TSN ${descriptor.tsn}. Restore: docket serve --data-dir ${args.directory}\n`);
    if (args.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    return BACKUP_EXIT.OK;
  } finally {
    await dispatcher.close();
  }
}

/** The server's coded error, as an error naming the status and code. */
async function refusal(statusCode: number, text: string): Promise<Error> {
  let detail = text.slice(0, 300);
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    detail = `${body.code ?? ''}: ${body.message ?? ''}`;
  } catch {
    // Not Docket's JSON error body: show the start of what came.
  }
  return new Error(`the server answered ${statusCode} ${detail}`);
}

/** DIR must be new or empty; refused before the server is asked for anything (installCheckpoint checks again). */
async function checkTarget(directory: string): Promise<void> {
  const fileSystem = new RealFileSystem();
  if ((await fileSystem.exists(directory)) && (await fileSystem.list(directory).catch(() => ['?'])).length > 0) {
    throw new DocketError(DocketErrorCode.CHECKPOINT_TARGET_NOT_EMPTY, `${directory} is not empty: a backup goes into a new or empty directory`);
  }
}

function parseArguments(argv: string[], environment: NodeJS.ProcessEnv): Arguments {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8080' },
        token: { type: 'string' },
        'ca-file': { type: 'string' },
        flush: { type: 'boolean', default: false },
        'progress-interval-ms': { type: 'string', default: '10000' },
        quiet: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message} (docket backup --help lists the options)`);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('name one directory to write the backup into');
  const { url, token, ca } = serverConnectionOf(values, environment);
  const interval = Number(values['progress-interval-ms']);
  if (!/^\d+$/.test(values['progress-interval-ms']) || !(interval >= 1)) throw new UsageError('--progress-interval-ms must be a positive integer');
  return { directory: path.resolve(positionals[0]!), url, token, ca, flush: values.flush, progressIntervalMs: interval, quiet: values.quiet, json: values.json };
}

/** A bar on a terminal, a line every interval otherwise, nothing with --quiet. */
function showProgress(args: Arguments, totalBytes: number): { update(bytes: number): void; stop(): void } {
  let bytes = 0;
  if (args.quiet) return { update: () => undefined, stop: () => undefined };
  const started = performance.now();
  const rate = (): string => (bytes / 1e6 / Math.max((performance.now() - started) / 1000, 1e-3)).toFixed(1);
  if (!process.stderr.isTTY) {
    const timer = setInterval(() => process.stderr.write(`docket backup: ${(bytes / 1e6).toFixed(1)} of ${(totalBytes / 1e6).toFixed(1)} MB, ${rate()} MB/s\n`), args.progressIntervalMs);
    return { update: (now) => void (bytes = now), stop: () => clearInterval(timer) };
  }
  const bar = new SingleBar({ stream: process.stderr, format: '{bar} {percentage}% | {mb} of {totalMb} MB | {rate} MB/s | ETA {eta_formatted}', hideCursor: true, barsize: 24 });
  bar.start(Math.max(totalBytes, 1), 0, { mb: '0.0', totalMb: (totalBytes / 1e6).toFixed(1), rate: '0.0' });
  return {
    update: (now) => {
      bytes = now;
      bar.update(now, { mb: (now / 1e6).toFixed(1), totalMb: (totalBytes / 1e6).toFixed(1), rate: rate() });
    },
    stop: () => bar.stop(),
  };
}
