// A TSN that only grows, and readers waiting for it to pass a point: the change feed waits on
// the commit pipeline's "acknowledged" watermark this way (long polls, event streams).

import assert from 'node:assert/strict';

interface Watcher {
  readonly afterTsn: number;
  readonly settle: (passed: boolean) => void;
}

export class Watermark {
  private current: number;
  private closed = false;
  private readonly watchers = new Set<Watcher>();

  constructor(start: number) {
    this.current = start;
  }

  get tsn(): number {
    return this.current;
  }

  /** Moves the mark up to `tsn` and wakes those waiting below it. */
  advance(tsn: number): void {
    assert(tsn >= this.current, `the watermark moves back from ${this.current} to ${tsn}`);
    this.current = tsn;
    for (const watcher of this.watchers) if (watcher.afterTsn < tsn) watcher.settle(true);
  }

  /** Resolves true once the mark passes `afterTsn`; false on timeout, abort, or close. */
  wait(afterTsn: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (afterTsn < this.current) return Promise.resolve(true);
    if (this.closed || signal?.aborted === true) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => watcher.settle(false);
      const timer = setTimeout(onAbort, timeoutMs);
      const watcher: Watcher = {
        afterTsn,
        settle: (passed) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.watchers.delete(watcher);
          resolve(passed);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.watchers.add(watcher);
    });
  }

  /** Ends every wait (false) and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const watcher of this.watchers) watcher.settle(false);
  }
}
