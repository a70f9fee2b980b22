// The contract of every internal iterator (memtable, SSTable, level, merging). An iterator has
// one direction, fixed when it is made, and walks entries in internal order (forward) or in
// exactly the reverse of it. Iterators over stable data (SSTables, frozen memtables) may read
// lazily; callers must not assume an entry stays valid after `next` unless they keep it.

import type { Entry } from './entry.js';

export interface InternalIterator {
  /**
   * Forward: position at the first entry whose key is >= `key` (all versions of that key
   * follow, newest first). Reverse: position at the last entry whose key is <= `key` (versions
   * of a key are then visited oldest first). No key: the first (forward) or last (reverse) entry.
   */
  seek(key?: Buffer): Promise<void>;
  valid(): boolean;
  /** REQUIRES: valid(). */
  entry(): Entry;
  /** REQUIRES: valid(). */
  next(): Promise<void>;
  /**
   * REQUIRES: valid(). Does what next() does when that needs no I/O (no block to load, no table
   * to open) and returns true; else changes nothing and returns false (then await next()). A
   * walk over cached blocks so costs no promise per entry.
   */
  nextSync(): boolean;
  /** Releases cached blocks or file references. Idempotent. */
  close(): void;
}
