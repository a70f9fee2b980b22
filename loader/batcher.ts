// Cuts an input's bytes into request bodies for the bulk endpoint: whole lines, as they are (no
// parsing; the server checks each line), at most batchLines lines or about batchBytes bytes a
// body. Each body remembers which input lines it holds and the uncompressed offset after its
// last line, which is what a checkpoint records once the server has acknowledged it.
//
// Invariant: at most one partial line is held, of at most lineBytesMax bytes; a longer line is
// reported here as too long, its bytes dropped as they arrive, and a blank line sent in its
// place so that the server's line numbers still match the input's.

import { PartialLine } from '../src/partial-line.js';

const NEWLINE = 0x0a;
const BLANK_LINE = Buffer.from('\n');

export interface LocalLineError {
  readonly line: number;
  readonly message: string;
}

export interface Batch {
  /** The input's index among the load's inputs. */
  readonly input: number;
  /** Input line number of the body's first line (1-based). */
  readonly firstLine: number;
  /** Physical lines in the body. */
  readonly lines: number;
  readonly body: Buffer;
  /** Uncompressed input offset just after the body's last line. */
  readonly endOffset: number;
  /** Lines this side refused (too long), each sent as a blank line. */
  readonly errors: readonly LocalLineError[];
  /** The input's last body (it may hold no lines): once acknowledged, the input is done. */
  readonly last: boolean;
}

export interface BatcherOptions {
  readonly input: number;
  /** Lines of the input already acknowledged (a resumed load starts after them). */
  readonly lineBefore: number;
  /** Their uncompressed bytes. */
  readonly offsetBefore: number;
  readonly batchLines: number;
  readonly batchBytes: number;
  readonly lineBytesMax: number;
}

export class Batcher {
  private parts: Buffer[] = [];
  private bytes = 0;
  private lines = 0;
  private errors: LocalLineError[] = [];
  private firstLine: number;
  private line: number;
  private offset: number;
  private readonly partial: PartialLine;

  constructor(private readonly options: BatcherOptions) {
    this.line = options.lineBefore;
    this.firstLine = options.lineBefore + 1;
    this.offset = options.offsetBefore;
    this.partial = new PartialLine(options.lineBytesMax);
  }

  /** The bodies this chunk fills. */
  push(chunk: Buffer): Batch[] {
    const batches: Batch[] = [];
    let start = 0;
    for (let end = chunk.indexOf(NEWLINE); end >= 0; start = end + 1, end = chunk.indexOf(NEWLINE, start)) {
      this.completeLine(chunk.subarray(start, end + 1));
      if (this.lines >= this.options.batchLines || this.bytes >= this.options.batchBytes) batches.push(this.take());
    }
    this.hold(chunk.subarray(start));
    return batches;
  }

  /** At the end of the input: the last body, with the last line when it has no newline. */
  end(): Batch {
    if (!this.partial.empty) {
      const terminate = !this.partial.tooLong; // A skipped line is sent as a blank line already.
      this.completeLine(Buffer.alloc(0));
      if (terminate) {
        this.parts.push(BLANK_LINE); // Not in the input, so not in the offset.
        this.bytes++;
      }
    }
    return this.take(true);
  }

  /** A line ends with `tail` (which includes its newline, except at the end of the input). */
  private completeLine(tail: Buffer): void {
    this.line++;
    this.lines++;
    this.offset += tail.length;
    const length = this.partial.bytes + tail.length - (tail.at(-1) === NEWLINE ? 1 : 0);
    const tooLong = this.partial.tooLong || length > this.options.lineBytesMax;
    const held = this.partial.take();
    if (tooLong) {
      this.errors.push({ line: this.line, message: `line ${this.line} is longer than ${this.options.lineBytesMax} bytes (the loader's --line-bytes-max)` });
      this.parts.push(BLANK_LINE);
      this.bytes++;
    } else {
      for (const part of held) this.parts.push(part);
      this.parts.push(tail);
      this.bytes += length + (tail.at(-1) === NEWLINE ? 1 : 0);
    }
  }

  /** Holds the start of a line the chunk does not finish. */
  private hold(rest: Buffer): void {
    this.offset += rest.length; // Counted now: a skipped line's bytes are never held.
    this.partial.hold(rest);
  }

  private take(last = false): Batch {
    const batch: Batch = {
      input: this.options.input,
      firstLine: this.firstLine,
      lines: this.lines,
      body: Buffer.concat(this.parts, this.bytes),
      endOffset: this.offset,
      errors: this.errors,
      last,
    };
    this.parts = [];
    this.bytes = 0;
    this.lines = 0;
    this.errors = [];
    this.firstLine = this.line + 1;
    return batch;
  }
}
