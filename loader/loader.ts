// `docket load`: streams NDJSON inputs to a server's bulk endpoint. Bodies of whole lines go
// out on one HTTP/1.1 connection with several pipelined requests in flight, so the server
// always has the next body waiting, yet applies them in input order (a later line for an id
// wins, as in the file). Each acknowledged response moves the checkpoint; a failure of the
// server or the connection ends the load with the checkpoint at the last acknowledged line.
//
//   inputs → decompress → Batcher (bodies of whole lines) → pipelined POSTs → acknowledgements
//                                                                       ↓ in order
//                                             counts, line errors, checkpoint (fsynced)

import type { Readable } from 'node:stream';
import { Client } from 'undici';
import { Batcher, type Batch } from './batcher.js';
import { writeCheckpoint, type Checkpoint, type LoadCounts, type LoadPosition } from './checkpoint.js';
import { openInput, type InputIdentity } from './input.js';

export interface LoadOptions {
  /** The server, e.g. http://127.0.0.1:8080 or https://…. */
  readonly url: string;
  /** An access token, sent as `Authorization: Bearer …` (never printed). */
  readonly token?: string | undefined;
  /** PEM certificates to trust for an https server (a self-signed one, a private CA). */
  readonly ca?: Buffer | undefined;
  readonly collection: string;
  readonly idField: string;
  readonly inputs: readonly InputIdentity[];
  readonly checkpointPath: string;
  /** Where to start, and the counts so far; a new load starts at input 0, line 0. */
  readonly position: LoadPosition;
  readonly counts: LoadCounts;
  readonly batchLines: number;
  readonly batchBytes: number;
  /** Requests sent and not yet answered, at most. */
  readonly inFlight: number;
  readonly lineBytesMax: number;
  /** Stops reading; what is in flight is still acknowledged and checkpointed. */
  readonly signal?: AbortSignal;
  readonly onLineError: (error: LineError) => void;
  /** What `-` reads (process.stdin unless a test gives another stream). */
  readonly stdin?: Readable;
}

export interface LineError {
  /** The input as given (`-` for standard input). */
  readonly input: string;
  readonly line: number;
  readonly code: string;
  readonly message: string;
}

/** A load that could not go on: the server refused a request, or could not be reached. */
export class LoadFailed extends Error {}

export interface LoadProgress {
  readonly counts: LoadCounts;
  /** Input bytes (as on disk, compressed or not) read, over all inputs, up to the last acknowledged line. */
  readonly fileBytesAcknowledged: number;
  /** Sum of the input files' sizes; null when an input is standard input. */
  readonly fileBytesTotal: number | null;
}

export interface LoadResult {
  readonly counts: LoadCounts;
  /** The counts of this run alone (a resumed load has done some before). */
  readonly countsThisRun: LoadCounts;
  readonly complete: boolean;
  readonly interrupted: boolean;
}

interface ServerReport {
  readonly lines: number;
  readonly stored: number;
  readonly failed: number;
  readonly errors: readonly { line: number; code: string; message: string }[];
  readonly errorsTruncated: boolean;
}

const NOTHING: ServerReport = { lines: 0, stored: 0, failed: 0, errors: [], errorsTruncated: false };
const COLLECTION_WAIT_MS_MAX = 60_000;
const COLLECTION_RETRY_MS = 500;

export class Loader {
  private counts: LoadCounts;
  private position: LoadPosition;
  private readonly client: Client;
  private readonly authorization: Record<string, string>;
  private readonly pending: { batch: Batch; response: Promise<ServerReport>; fileBytesRead: number }[] = [];
  private fileBytesDone = 0; // Of inputs read to their end.
  private current: (() => number) | undefined;
  /** Input bytes read when the last acknowledged body was cut: progress counts what is stored. */
  private fileBytesAcknowledged = 0;

