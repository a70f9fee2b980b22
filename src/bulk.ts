// Bulk loads: a stream of NDJSON lines, one document each, into one collection. The body is
// read a chunk at a time with at most one partial line held, each line is checked on its own
// (a bad line is reported, never stored), and the good ones are written either in transactions
// of bounded size, at most BULK_BATCHES_IN_FLIGHT_MAX awaiting acknowledgement (non-atomic), or
// all in one transaction (atomic). No HTTP here: routes/bulk.ts hands in the request stream.
//
// Back-pressure: the body is pulled with read(); while the transactions in flight are at their
// bound nothing is read, the stream's buffer fills, and Node stops reading the socket.
//
// Order: a later line for an id wins, within a request and across requests. Every batch is
// registered with the store's BulkSequencer when it is cut, and goes to the store only once the
// earlier batches that write any of its ids have settled (the store does not promise to
// sequence concurrent transactions in call order). Requests pipelined on one connection are
// cut in order because the route starts cutting a request only after the previous one on that
// connection has cut its last line (options.previous).

import type { Readable } from 'node:stream';
import { DocketError, DocketErrorCode } from './errors.js';
import { fieldsOf, JsonText } from './documents/json-text.js';
import { limit } from './documents/validate.js';
import { generateId } from './documents/ids.js';
import * as limits from './limits.js';
import { PartialLine } from './partial-line.js';
import type { CheckedPut, DocumentStore } from './store.js';

export interface BulkOptions {
  readonly collection: string;
  /** The top-level field that holds a line's id; a line without it gets a generated id. */
  readonly idField: string;
  /** All lines in one transaction, or none stored if any fails. */
  readonly atomic: boolean;
  /** A longer line is a LIMIT_EXCEEDED line error; its bytes are skipped, never buffered. */
  readonly lineBytesMax: number;
  /** Aborted at shutdown: reading stops, what is in flight settles, the load ends UNAVAILABLE. */
  readonly signal?: AbortSignal;
  /** Settles when the load before this one on the same connection has cut its last line. */
  readonly previous?: Promise<void>;
  /** Called once this load has cut its last line (or failed): the next one may start cutting. */
  readonly onCut?: () => void;
}

export interface LineError {
  /** 1-based physical line, blank lines included. */
  readonly line: number;
  readonly code: DocketErrorCode;
  readonly message: string;
}

export interface BulkReport {
  /** Non-blank lines seen. */
  readonly lines: number;
  readonly stored: number;
  readonly failed: number;
  /** The highest TSN of a stored transaction; null when nothing was stored. */
  readonly tsn: number | null;
  /** The first BULK_ERRORS_MAX line errors. */
  readonly errors: LineError[];
  readonly errorsTruncated: boolean;
}

/** An atomic load refused because lines failed: the code and status are the first line's. */
export class BulkLinesFailed extends DocketError {
  constructor(
    first: LineError,
    readonly report: BulkReport,
  ) {
    const message = `${report.failed} of ${report.lines} lines failed, so nothing was stored; line ${first.line}: ${first.message}`;
    super(first.code, message);
  }
}

/** Codes that refuse one line; any other error ends the whole load. */
const LINE_CODES: ReadonlySet<string> = new Set([
  DocketErrorCode.BODY_INVALID,
  DocketErrorCode.LIMIT_EXCEEDED,
  DocketErrorCode.DOCUMENT_INVALID,
  DocketErrorCode.DOCUMENT_SCHEMA,
  DocketErrorCode.ID_INVALID,
  DocketErrorCode.FIELD_NAME_INVALID,
  DocketErrorCode.DOCUMENT_FIELD_DUPLICATE,
]);

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const EMPTY = Buffer.alloc(0);

/** A completed line: its bytes without the newline and a trailing CR, or too long to hold. */
export type Line = { readonly number: number; readonly bytes: Buffer } | { readonly number: number; readonly tooLong: true };

/**
 * Splits a byte stream into lines on `\n`. Invariant: it holds at most one partial line, of at
 * most lineBytesMax + 1 bytes (room for a `\r`); past that the line is marked too long and the
 * rest of it is dropped as it arrives.
 */
export class LineSplitter {
  private readonly partial: PartialLine;
  private number = 0;

  constructor(private readonly lineBytesMax: number) {
    this.partial = new PartialLine(lineBytesMax + 1);
  }

  /** The lines this chunk completes. */
  push(chunk: Buffer): Line[] {
    const lines: Line[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; start = end + 1, end = chunk.indexOf(NEWLINE, start)) {
      lines.push(this.complete(chunk.subarray(start, end)));
    }
    this.partial.hold(chunk.subarray(start));
    return lines;
  }

  /** The last line, when the stream does not end with a newline. */
  end(): Line[] {
    return this.partial.empty ? [] : [this.complete(EMPTY)];
  }

