// `docket load FILE... --collection NAME`: the command line around the Loader. It checks the
// arguments and the inputs before anything is sent, decides where the load starts (a fresh
// start, or --resume from the checkpoint), shows progress and line errors, prints the summary,
// and returns the exit status.

import { createWriteStream, type WriteStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { serverConnectionOf, UsageError } from './server-url.js';
import * as limits from '../src/limits.js';
import { CheckpointError, defaultCheckpointPath, readCheckpoint, resumeMismatch, type LoadCounts, type LoadPosition } from './checkpoint.js';
import { identify, STDIN, type InputIdentity } from './input.js';
import { LoadFailed, Loader, type LineError } from './loader.js';
import { showProgress, summarize } from './progress.js';

/** Exit statuses. */
export const EXIT = { OK: 0, LINES_FAILED: 1, USAGE: 2, FAILED: 3, INTERRUPTED: 130 } as const;

export const LOAD_HELP = `Usage: docket load FILE... --collection NAME [options]

Loads NDJSON (one JSON object a line) into a collection through the server's bulk endpoint.
FILE may be plain, .gz or .zst (Zstandard, as the Pushshift dumps), or - for standard input.
The collection is created if it does not exist. Bad lines are reported with their file and
line number and counted; the load goes on. A checkpoint records the last line the server
acknowledged, so an interrupted load continues with --resume, sending nothing twice but the
requests that were in flight.

Options:
  --collection NAME        the collection to load into (required)
  --url URL                the server (default http://127.0.0.1:8080; https:// for TLS)
  --token TOKEN            an access token (readwrite, or admin to create the collection);
                           default the DOCKET_TOKEN environment variable, which keeps it
                           out of the process list
  --ca-file PATH           PEM certificates to trust for an https:// server (self-signed
                           or a private CA)
  --id-field NAME          the field holding each document's id (default id); a line
                           without it gets a generated id
  --resume                 continue the load recorded in the checkpoint
  --restart                start over even if the checkpoint records an unfinished load
  --checkpoint PATH        the checkpoint file (default ./docket-load-NAME.checkpoint.json)
  --errors PATH            write every line error to PATH as NDJSON
  --batch-lines N          lines per bulk request (default ${limits.LOAD_BATCH_LINES_DEFAULT})
  --batch-bytes N          bytes per bulk request, about (default ${limits.LOAD_BATCH_BYTES_DEFAULT})
  --in-flight N            pipelined requests awaiting an answer (default ${limits.LOAD_IN_FLIGHT_DEFAULT})
  --line-bytes-max N       longest line the loader holds (default ${limits.LOAD_LINE_BYTES_MAX_DEFAULT})
  --progress-interval-ms N a progress line this often when not on a terminal (default 10000)
  --quiet                  no progress output
  --json                   print the summary as one JSON object on standard output

Exit status: 0 every line stored, 1 some lines failed, 2 bad arguments or inputs,
3 the load stopped (server unreachable or refusing; resume it), 130 interrupted (resume it).
`;


interface Arguments {
  readonly files: string[];
  readonly collection: string;
  readonly url: string;
  readonly token: string | undefined;
  readonly ca: Buffer | undefined;
  readonly idField: string;
  readonly resume: boolean;
  readonly restart: boolean;
  readonly checkpointPath: string;
  readonly errorsPath: string | undefined;
  readonly batchLines: number;
  readonly batchBytes: number;
  readonly inFlight: number;
  readonly lineBytesMax: number;
  readonly progressIntervalMs: number;
  readonly quiet: boolean;
  readonly json: boolean;
}

/** Runs `docket load` with `argv` (after the command name); resolves with the exit status. */
export async function load(argv: string[]): Promise<number> {
  let args: Arguments;
  let inputs: InputIdentity[];
  let start: { position: LoadPosition; counts: LoadCounts } | 'complete';
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(LOAD_HELP);
      return EXIT.OK;
    }
    args = parseArguments(argv, process.env);
    inputs = await Promise.all(args.files.map((file) => identify(file).catch((error: Error) => Promise.reject(new UsageError(`cannot read ${file}: ${error.message}`)))));
    start = await startingPoint(args, inputs);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof CheckpointError)) throw error;
    process.stderr.write(`docket load: ${error.message}\n`);
    return EXIT.USAGE;
  }
  if (start === 'complete') {
    process.stderr.write(`docket load: the checkpoint ${args.checkpointPath} records this load as complete; nothing to do\n`);
    return EXIT.OK;
  }
  return run(args, inputs, start.position, start.counts);
}

