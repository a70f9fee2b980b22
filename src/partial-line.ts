// The unfinished last line of a byte stream cut into lines, held up to a bound: past it the
// line is only marked too long and its bytes are dropped as they arrive. Shared by the bulk
// endpoint's LineSplitter (src/bulk.ts) and the loader's Batcher (loader/batcher.ts).

export class PartialLine {
  private parts: Buffer[] = [];
  /** Bytes held. */
  bytes = 0;
  /** The line passed the bound: nothing of it is held. */
  tooLong = false;

  constructor(private readonly bytesMax: number) {}

  get empty(): boolean {
    return this.bytes === 0 && !this.tooLong;
  }

  /** Adds the next piece of the line. */
  hold(rest: Buffer): void {
    if (this.tooLong || rest.length === 0) return;
    if (this.bytes + rest.length > this.bytesMax) {
      this.parts = [];
      this.bytes = 0;
      this.tooLong = true;
      return;
    }
    this.parts.push(rest);
    this.bytes += rest.length;
  }

  /** The pieces held, and starts the next line. */
  take(): Buffer[] {
    const parts = this.parts;
    this.parts = [];
    this.bytes = 0;
    this.tooLong = false;
    return parts;
  }
}