  private complete(tail: Buffer): Line {
    const number = ++this.number;
    const tooLong = this.partial.tooLong || this.partial.bytes + tail.length > this.lineBytesMax + 1;
    const held = this.partial.bytes;
    const parts = this.partial.take();
    let bytes = tooLong ? EMPTY : held === 0 ? tail : Buffer.concat([...parts, tail]);
    if (bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN) bytes = bytes.subarray(0, -1);
    return tooLong || bytes.length > this.lineBytesMax ? { number, tooLong: true } : { number, bytes };
  }
}

/**
 * Loads the NDJSON `body` into `options.collection`. Resolves with the report; rejects with a
 * DocketError when the load as a whole is refused (the collection is gone, the store refused
 * a transaction, the body broke off, an atomic load over its bounds or with a failed line,
 * which is BulkLinesFailed). Transactions acknowledged before a rejection stay stored.
 */
export async function bulkLoad(store: DocumentStore, body: Readable, options: BulkOptions): Promise<BulkReport> {
  const onError = (): void => undefined; // Seen through body.errored; never an uncaught 'error'.
  body.on('error', onError);
  let cut = false;
  const endCutting = (): void => {
    if (!cut) options.onCut?.();
    cut = true;
  };
  let load: BulkLoad | undefined;
  try {
    await options.previous;
    store.collectionInfo(options.collection); // COLLECTION_NOT_FOUND before reading anything.
    load = new BulkLoad(store, options, sequencerOf(store));
    const splitter = new LineSplitter(options.lineBytesMax);
    for (let chunk = await readChunk(body, options.signal); chunk !== null; chunk = await readChunk(body, options.signal)) {
      for (const line of splitter.push(chunk)) await load.line(line);
    }
    for (const line of splitter.end()) await load.line(line);
    load.cutLast();
    endCutting();
    return await load.finish();
  } catch (error) {
    endCutting();
    await load?.settle();
    throw error;
  } finally {
    body.off('error', onError);
  }
}

interface PendingBatch {
  /** Collection-qualified ids (see key()). */
  readonly ids: ReadonlySet<string>;
  /** Settles when the store acknowledges or refuses the batch; its rejection is always observed. */
  readonly done: Promise<void>;
}

/**
 * The bulk batches of one store that are cut and not yet settled, in the order they were cut.
 * A batch waits for the earlier ones that write any of its documents.
 */
export class BulkSequencer {
  private readonly pending = new Set<PendingBatch>();

  /** Registers a batch now; `run` starts once every earlier overlapping batch has settled. */
  add(ids: ReadonlySet<string>, run: () => Promise<void>): PendingBatch {
    const earlier = [...this.pending].filter((batch) => overlaps(batch.ids, ids)).map((batch) => batch.done.catch(() => undefined));
    const done = (earlier.length === 0 ? run() : Promise.all(earlier).then(run)).finally(() => this.pending.delete(batch));
    const batch: PendingBatch = { ids, done };
    done.catch(() => undefined); // Observed by the load that cut it.
    this.pending.add(batch);
    return batch;
  }
}

const sequencers = new WeakMap<DocumentStore, BulkSequencer>();

function sequencerOf(store: DocumentStore): BulkSequencer {
  let sequencer = sequencers.get(store);
  if (!sequencer) sequencers.set(store, (sequencer = new BulkSequencer()));
  return sequencer;
}

class BulkLoad {
  private lines = 0;
  private stored = 0;
  private failed = 0;
  private tsn: number | null = null;
  private readonly errors: LineError[] = [];
  private operations: CheckedPut[] = [];
  private ids = new Set<string>();
  private sizeBytes = 0;
  private readonly inFlight: PendingBatch[] = [];

  constructor(
    private readonly store: DocumentStore,
    private readonly options: BulkOptions,
    private readonly sequencer: BulkSequencer,
  ) {}

  async line(line: Line): Promise<void> {
    if ('bytes' in line && isBlank(line.bytes)) return;
    this.lines++;
    if (this.options.atomic && this.lines > limits.BATCH_OPERATIONS_MAX) throw limit(`an atomic bulk load holds at most ${limits.BATCH_OPERATIONS_MAX} lines`);
    let put: CheckedPut;
    try {
      put = this.parse(line);
    } catch (error) {
      if (!(error instanceof DocketError) || !LINE_CODES.has(error.code)) throw error;
      this.refuse(line.number, error);
      return;
    }
    if (this.options.atomic) this.hold(put);
    else await this.add(put);
  }

  /** The line as a put, checked as the store would check it; throws the line's error. */
  private parse(line: Line): CheckedPut {
    const what = `line ${line.number}`;
    if (!('bytes' in line)) throw limit(`${what} is longer than ${this.options.lineBytesMax} bytes`);
    const document = new JsonText(line.bytes, what);
    const fields = fieldsOf(document, `${what} is not a JSON object`);
    const { collection, idField } = this.options;
    const at = fields.names.indexOf(idField);
    const id = at < 0 ? generateId() : idOf(fields.values[at]!, what, idField);
    return this.store.checkPut(collection, id, document, fields);
  }

  private refuse(line: number, error: DocketError): void {
    this.failed++;
    if (this.errors.length < limits.BULK_ERRORS_MAX) this.errors.push({ line, code: error.code, message: error.message });
    if (this.options.atomic) this.operations = []; // Nothing will be stored: hold nothing more.
  }

