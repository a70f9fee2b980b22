// What every route reaches the store through. The server listens before recovery finishes, so
// /healthz can answer 503 while it runs; until the store is open, and again once shutdown has
// begun, `store` throws DOCKET_ERR_UNAVAILABLE (503) instead of handing out a store.

import { DocketError, DocketErrorCode } from '../../src/errors.js';
import type { DocumentStore } from '../../src/store.js';
import type { Config } from '../config.js';
import type { ReplicationNode } from '../../src/replication/node.js';
import type { Seeded } from '../replication.js';
import type { OverloadGuard } from './overload.js';

export type Phase = 'recovering' | 'ready' | 'closing' | 'failed';

/** How far binlog replay has got: transactions replayed of those it has to replay. */
export interface RecoveryProgress {
  readonly replayed: number;
  readonly total: number;
}

export class Docket {
  private current: DocumentStore | undefined;
  private state: Phase = 'recovering';
  private failure: unknown;
  private readonly stopping = new AbortController();
  /** The load shedder, whose figures /stats shows (set by the app). */
  overload: OverloadGuard | undefined;
  /** The replication role, set once the store is open, before it serves (server/replication.ts). */
  replication: ReplicationNode | undefined;
  /** Re-points a standby to another primary without a restart (POST /admin/replica-of; set by the app). */
  repointStandby: ((primary: string, token: string | undefined) => Promise<{ previous: string }>) | undefined;
  /** How this standby was seeded from its primary's checkpoint, if it was (server/replication.ts). */
  seeded: Seeded | undefined;
  private progress: RecoveryProgress | undefined;
  /** The phases a 503 has been logged in: once each (see unavailableNotice). */
  private readonly noticed = new Set<Phase>();
  /** Settles when recovery ends: the store, or why it could not open. */
  readonly opened: Promise<DocumentStore>;
  /** Settles when a store swap (a standby's rebuild in place) under way ends. */
  private swapping: Promise<void> | undefined;
  /** Why the store is out of service while a swap runs. */
  private swapReason: string | undefined;

  constructor(
    readonly config: Readonly<Config>,
    /** Opens the store, reporting replay progress as it goes. */
    open: (onProgress: (progress: RecoveryProgress) => void) => Promise<DocumentStore>,
  ) {
    this.opened = open((progress) => (this.progress = progress)).then(
      (store) => {
        this.current = store;
        if (this.state === 'recovering') this.state = 'ready';
        return store;
      },
      (error: unknown) => {
        this.state = 'failed';
        this.failure = error;
        throw error;
      },
    );
    this.opened.catch(() => undefined); // Whoever starts the server awaits it; never unhandled.
  }

  get phase(): Phase {
    return this.state;
  }

  get store(): DocumentStore {
    if (this.state === 'ready') return this.current!;
    const why = this.state === 'recovering' ? (this.swapReason ?? `the store is recovering${this.progressText()}`) : this.state === 'closing' ? 'the server is shutting down' : `the store failed to open: ${(this.failure as Error)?.message}`;
    throw new DocketError(DocketErrorCode.UNAVAILABLE, why);
  }

  /** Replay progress, while the store recovers and has begun replaying the binlog. */
  get recoveryProgress(): RecoveryProgress | undefined {
    return this.state === 'recovering' ? this.progress : undefined;
  }

  private progressText(): string {
    const progress = this.progress;
    return progress ? ` (${progress.replayed.toLocaleString('en-US')} of ${progress.total.toLocaleString('en-US')} binlog transactions replayed)` : '';
  }

  /**
   * What to log for a 503 (DOCKET_ERR_UNAVAILABLE): a line the first time in each phase, then
   * nothing. Load balancers poll /healthz all through recovery; each poll is no news.
   */
  unavailableNotice(): string | undefined {
    if (this.state === 'ready' || this.noticed.has(this.state)) return undefined;
    this.noticed.add(this.state);
    if (this.state === 'recovering') return this.swapReason ? `answering 503: ${this.swapReason}` : `answering 503 while the store recovers${this.progressText()}; "docket ready" follows when it serves`;
    if (this.state === 'closing') return 'answering 503: the server is shutting down';
    return undefined; // A failed open is logged where it fails (server/serve.ts).
  }

  /** Aborted when shutdown begins: long polls and event streams end on it. */
  get shutdownSignal(): AbortSignal {
    return this.stopping.signal;
  }

  /**
   * Replaces the store while the server runs (a standby's rebuild in place, server/rebuild.ts):
   * stops handing it out (requests get 503 with `reason`), runs `swap` (which closes it and opens
   * the next one), and serves what `swap` returns. If `swap` throws, the server is failed (no
   * store to serve) until restarted.
   */
  async replaceStore(reason: string, swap: (old: DocumentStore) => Promise<DocumentStore>): Promise<void> {
    if (this.state !== 'ready') throw new DocketError(DocketErrorCode.UNAVAILABLE, `the server is ${this.state}: its store is not replaced now`);
    const old = this.current!;
    this.current = undefined;
    this.state = 'recovering';
    this.swapReason = reason;
    this.progress = undefined;
    this.noticed.delete('recovering');
    const swapped = swap(old);
    this.swapping = swapped.then(
      () => undefined,
      () => undefined,
    );
    try {
      this.current = await swapped;
      if (this.state === 'recovering') this.state = 'ready';
    } catch (error) {
      if (this.state === 'recovering') this.state = 'failed';
      this.failure = error;
      throw error;
    } finally {
      this.swapReason = undefined;
    }
  }

  /** Stops handing out the store to new requests and ends long-lived ones. */
  beginClose(): void {
    if (this.state !== 'failed') this.state = 'closing';
    this.stopping.abort();
  }

  /** Closes the store once recovery (if still running) is over. */
  async close(): Promise<void> {
    this.beginClose();
    const opened = await this.opened.catch(() => undefined);
    await this.swapping;
    await this.replication?.close();
    // After a swap the opened store is closed already; the one serving is `current`.
    await (this.swapping ? this.current : opened)?.close();
  }
}