  constructor(private readonly options: LoadOptions) {
    this.counts = options.counts;
    this.position = options.position;
    this.client = new Client(new URL(options.url).origin, { pipelining: options.inFlight, headersTimeout: 0, bodyTimeout: 0, ...(options.ca ? { connect: { ca: options.ca } } : {}) });
    this.authorization = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    for (const input of options.inputs.slice(0, options.position.input)) this.fileBytesDone += input.sizeBytes ?? 0;
    this.fileBytesAcknowledged = this.fileBytesDone;
  }

  progress(): LoadProgress {
    const sizes = this.options.inputs.map((input) => input.sizeBytes);
    const total = sizes.includes(null) ? null : sizes.reduce<number>((sum, size) => sum + size!, 0);
    return { counts: this.counts, fileBytesAcknowledged: this.fileBytesAcknowledged, fileBytesTotal: total };
  }

  async run(): Promise<LoadResult> {
    const before = this.counts;
    try {
      await this.ensureCollection();
      const interrupted = !(await this.readInputs());
      await this.drain();
      const complete = !interrupted;
      await this.checkpoint(complete);
      return { counts: this.counts, countsThisRun: subtract(this.counts, before), complete, interrupted };
    } catch (error) {
      await Promise.allSettled(this.pending.splice(0).map((pending) => pending.response));
      throw error;
    } finally {
      await this.client.close().catch(() => undefined);
    }
  }

  /** Reads every input from the position on; false when the signal stopped it. */
  private async readInputs(): Promise<boolean> {
    const { inputs, signal } = this.options;
    for (let index = this.position.input; index < inputs.length; index++) {
      const resume = index === this.position.input;
      const batcher = new Batcher({
        input: index,
        lineBefore: resume ? this.position.line : 0,
        offsetBefore: resume ? this.position.offset : 0,
        batchLines: this.options.batchLines,
        batchBytes: this.options.batchBytes,
        lineBytesMax: this.options.lineBytesMax,
      });
      const opened = await openInput(inputs[index]!, resume ? this.position.offset : 0, this.options.stdin);
      this.current = opened.fileBytesRead;
      try {
        for await (const chunk of opened.stream as AsyncIterable<Buffer>) {
          for (const batch of batcher.push(chunk)) await this.send(batch);
          if (signal?.aborted) {
            opened.close();
            return false;
          }
        }
        await opened.done;
      } catch (error) {
        opened.close();
        throw error instanceof LoadFailed ? error : new LoadFailed(`reading ${inputs[index]!.path}: ${(error as Error).message}`);
      }
      this.fileBytesDone += inputs[index]!.sizeBytes ?? 0;
      this.current = undefined;
      await this.send(batcher.end());
    }
    return true;
  }

  /** Sends a body; first waits for the oldest answer while `inFlight` are unanswered. */
  private async send(batch: Batch): Promise<void> {
    while (this.pending.length >= this.options.inFlight) await this.acknowledgeOldest();
    const response = batch.lines > 0 ? this.post(batch.body) : Promise.resolve(NOTHING);
    response.catch(() => undefined); // Observed in order by acknowledgeOldest.
    this.pending.push({ batch, response, fileBytesRead: this.fileBytesDone + (batch.last ? 0 : (this.current?.() ?? 0)) });
  }

  private async drain(): Promise<void> {
    while (this.pending.length > 0) await this.acknowledgeOldest();
  }