  /** Atomic: keeps every good line for the one transaction, within its bounds. */
  private hold(put: CheckedPut): void {
    this.sizeBytes += put.sizeBytes;
    if (this.sizeBytes > limits.TRANSACTION_SIZE_BYTES_MAX) throw limit(`an atomic bulk load holds at most ${limits.TRANSACTION_SIZE_BYTES_MAX} bytes of documents`);
    if (this.failed === 0) {
      this.operations.push(put);
      this.ids.add(key(this.options.collection, put.id));
    }
  }

  /** Non-atomic: adds the put to the batch being filled, sending the batch first if it is full. */
  private async add(put: CheckedPut): Promise<void> {
    const full = this.operations.length === limits.BULK_BATCH_DOCUMENTS_MAX || this.sizeBytes + put.sizeBytes > limits.BULK_BATCH_BYTES_MAX;
    if (this.operations.length > 0 && full) await this.send();
    this.operations.push(put);
    this.ids.add(key(this.options.collection, put.id));
    this.sizeBytes += put.sizeBytes;
  }

  /** At the end of the body: cuts the batch being filled (atomic: the one batch, unless a line failed). */
  cutLast(): void {
    if (this.operations.length > 0 && !(this.options.atomic && this.failed > 0)) this.cut();
  }

  /** Sends the batch being filled, then waits while BULK_BATCHES_IN_FLIGHT_MAX are pending. */
  private async send(): Promise<void> {
    this.cut();
    while (this.inFlight.length >= limits.BULK_BATCHES_IN_FLIGHT_MAX) await this.settleOldest();
  }

  /** Registers the batch being filled with the sequencer (synchronously: cut order is line order). */
  private cut(): void {
    const operations = this.operations;
    this.operations = [];
    this.sizeBytes = 0;
    const ids = this.ids;
    this.ids = new Set();
    const pending = this.sequencer.add(ids, () =>
      this.store.batch(operations).then((results) => {
        this.stored += results.length;
        this.tsn = Math.max(this.tsn ?? 0, results[0]!.tsn);
      }),
    );
    this.inFlight.push(pending);
  }

  /** Waits for the oldest pending batch; throws if the store refused it. */
  private async settleOldest(): Promise<void> {
    await this.inFlight.shift()!.done;
  }

  /** Waits for every pending batch, refused or not (a load that ends early). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.inFlight.splice(0).map((pending) => pending.done));
  }

  async finish(): Promise<BulkReport> {
    if (this.options.atomic && this.failed > 0) throw new BulkLinesFailed(this.errors[0]!, this.report());
    while (this.inFlight.length > 0) await this.settleOldest();
    return this.report();
  }

  private report(): BulkReport {
    const { lines, stored, failed, tsn, errors } = this;
    return { lines, stored, failed, tsn, errors: [...errors], errorsTruncated: failed > errors.length };
  }
}

/** The id a line's id field holds: a JSON string, decoded. */
function idOf(value: Buffer, what: string, idField: string): string {
  const id: unknown = JSON.parse(value.toString('utf8'));
  if (typeof id !== 'string') throw new DocketError(DocketErrorCode.ID_INVALID, `${what}: the id field ${JSON.stringify(idField)} must hold a string, not ${id === null ? 'null' : Array.isArray(id) ? 'object' : typeof id}`);
  return id;
}

/** Whitespace only (JSON's: space, tab, CR); such a line is skipped and not counted. */
function isBlank(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== CARRIAGE_RETURN) return false;
  return true;
}

/** A document's identity across collections, for overlap checks. */
function key(collection: string, id: string): string {
  return `${collection}\u0000${id}`;
}

function overlaps(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const id of b) if (a.has(id)) return true;
  return false;
}

/**
 * The next chunk of the body, or null at its end. Pulling (rather than flowing) is what stops
 * the socket being read while the load waits. Throws when the body broke off or at shutdown.
 */
async function readChunk(body: Readable, signal: AbortSignal | undefined): Promise<Buffer | null> {
  for (;;) {
    if (signal?.aborted) throw new DocketError(DocketErrorCode.UNAVAILABLE, 'the server is shutting down; lines after the last acknowledged transaction were not stored');
    const chunk = body.read() as Buffer | string | null;
    if (chunk !== null) return typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (body.readableEnded) return null;
    // A decoding body (server/http/content-encoding.ts) fails with its own coded error.
    if (body.errored instanceof DocketError) throw body.errored;
    if (body.destroyed) throw new DocketError(DocketErrorCode.BODY_INVALID, 'the request body broke off before its end', { cause: body.errored });
    await readable(body, signal);
  }
}

/** Resolves when the body may have more to read, has ended or broke off, or at the signal. */
function readable(body: Readable, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const events = ['readable', 'end', 'close', 'error'] as const;
    const done = (): void => {
      for (const event of events) body.off(event, done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    for (const event of events) body.on(event, done);
    signal?.addEventListener('abort', done);
  });
}
