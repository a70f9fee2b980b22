// Commit levels, in PostgreSQL's vocabulary, and the small pieces the primary and standby share.

export const COMMIT_LEVELS = ['local', 'remote_write', 'remote_flush', 'remote_apply'] as const;
export type CommitLevel = (typeof COMMIT_LEVELS)[number];

export function isCommitLevel(value: string): value is CommitLevel {
  return (COMMIT_LEVELS as readonly string[]).includes(value);
}

/** What a standby reports to its primary: the last TSN it has written, made durable, replayed. */
export interface Feedback {
  readonly name: string;
  /** The standby's current term (feedback from another term is ignored). */
  readonly term: number;
  readonly written: number;
  readonly durable: number;
  readonly replayed: number;
}

/** What a standby asks of its primary when it (re)connects. */
export interface PullRequest {
  readonly name: string;
  /** The first TSN wanted: the standby's last TSN + 1. */
  readonly from: number;
  /** The term in which the standby's record `from - 1` was written (0 when from is 1). */
  readonly lastTerm: number;
  /** The highest term the standby knows. */
  readonly term: number;
}

/**
 * Wakes whoever waits when something changed; waits are bounded. A sticky signal remembers a
 * notify that found no waiter, and the next wait returns at once (one consumer that is busy
 * between waits, such as the standby's feedback loop, loses no wake-up).
 */
export class Signal {
  private waiters: (() => void)[] = [];
  private pending = false;

  constructor(private readonly sticky = false) {}

  notify(): void {
    const waiters = this.waiters;
    if (waiters.length === 0 && this.sticky) this.pending = true;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  wait(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.push(done);
    });
  }
}
