// A server's replication role: a primary (a ReplicationSource serving standbys) or a standby (a
// Standby following its primary), and promotion from the one to the other. Transport-free: the
// HTTP layer (routes/replication.ts) and the simulation drive it alike.

import { DocketError, DocketErrorCode } from '../errors.js';
import type { DocumentStore } from '../store.js';
import { ReplicationSource, type SourceOptions } from './source.js';
import { Standby, type PrimaryLink, type StandbyOptions } from './standby.js';
import type { TermFile } from './term.js';

export class ReplicationNode {
  private sourceNow: ReplicationSource | undefined;
  private standbyNow: Standby | undefined;
  private promotion: Promise<{ term: number; tsn: number }> | undefined;
  /** Set while a re-point swaps the standby (one at a time; no promotion meanwhile). */
  private repointing: Promise<unknown> | undefined;

  constructor(
    private readonly store: DocumentStore,
    readonly terms: TermFile,
    private readonly sourceOptions: SourceOptions,
    standby?: { readonly link: PrimaryLink; readonly options: StandbyOptions },
  ) {
    if (standby) {
      this.standbyNow = new Standby(store, terms, standby.link, standby.options);
      this.standbyNow.start();
    } else {
      this.sourceNow = new ReplicationSource(store, terms, sourceOptions);
    }
  }

  get role(): 'primary' | 'standby' {
    return this.sourceNow ? 'primary' : 'standby';
  }

  /** The primary's source (undefined on a standby). */
  get source(): ReplicationSource | undefined {
    return this.sourceNow;
  }

  get standby(): Standby | undefined {
    return this.standbyNow;
  }

  /** The primary a standby follows. */
  get primary(): string | undefined {
    return this.sourceNow ? undefined : this.standbyNow?.primary;
  }

  /** Standby -> primary: replays all it holds, raises the term, takes writes, serves standbys. */
  promote(): Promise<{ term: number; tsn: number }> {
    if (this.sourceNow) return Promise.reject(new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this server is already a primary'));
    if (this.repointing) return Promise.reject(new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this standby is being re-pointed to another primary: promote it once that is done'));
    this.promotion ??= this.standbyNow!.promote().then((result) => {
      this.sourceNow = new ReplicationSource(this.store, this.terms, this.sourceOptions);
      return result;
    });
    this.promotion.catch(() => (this.promotion = undefined));
    return this.promotion;
  }

  /**
   * Standby: follows another primary from now on, without a restart. The old stream stops (what
   * it appended is durable first); the new one starts where the local log ends, checked by the
   * new primary's log matching like any reconnect (a diverged history is refused and rebuilt).
   */
  async repoint(link: PrimaryLink): Promise<{ previous: string }> {
    if (this.sourceNow) throw new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this server is a primary: only a standby follows another server');
    if (this.promotion) throw new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this server is being promoted');
    if (this.repointing) throw new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this standby is already being re-pointed');
    const old = this.standbyNow!;
    if (old.phase === 'closed') throw new DocketError(DocketErrorCode.UNAVAILABLE, 'replication is stopping');
    const swap = async (): Promise<{ previous: string }> => {
      await old.close();
      const standby = new Standby(this.store, this.terms, link, old.options);
      this.standbyNow = standby;
      standby.start();
      return { previous: old.primary };
    };
    const repointing = swap();
    this.repointing = repointing;
    try {
      return await repointing;
    } finally {
      this.repointing = undefined;
    }
  }

  stats(): object {
    return this.sourceNow ? this.sourceNow.stats() : this.standbyNow!.stats();
  }

  async close(): Promise<void> {
    this.sourceNow?.close();
    await this.repointing?.catch(() => undefined); // Then the standby it started is the one to close.
    await this.standbyNow?.close();
  }
}
