// Internal iterators that combine others: the merging iterator (the union of several sorted
// sources in one direction) and the level iterator (a run of non-overlapping tables, opened
// lazily one at a time).

import type { Entry } from './entry.js';
import { compareEntries } from './entry.js';
import type { InternalIterator } from './iterator.js';
import type { FileMeta } from './manifest/version-edit.js';
import type { TableCache, TableHandle } from './table-cache.js';

export class MergingIterator implements InternalIterator {
  private current: InternalIterator | undefined;
  /** The first of the other children: while the current one stays before it, it stays current. */
  private runnerUp: InternalIterator | undefined;

  constructor(
    private readonly children: InternalIterator[],
    readonly reverse: boolean,
  ) {}

  async seek(key?: Buffer): Promise<void> {
    await Promise.all(this.children.map((child) => child.seek(key)));
    this.pick();
  }

  valid(): boolean {
    return this.current !== undefined;
  }

  entry(): Entry {
    return this.current!.entry();
  }

  async next(): Promise<void> {
    await this.current!.next();
    this.advanced();
  }

  nextSync(): boolean {
    if (!this.current!.nextSync()) return false;
    this.advanced();
    return true;
  }

  /** Only the current child moved: one comparison while it stays first (a walk mostly in one source). */
  private advanced(): void {
    const current = this.current!;
    if (current.valid() && (this.runnerUp === undefined || this.before(current, this.runnerUp))) return;
    this.pick();
  }

  /** Forward: the smallest entry in internal order; reverse: the largest. And the next after it. */
  private pick(): void {
    let best: InternalIterator | undefined;
    let second: InternalIterator | undefined;
    for (const child of this.children) {
      if (!child.valid()) continue;
      if (!best) best = child;
      else if (this.before(child, best)) {
        second = best;
        best = child;
      } else if (!second || this.before(child, second)) second = child;
    }
    this.current = best;
    this.runnerUp = second;
  }

  private before(a: InternalIterator, b: InternalIterator): boolean {
    const order = compareEntries(a.entry(), b.entry());
    return this.reverse ? order > 0 : order < 0;
  }

  close(): void {
    for (const child of this.children) child.close();
    this.current = undefined;
    this.runnerUp = undefined;
  }
}

/**
 * Tables of one level (or one L0 table alone): sorted by key and not overlapping, so at most
 * one is open at a time.
 */
export class LevelIterator implements InternalIterator {
  private index = -1;
  private handle: TableHandle | undefined;
  private inner: InternalIterator | undefined;

  constructor(
    private readonly files: readonly FileMeta[],
    private readonly tables: TableCache,
    private readonly reverse: boolean,
  ) {}

  async seek(key?: Buffer): Promise<void> {
    await this.open(this.firstFileFor(key));
    await this.inner?.seek(key);
    await this.skipExhausted();
  }

  private firstFileFor(key: Buffer | undefined): number {
    const files = this.files;
    if (key === undefined) return this.reverse ? files.length - 1 : 0;
    // Forward: the first table whose largest key >= key. Reverse: the last whose smallest <= key.
    let low = 0;
    let high = files.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const goRight = this.reverse
        ? Buffer.compare(files[middle]!.smallestKey, key) <= 0
        : Buffer.compare(files[middle]!.largestKey, key) < 0;
      if (goRight) low = middle + 1;
      else high = middle;
    }
    return this.reverse ? low - 1 : low;
  }

  private async open(index: number): Promise<void> {
    this.closeInner();
    this.index = index;
    if (index < 0 || index >= this.files.length) return;
    this.handle = await this.tables.acquire(this.files[index]!.number);
    this.inner = this.handle.reader.iterator({ reverse: this.reverse });
  }

  private async skipExhausted(): Promise<void> {
    while (this.inner && !this.inner.valid()) {
      await this.open(this.index + (this.reverse ? -1 : 1));
      await this.inner?.seek();
    }
  }

  valid(): boolean {
    return this.inner !== undefined && this.inner.valid();
  }

  entry(): Entry {
    return this.inner!.entry();
  }

  async next(): Promise<void> {
    await this.inner!.next();
    await this.skipExhausted();
  }

  /** A table's iterator stays valid when its nextSync succeeds, so no other table is needed. */
  nextSync(): boolean {
    return this.inner!.nextSync();
  }

  private closeInner(): void {
    this.inner?.close();
    this.handle?.release();
    this.inner = undefined;
    this.handle = undefined;
  }

  close(): void {
    this.closeInner();
    this.index = this.files.length;
  }
}
