// The epoch keeper. A family's local epoch is the TSN through which its items are persisted
// (its flush flag); the global epoch is the smallest. Binlog segments wholly below it are no
// longer needed by recovery and are deleted; a family that holds it back too long (in binlog
// bytes or in time) is flushed on purpose; an idle family's flush is a flag advance, no table.

import type { Engine, FlushFlag } from '../storage/index.js';
import type { Binlog } from './binlog/binlog.js';
import * as limits from './limits.js';

export interface EpochStats {
  /** The smallest flag TSN: replay would start here. */
  readonly replayFromTsn: number;
  readonly lastTsn: number;
  readonly segmentsPurged: number;
  readonly laggardFlushes: number;
  readonly runs: number;
}

export class EpochKeeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<EpochStats> | undefined;
  private replayFromTsn = 0;
  private segmentsPurged = 0;
  private laggardFlushes = 0;
  private runs = 0;
  private advancedAtMs = Date.now();
  /** The oldest TSN replication still needs (standbys catching up); the purge keeps it. */
  retainFrom: (() => number) | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly binlog: Binlog,
    private readonly segmentSizeBytes: number,
    private readonly lagBytesMax: number,
    intervalMs: number,
    private readonly onError: (error: unknown) => void,
  ) {
    if (intervalMs > 0) {
      this.timer = setInterval(() => void this.run().catch((error: unknown) => this.onError(error)), intervalMs);
      this.timer.unref();
    }
  }

  /** One pass; concurrent calls share it. */
  run(): Promise<EpochStats> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<EpochStats> {
    this.runs++;
    const flags = [...this.engine.flags()].filter((entry): entry is [string, FlushFlag] => entry[1] !== undefined);
    const start = Math.min(...flags.map(([, flag]) => flag.tag));
    if (start > this.replayFromTsn) this.advancedAtMs = Date.now();
    this.replayFromTsn = Number.isFinite(start) ? start : 0;
    // Records below the smallest flag TSN are persisted in every family; its own record is needed.
    const below = Math.min(this.replayFromTsn, this.retainFrom?.() ?? Infinity);
    if (below > 0) this.segmentsPurged += await this.binlog.purge(below);
    // Read again after the purge's await: a collection dropped meanwhile took its families along.
    const live = new Set(this.engine.listFamilies());
    const laggards = this.laggards(flags).filter((name) => live.has(name));
    if (laggards.length > 0) {
      this.laggardFlushes += laggards.length;
      await this.engine.flush(laggards);
    }
    return this.stats();
  }

  /** Families holding the global epoch back past a bound: the older half of the retained log. */
  private laggards(flags: [string, FlushFlag][]): string[] {
    const { lastTsn, segments } = this.binlog.stats();
    const tooBig = segments * this.segmentSizeBytes > this.lagBytesMax;
    const tooOld = Date.now() - this.advancedAtMs > limits.EPOCH_LAG_MS_MAX && this.replayFromTsn < lastTsn;
    if (!tooBig && !tooOld) return [];
    const middle = this.replayFromTsn + Math.floor((lastTsn - this.replayFromTsn) / 2);
    return flags.filter(([, flag]) => flag.tag <= middle).map(([name]) => name);
  }

  stats(): EpochStats {
    return { replayFromTsn: this.replayFromTsn, lastTsn: this.binlog.lastTsn, segmentsPurged: this.segmentsPurged, laggardFlushes: this.laggardFlushes, runs: this.runs };
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  async idle(): Promise<void> {
    await this.running?.catch(() => undefined);
  }
}
