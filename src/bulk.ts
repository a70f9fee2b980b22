// Bulk loads: a stream of NDJSON lines, one document each, into one collection. The body is
// read a chunk at a time with at most one partial line held, each line is checked on its own
// (a bad line is reported, never stored), and the good ones are written either in transactions
// of bounded size, at most BULK_BATCHES_IN_FLIGHT_MAX awaiting acknowledgement (non-atomic), or
// all in one transaction (atomic). No HTTP here: routes/bulk.ts hands in the request stream.
//
// Back-pressure: the body is pulled with read(); while the transactions in flight are at their
// bound nothing is read, the stream's buffer fills, and Node stops reading the socket.

import type { Readable } from 'node:stream';
import { DocketError, DocketErrorCode } from './errors.js';
import { isPlainObject } from './documents/merge-patch.js';
import { limit } from './documents/validate.js';
import { generateId } from './http/ids.js';
import { parseJson } from './http/json.js';
import * as limits from './limits.js';
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
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private skipping = false;
  private number = 0;

  constructor(private readonly lineBytesMax: number) {}

  /** The lines this chunk completes. */
  push(chunk: Buffer): Line[] {
    const lines: Line[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; start = end + 1, end = chunk.indexOf(NEWLINE, start)) {
      lines.push(this.complete(chunk.subarray(start, end)));
    }
    this.hold(chunk.subarray(start));
    return lines;
  }

  /** The last line, when the stream does not end with a newline. */
  end(): Line[] {
    return this.partialBytes > 0 || this.skipping ? [this.complete(EMPTY)] : [];
  }

  private complete(tail: Buffer): Line {
    const number = ++this.number;
    const tooLong = this.skipping || this.partialBytes + tail.length > this.lineBytesMax + 1;
    let bytes = tooLong ? EMPTY : this.partialBytes === 0 ? tail : Buffer.concat([...this.partial, tail]);
    this.partial = [];
    this.partialBytes = 0;
    this.skipping = false;
    if (bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN) bytes = bytes.subarray(0, -1);
    return tooLong || bytes.length > this.lineBytesMax ? { number, tooLong: true } : { number, bytes };
  }

  private hold(rest: Buffer): void {
    if (this.skipping || rest.length === 0) return;
    if (this.partialBytes + rest.length > this.lineBytesMax + 1) {
      this.partial = [];
      this.partialBytes = 0;
      this.skipping = true;
      return;
    }
    this.partial.push(rest);
    this.partialBytes += rest.length;
  }
}

/**
 * Loads the NDJSON `body` into `options.collection`. Resolves with the report; rejects with a
 * DocketError when the load as a whole is refused (the collection is gone, the store refused
 * a transaction, the body broke off, an atomic load over its bounds or with a failed line,
 * which is BulkLinesFailed). Transactions acknowledged before a rejection stay stored.
 */
export async function bulkLoad(store: DocumentStore, body: Readable, options: BulkOptions): Promise<BulkReport> {
  store.collectionInfo(options.collection); // COLLECTION_NOT_FOUND before reading anything.
  const load = new BulkLoad(store, options);
  const splitter = new LineSplitter(options.lineBytesMax);
  const onError = (): void => undefined; // Seen through body.errored; never an uncaught 'error'.
  body.on('error', onError);
  try {
    for (let chunk = await readChunk(body, options.signal); chunk !== null; chunk = await readChunk(body, options.signal)) {
      for (const line of splitter.push(chunk)) await load.line(line);
    }
    for (const line of splitter.end()) await load.line(line);
    return await load.finish();
  } catch (error) {
    await load.settle();
    throw error;
  } finally {
    body.off('error', onError);
  }
}

interface PendingBatch {
  readonly ids: ReadonlySet<string>;
  /** Settles when the store acknowledges or refuses the batch; its rejection is always observed. */
  readonly done: Promise<void>;
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
    const document = parseJson(line.bytes, what);
    if (!isPlainObject(document)) throw new DocketError(DocketErrorCode.DOCUMENT_INVALID, `${what} is not a JSON object`);
    const { collection, idField } = this.options;
    // Own properties only: an id field named "__proto__" must not read the prototype.
    const id = Object.hasOwn(document, idField) ? document[idField] : generateId();
    if (typeof id !== 'string') throw new DocketError(DocketErrorCode.ID_INVALID, `${what}: the id field ${JSON.stringify(idField)} must hold a string, not ${id === null ? 'null' : typeof id}`);
    return this.store.checkPut(collection, id, document);
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
    if (this.failed === 0) this.operations.push(put);
  }

  /** Non-atomic: adds the put to the batch being filled, sending the batch first if it is full. */
  private async add(put: CheckedPut): Promise<void> {
    const full = this.operations.length === limits.BULK_BATCH_DOCUMENTS_MAX || this.sizeBytes + put.sizeBytes > limits.BULK_BATCH_BYTES_MAX;
    if (this.operations.length > 0 && full) await this.send();
    this.operations.push(put);
    this.ids.add(put.id);
    this.sizeBytes += put.sizeBytes;
  }

  /**
   * Sends the batch being filled, then waits while BULK_BATCHES_IN_FLIGHT_MAX are pending. A
   * batch that writes an id a pending one also writes waits for it first: the store does not
   * promise to sequence concurrent transactions in call order, and the later line must win.
   */
  private async send(): Promise<void> {
    const operations = this.operations;
    const ids = this.ids;
    this.operations = [];
    this.ids = new Set();
    this.sizeBytes = 0;
    while (this.inFlight.some((pending) => overlaps(pending.ids, ids))) await this.settleOldest();
    const done = this.store.batch(operations).then((results) => {
      this.stored += results.length;
      this.tsn = Math.max(this.tsn ?? 0, results[0]!.tsn);
    });
    done.catch(() => undefined); // Observed by settleOldest or settle.
    this.inFlight.push({ ids, done });
    while (this.inFlight.length >= limits.BULK_BATCHES_IN_FLIGHT_MAX) await this.settleOldest();
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
    if (this.operations.length > 0) {
      if (this.options.atomic) {
        const results = await this.store.batch(this.operations);
        this.stored = results.length;
        this.tsn = results[0]!.tsn;
      } else {
        await this.send();
      }
    }
    while (this.inFlight.length > 0) await this.settleOldest();
    return this.report();
  }

  private report(): BulkReport {
    const { lines, stored, failed, tsn, errors } = this;
    return { lines, stored, failed, tsn, errors: [...errors], errorsTruncated: failed > errors.length };
  }
}

/** Whitespace only (JSON's: space, tab, CR); such a line is skipped and not counted. */
function isBlank(bytes: Buffer): boolean {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== CARRIAGE_RETURN) return false;
  return true;
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