  /** Takes the oldest answer: counts it, reports its line errors, moves the checkpoint. */
  private async acknowledgeOldest(): Promise<void> {
    const { batch, response, fileBytesRead } = this.pending.shift()!;
    const report = await response;
    this.fileBytesAcknowledged = fileBytesRead;
    const name = this.options.inputs[batch.input]!.path;
    for (const error of batch.errors) this.options.onLineError({ input: name, line: error.line, code: 'DOCKET_ERR_LIMIT_EXCEEDED', message: error.message });
    for (const error of report.errors) this.options.onLineError({ input: name, line: batch.firstLine + error.line - 1, code: error.code, message: error.message });
    const undetailed = report.failed - report.errors.length;
    if (undetailed > 0) {
      const last = batch.firstLine + batch.lines - 1;
      this.options.onLineError({ input: name, line: batch.firstLine, code: 'DOCKET_ERR_BODY_INVALID', message: `${undetailed} more failed lines in lines ${batch.firstLine}–${last} (the server details at most ${report.errors.length} a request)` });
    }
    const { lines, stored, failed, bytes } = this.counts;
    this.counts = {
      lines: lines + report.lines + batch.errors.length,
      stored: stored + report.stored,
      failed: failed + report.failed + batch.errors.length,
      bytes: bytes + batch.body.length,
    };
    this.position = batch.last ? { input: batch.input + 1, line: 0, offset: 0 } : { input: batch.input, line: batch.firstLine + batch.lines - 1, offset: batch.endOffset };
    await this.checkpoint(false);
  }

  private async post(body: Buffer): Promise<ServerReport> {
    const { collection, idField } = this.options;
    const path = `/collections/${encodeURIComponent(collection)}/bulk?id_field=${encodeURIComponent(idField)}`;
    let response;
    try {
      // idempotent + non-blocking: undici pipelines it behind the requests in flight.
      response = await this.client.request({ method: 'POST', path, body, headers: { 'content-type': 'application/x-ndjson', ...this.authorization }, idempotent: true, blocking: false });
    } catch (error) {
      throw new LoadFailed(`the server at ${this.options.url} could not be reached: ${describe(error)}`);
    }
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new LoadFailed(`the server refused a bulk request: ${response.statusCode} ${errorText(text)}`);
    try {
      return JSON.parse(text) as ServerReport;
    } catch {
      throw new LoadFailed(`the server answered a bulk request with something other than a report: ${text.slice(0, 200)}`);
    }
  }

  /** Creates the collection unless it exists; waits while the server is starting. */
  private async ensureCollection(): Promise<void> {
    const path = `/collections/${encodeURIComponent(this.options.collection)}`;
    const deadline = Date.now() + COLLECTION_WAIT_MS_MAX;
    for (;;) {
      let response;
      try {
        response = await this.client.request({ method: 'GET', path, headers: this.authorization });
      } catch (error) {
        throw new LoadFailed(`the server at ${this.options.url} could not be reached: ${describe(error)} (is \`docket serve\` running?)`);
      }
      const text = await response.body.text();
      if (response.statusCode === 200) return;
      if (response.statusCode === 404) {
        const created = await this.client.request({ method: 'PUT', path, body: '{}', headers: { 'content-type': 'application/json', ...this.authorization } });
        const answer = await created.body.text();
        if (created.statusCode === 200 || created.statusCode === 201) return;
        throw new LoadFailed(`the collection could not be created: ${created.statusCode} ${errorText(answer)}`);
      }
      if (response.statusCode !== 503 || Date.now() > deadline) throw new LoadFailed(`the collection could not be read: ${response.statusCode} ${errorText(text)}`);
      await new Promise((resolve) => setTimeout(resolve, COLLECTION_RETRY_MS));
    }
  }

  private async checkpoint(complete: boolean): Promise<void> {
    const { collection, idField, inputs, checkpointPath } = this.options;
    const checkpoint: Checkpoint = { format: 'docket-load-checkpoint/1', collection, idField, inputs, position: this.position, counts: this.counts, complete };
    await writeCheckpoint(checkpointPath, checkpoint);
  }
}

function subtract(a: LoadCounts, b: LoadCounts): LoadCounts {
  return { lines: a.lines - b.lines, stored: a.stored - b.stored, failed: a.failed - b.failed, bytes: a.bytes - b.bytes };
}

function describe(error: unknown): string {
  const code = (error as { code?: string }).code;
  return `${(error as Error).message}${code ? ` (${code})` : ''}`;
}

/** The server's error message, or the start of whatever it sent. */
function errorText(text: string): string {
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    if (body.code && body.message) return `${body.code}: ${body.message}`;
  } catch {
    // Not JSON: shown as it is.
  }
  return text.slice(0, 200);
}