async function run(args: Arguments, inputs: InputIdentity[], position: LoadPosition, counts: LoadCounts): Promise<number> {
  const interrupt = new AbortController();
  const onSignal = (): void => {
    if (interrupt.signal.aborted) process.exit(EXIT.INTERRUPTED); // A second Ctrl-C: stop now.
    process.stderr.write('\ndocket load: interrupted; waiting for the requests in flight (Ctrl-C again to stop at once)\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const errors = new LineErrorReport(args.errorsPath);
  const loader = new Loader({ ...args, inputs, position, counts, signal: interrupt.signal, onLineError: (error) => errors.add(error) });
  const started = performance.now();
  const stopProgress = showProgress(() => loader.progress(), { stream: process.stderr, intervalMs: args.progressIntervalMs, quiet: args.quiet });
  try {
    const result = await loader.run();
    stopProgress();
    const seconds = (performance.now() - started) / 1000;
    errors.finish();
    process.stderr.write(`docket load: ${result.interrupted ? 'interrupted' : 'done'}. ${summarize(result.counts, result.countsThisRun, seconds)}\n`);
    if (result.interrupted) process.stderr.write(`docket load: run the same command with --resume to continue (checkpoint: ${args.checkpointPath})\n`);
    if (args.json) process.stdout.write(JSON.stringify(jsonSummary(result.counts, result.countsThisRun, seconds, result.complete)) + '\n');
    if (result.interrupted) return EXIT.INTERRUPTED;
    return result.counts.failed > 0 ? EXIT.LINES_FAILED : EXIT.OK;
  } catch (error) {
    stopProgress();
    errors.finish();
    if (!(error instanceof LoadFailed)) throw error;
    process.stderr.write(`docket load: stopped: ${error.message}\ndocket load: what the server acknowledged is recorded in ${args.checkpointPath}; run the same command with --resume to continue\n`);
    return EXIT.FAILED;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function parseArguments(argv: string[], environment: NodeJS.ProcessEnv): Arguments {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        collection: { type: 'string' },
        url: { type: 'string', default: 'http://127.0.0.1:8080' },
        token: { type: 'string' },
        'ca-file': { type: 'string' },
        'id-field': { type: 'string', default: 'id' },
        resume: { type: 'boolean', default: false },
        restart: { type: 'boolean', default: false },
        checkpoint: { type: 'string' },
        errors: { type: 'string' },
        'batch-lines': { type: 'string', default: String(limits.LOAD_BATCH_LINES_DEFAULT) },
        'batch-bytes': { type: 'string', default: String(limits.LOAD_BATCH_BYTES_DEFAULT) },
        'in-flight': { type: 'string', default: String(limits.LOAD_IN_FLIGHT_DEFAULT) },
        'line-bytes-max': { type: 'string', default: String(limits.LOAD_LINE_BYTES_MAX_DEFAULT) },
        'progress-interval-ms': { type: 'string', default: '10000' },
        quiet: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message} (docket load --help lists the options)`);
  }
  const { values, positionals } = parsed;
  if (positionals.length === 0) throw new UsageError('no input: name one or more files, or - for standard input');
  if (positionals.filter((file) => file === STDIN).length > 1) throw new UsageError('standard input (-) can be named once');
  const collection = values.collection;
  if (collection === undefined) throw new UsageError('--collection NAME is required');
  if (!limits.COLLECTION_NAME_PATTERN.test(collection)) throw new UsageError(`--collection: ${JSON.stringify(collection)} is not a collection name (${limits.COLLECTION_NAME_PATTERN.source})`);
  if (values.resume && values.restart) throw new UsageError('--resume and --restart exclude each other');
  const { url, token, ca } = serverConnectionOf(values, environment);
  return {
    files: positionals,
    collection,
    url,
    token,
    ca,
    idField: values['id-field'],
    resume: values.resume,
    restart: values.restart,
    checkpointPath: values.checkpoint ?? defaultCheckpointPath(collection),
    errorsPath: values.errors,
    batchLines: positiveInteger('--batch-lines', values['batch-lines']),
    batchBytes: positiveInteger('--batch-bytes', values['batch-bytes']),
    inFlight: positiveInteger('--in-flight', values['in-flight']),
    lineBytesMax: positiveInteger('--line-bytes-max', values['line-bytes-max']),
    progressIntervalMs: positiveInteger('--progress-interval-ms', values['progress-interval-ms']),
    quiet: values.quiet,
    json: values.json,
  };
}

function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) throw new UsageError(`${name} must be a positive integer, not ${JSON.stringify(text)}`);
  return value;
}

/** Where this run starts: from scratch, from the checkpoint (--resume), or nowhere (done). */
async function startingPoint(args: Arguments, inputs: InputIdentity[]): Promise<{ position: LoadPosition; counts: LoadCounts } | 'complete'> {
  const fresh = { position: { input: 0, line: 0, offset: 0 }, counts: { lines: 0, stored: 0, failed: 0, bytes: 0 } };
  const checkpoint = args.restart ? undefined : await readCheckpoint(args.checkpointPath);
  if (!args.resume) {
    if (checkpoint && !checkpoint.complete && resumeMismatch(checkpoint, args.collection, args.idField, inputs) === undefined) {
      throw new UsageError(`${args.checkpointPath} records an unfinished load of these inputs (through line ${checkpoint.position.line} of input ${checkpoint.position.input + 1}): pass --resume to continue it, or --restart to start over`);
    }
    return fresh;
  }
  if (!checkpoint) throw new UsageError(`--resume: there is no checkpoint at ${args.checkpointPath}`);
  const mismatch = resumeMismatch(checkpoint, args.collection, args.idField, inputs);
  if (mismatch) throw new UsageError(`--resume: the checkpoint ${args.checkpointPath} does not match this load: ${mismatch}`);
  return checkpoint.complete ? 'complete' : { position: checkpoint.position, counts: checkpoint.counts };
}

/** What `docket load --json` prints: the counts of the whole load, and this run's. */
export interface LoadSummary extends LoadCounts {
  readonly complete: boolean;
  readonly thisRun: LoadCounts;
  readonly seconds: number;
  readonly documentsPerSecond: number;
  /** 10^6 bytes of input a second. */
  readonly megabytesPerSecond: number;
}

function jsonSummary(counts: LoadCounts, thisRun: LoadCounts, seconds: number, complete: boolean): LoadSummary {
  return {
    ...counts,
    complete,
    thisRun,
    seconds,
    documentsPerSecond: thisRun.lines / Math.max(seconds, 1e-3),
    megabytesPerSecond: thisRun.bytes / 1e6 / Math.max(seconds, 1e-3),
  };
}

/** Line errors: the first few on standard error, every one in the --errors file. */
class LineErrorReport {
  private shown = 0;
  private readonly file: WriteStream | undefined;

  constructor(private readonly path: string | undefined) {
    this.file = path === undefined ? undefined : createWriteStream(path, { flags: 'a' });
  }

  add(error: LineError): void {
    this.file?.write(JSON.stringify(error) + '\n');
    if (this.shown < limits.LOAD_ERRORS_SHOWN_MAX) process.stderr.write(`${error.input}:${error.line}: ${error.code}: ${error.message}\n`);
    else if (this.shown === limits.LOAD_ERRORS_SHOWN_MAX) process.stderr.write(`docket load: further line errors are counted but not shown${this.path ? ` (all are in ${this.path})` : '; --errors FILE records every one'}\n`);
    this.shown++;
  }

  finish(): void {
    this.file?.end();
  }
}
