// The standby's side of log shipping, in three stages that run side by side:
//
//   receive:  frames from the primary ─▶ checked (CRC, TSN dense, term not older) ─▶ binlog.append
//   durable:  appends settle in TSN order (fdatasync under `immediate`) ─▶ feedback "durable"
//   replay:   own binlog, from the last applied TSN through min(durable, safe) ─▶ the one applier
//
// `safe` is the primary's word (STATUS frames) on the last TSN a failover at the configured
// commit level cannot lose; replaying no further keeps the read view from ever showing a write
// that could later vanish. Promotion lifts that bound: the standby's whole durable log is then
// history. Recovery after a crash is a primary's (flags, epochs, binlog replay): the binlog a
// standby appends is the same log a primary writes.
//
// Invariant: the standby's binlog is a prefix of the primary's durable log: a stream starts
// only where the primary checked the two logs agree (same TSN in the same term), and every
// record appended is the next TSN, checked, from a term no older than the last.

import { DocketError, DocketErrorCode } from '../errors.js';
import type { DocumentStore } from '../store.js';
import { FRAME_HELLO, FRAME_RECORD, FRAME_STATUS, FrameReader, helloOf, statusOf } from './frame.js';
import { Signal, type Feedback, type PullRequest } from './levels.js';
import type { TermFile } from './term.js';

/** How a standby reaches its primary: HTTP in production (http-link.ts), simulated in tests. */
export interface PrimaryLink {
  /** Where the primary is, for messages and X-Docket-Primary. */
  readonly primary: string;
  /** The primary's stream from `request.from` as chunks of bytes; a refusal throws a DocketError with its code. */
  pull(request: PullRequest, signal: AbortSignal): AsyncIterable<Buffer>;
  feedback(report: Feedback): Promise<void>;
}

export interface StandbyOptions {
  readonly name: string;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** Feedback at least this often while connected (keeps the standby in the quorum). */
  readonly feedbackIntervalMs: number;
  /** Records appended but not yet durable before the stream is read no further. */
  readonly inFlightRecordsMax: number;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, detail?: object) => void;
  /** Called when the log cannot be followed (the server rebuilds the standby in place: server/rebuild.ts); must not wait for this standby to close. */
  readonly onCheckpointNeeded?: (error: DocketError) => Promise<void>;
  /** Where a rebuild in place stands (state 'idle' when none runs), for stats(). */
  readonly rebuildStats?: () => { readonly state: string } | undefined;
}

/** Bytes of received records kept for replay in memory; past it replay reads them back from the binlog. */
const QUEUE_BYTES_MAX = 64 * 1024 * 1024;

/** Arrival times kept for the replay lag (the oldest unreplayed one is what counts). */
const ARRIVALS_MAX = 100_000;

export type StandbyPhase = 'connecting' | 'streaming' | 'checkpoint-needed' | 'rebuilding' | 'promoting' | 'promoted' | 'closed';

export class Standby {
  private phaseNow: StandbyPhase = 'connecting';
  private written: number;
  private durable: number;
  /** The primary's last word: its durable TSN and the safe TSN. */
  private primaryDurable = 0;
  private safe = 0;
  private promoting = false;
  private stopped = false;
  private stream: AbortController | undefined;
  private readonly progress = new Signal();
  private readonly feedbackDue = new Signal(true);
  private running: Promise<void> | undefined;
  private replaying: Promise<void> | undefined;
  private feeding: Promise<void> | undefined;
  /** Settles when the records through settledTsn are durable (rejects if the binlog failed). */
  private lastAppend: Promise<void> = Promise.resolve();
  /** The binlog's promise for the last record appended: they settle in TSN order. */
  private lastAppended: Promise<void> = Promise.resolve();
  /** The last TSN whose durability lastAppend tracks. */
  private settledTsn: number;
  private failure: unknown;
  private lastError: string | undefined;
  /** Records appended and not yet replayed, TSNs dense from queueFirst (replay takes them from here, not the disk). */
  private queue: Buffer[] = [];
  private queueFirst = 0;
  private queueBytes = 0;
  /** When the oldest record not yet replayed arrived (replay lag in time). */
  private readonly arrivals: [number, number][] = [];
  readonly counters = { connects: 0, records: 0, bytes: 0, refusedFrames: 0, duplicates: 0, feedbacks: 0 };

  constructor(
    private readonly store: DocumentStore,
    private readonly terms: TermFile,
    readonly link: PrimaryLink,
    readonly options: StandbyOptions,
  ) {
    this.written = this.durable = this.settledTsn = store.lastTsn;
    store.refuseWrites(new DocketError(DocketErrorCode.STANDBY_READ_ONLY, `this server is a standby of ${link.primary}: send writes there`));
  }

  get phase(): StandbyPhase {
    const rebuild = this.options.rebuildStats?.();
    return rebuild && rebuild.state !== 'idle' && this.phaseNow === 'checkpoint-needed' ? 'rebuilding' : this.phaseNow;
  }

  get primary(): string {
    return this.link.primary;
  }

  /** The last TSN reads here may see. */
  get visibleTsn(): number {
    return this.store.replayedTsn;
  }

  start(): void {
    this.running = this.run();
    this.replaying = this.replayLoop();
    this.feeding = this.feedbackLoop();
  }

  private async run(): Promise<void> {
    let backoff = this.options.backoffMinMs;
    while (!this.stopped) {
      const controller = (this.stream = new AbortController());
      const before = this.written;
      try {
        await this.follow(controller.signal);
        if (!this.stopped) this.note('warn', `the stream from ${this.link.primary} ended; reconnecting`);
      } catch (error) {
        if (this.stopped) break;
        if (this.failure) break;
        if (error instanceof DocketError && error.code === DocketErrorCode.CHECKPOINT_NEEDED) {
          this.phaseNow = 'checkpoint-needed';
          this.note('error', error.message);
          if (this.options.onCheckpointNeeded) await this.options.onCheckpointNeeded(error).catch((e: unknown) => this.note('error', `checkpoint bootstrap failed: ${(e as Error).message}`));
          backoff = this.options.backoffMaxMs;
        } else {
          this.note('warn', `replication from ${this.link.primary}: ${(error as Error).message}; reconnecting`);
        }
      } finally {
        controller.abort();
      }
      if (this.stopped) break;
      if (this.written > before) backoff = this.options.backoffMinMs;
      // Waits for the appends of the last stream: the next one starts where they left off.
      await this.lastAppend.catch(() => undefined);
      await this.progress.wait(backoff / 2 + Math.random() * (backoff / 2), this.stopSignal);
      backoff = Math.min(this.options.backoffMaxMs, backoff * 2);
    }
  }

  private readonly stopping = new AbortController();
  private get stopSignal(): AbortSignal {
    return this.stopping.signal;
  }

  private note(level: 'info' | 'warn' | 'error', message: string): void {
    if (level !== 'info') this.lastError = message;
    this.options.log(level, message);
  }

  /** One stream: from the durable end of the local log, until it ends or fails. */
  private async follow(signal: AbortSignal): Promise<void> {
    if (this.failure) throw this.failure;
    const from = this.written + 1;
    const request: PullRequest = { name: this.options.name, from, lastTerm: this.terms.termOf(from - 1), term: this.terms.term };
    this.phaseNow = 'connecting';
    const reader = new FrameReader();
    let hello = false;
    let expect = from;
    let lastTerm = request.lastTerm;
    try {
      for await (const chunk of this.link.pull(request, signal)) {
        const now = Date.now();
        for (const frame of reader.push(chunk)) {
          if (frame.kind === FRAME_HELLO) {
            if (frame.term < this.terms.term) throw new DocketError(DocketErrorCode.REPLICATION_TERM_STALE, `${this.link.primary} is in term ${frame.term}, older than this standby's ${this.terms.term}: refused`);
            if (helloOf(frame).first !== from) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `the stream starts at TSN ${helloOf(frame).first}, not ${from}`);
            await this.terms.raiseTerm(frame.term);
            hello = true;
            this.counters.connects++;
            this.phaseNow = 'streaming';
            this.note('info', `streaming from ${this.link.primary} at TSN ${from}, term ${frame.term}`);
            continue;
          }
          if (!hello) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, 'the stream did not start with a hello frame');
          if (frame.kind === FRAME_STATUS) {
            if (frame.term < this.terms.term) throw new DocketError(DocketErrorCode.REPLICATION_TERM_STALE, `a status frame of term ${frame.term}, older than ${this.terms.term}`);
            const status = statusOf(frame);
            this.primaryDurable = Math.max(this.primaryDurable, status.durable);
            if (status.safe > this.safe) {
              this.safe = status.safe;
              this.progress.notify();
            }
            continue;
          }
          if (frame.kind !== FRAME_RECORD) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `a frame of unknown kind ${frame.kind}`);
          if (frame.tsn < expect) {
            this.counters.duplicates++;
            continue;
          }
          if (frame.tsn > expect) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `the stream skips from TSN ${expect - 1} to ${frame.tsn}`);
          if (frame.term < lastTerm) throw new DocketError(DocketErrorCode.REPLICATION_TERM_STALE, `TSN ${frame.tsn} of term ${frame.term} follows a record of term ${lastTerm}`);
          if (frame.term > this.terms.term) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `TSN ${frame.tsn} of term ${frame.term}, past the stream's term ${this.terms.term}`);
          if (frame.term > lastTerm || this.terms.termOf(frame.tsn) !== frame.term) await this.terms.beginTerm(frame.term, frame.tsn);
          lastTerm = frame.term;
          // The body stays a view of the chunk it came in (no copy): nothing writes to a chunk.
          this.append(frame.tsn, frame.body, now);
          expect++;
          if (this.written - this.durable >= this.options.inFlightRecordsMax) {
            this.settleAppends();
            await this.lastAppend;
          }
        }
        this.settleAppends();
      }
    } finally {
      this.settleAppends();
    }
  }

  private append(tsn: number, payload: Buffer, now: number): void {
    this.written = tsn;
    this.counters.records++;
    this.counters.bytes += payload.length;
    if (this.arrivals.length < ARRIVALS_MAX) this.arrivals.push([tsn, now]);
    if (this.queue.length === 0 || tsn !== this.queueFirst + this.queue.length) {
      this.queue = [];
      this.queueFirst = tsn;
      this.queueBytes = 0;
    }
    if (this.queueBytes + payload.length <= QUEUE_BYTES_MAX) {
      this.queue.push(payload);
      this.queueBytes += payload.length;
    }
    const appended = this.store.appendShipped(tsn, payload);
    appended.catch(() => undefined); // settleAppends sees a failure through a later append: they settle in TSN order.
    this.lastAppended = appended;
  }

  /**
   * Tracks durability once for the records appended since the last call (once per chunk of the
   * stream, not per record): appends settle in TSN order and a failed binlog fails every later
   * append, so the last one speaks for them all.
   */
  private settleAppends(): void {
    const tsn = this.written;
    if (tsn === this.settledTsn) return;
    this.settledTsn = tsn;
    const log = this.store.replicationLog;
    this.lastAppend = this.lastAppended.then(() => log.waitDurable(tsn)).then(
      () => {
        if (tsn > this.durable) this.durable = tsn;
        this.progress.notify();
        this.feedbackDue.notify();
      },
      (error: unknown) => {
        this.failure ??= error;
        this.note('error', `the standby's binlog failed: ${(error as Error).message}; it stops following`);
        this.stream?.abort();
        throw error;
      },
    );
    this.lastAppend.catch(() => undefined);
  }

  /** Replays what is durable here and safe by the primary's word, in TSN order. */
  private async replayLoop(): Promise<void> {
    const log = this.store.replicationLog;
    while (!this.stopped || this.promoting) {
      const target = this.promoting ? this.durable : Math.min(this.durable, this.safe);
      const from = this.store.appliedTsn + 1;
      if (this.failure) return;
      if (from > target) {
        if (this.promoting && this.durable === this.written) return;
        await this.progress.wait(1000, this.promoting ? undefined : this.stopSignal);
        continue;
      }
      try {
        // Drop what is already replayed (a restart replays from the binlog at open).
        while (this.queue.length > 0 && this.queueFirst < from) {
          this.queueBytes -= this.queue.shift()!.length;
          this.queueFirst++;
        }
        if (this.queue.length > 0 && this.queueFirst === from && target < this.queueFirst + this.queue.length) {
          for (let tsn = from; tsn <= target; tsn++) {
            const payload = this.queue.shift()!;
            this.queueBytes -= payload.length;
            this.queueFirst++;
            await this.store.replayShipped(tsn, payload);
          }
        } else {
          for await (const record of log.read(from, { throughTsn: target })) await this.store.replayShipped(record.tsn, record.payload);
        }
      } catch (error) {
        this.failure ??= error;
        this.note('error', `replay failed: ${(error as Error).message}; the standby stops`);
        this.stream?.abort();
        return;
      }
      // Reported once the engine holds it (what remote_apply waits for), not merely queued.
      await this.store.waitReplayed(target, 2 ** 31 - 1);
      while (this.arrivals.length > 0 && this.arrivals[0]![0] <= target) this.arrivals.shift();
      this.feedbackDue.notify();
    }
  }

  private async feedbackLoop(): Promise<void> {
    while (!this.stopped) {
      await this.feedbackDue.wait(this.options.feedbackIntervalMs, this.stopSignal);
      if (this.stopped || this.phaseNow !== 'streaming') continue;
      const report: Feedback = { name: this.options.name, term: this.terms.term, written: this.written, durable: this.durable, replayed: this.store.replayedTsn };
      try {
        await this.link.feedback(report);
        this.counters.feedbacks++;
      } catch (error) {
        this.note('warn', `feedback to ${this.link.primary} failed: ${(error as Error).message}`);
      }
    }
  }

  /**
   * Turns this standby into a primary's store: stops following, replays everything durable
   * here, raises the term (persisted) and takes writes. Returns the new term and last TSN.
   */
  async promote(): Promise<{ term: number; tsn: number }> {
    if (this.phaseNow === 'promoting' || this.phaseNow === 'promoted') throw new DocketError(DocketErrorCode.REPLICATION_ROLE, 'this server is already being promoted');
    if (this.failure) throw new DocketError(DocketErrorCode.READ_ONLY, `this standby failed and cannot be promoted: ${(this.failure as Error).message}`);
    this.phaseNow = 'promoting';
    this.promoting = true;
    await this.stop();
    await this.lastAppend.catch(() => undefined);
    this.progress.notify();
    await this.replaying;
    await this.store.waitReplayed(this.store.lastTsn, 2 ** 31 - 1);
    if (this.failure) throw new DocketError(DocketErrorCode.READ_ONLY, `replay failed during promotion: ${(this.failure as Error).message}`);
    const tsn = this.store.lastTsn;
    const term = await this.terms.promote(tsn);
    await this.store.takeWrites();
    this.promoting = false;
    this.phaseNow = 'promoted';
    this.note('info', `promoted to primary in term ${term} at TSN ${tsn}`);
    return { term, tsn };
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.stream?.abort();
    this.feedbackDue.notify();
    await this.running;
    await this.feeding;
  }

  async close(): Promise<void> {
    await this.stop();
    this.progress.notify();
    await this.replaying;
    await this.lastAppend.catch(() => undefined);
    if (this.phaseNow !== 'promoted') this.phaseNow = 'closed';
  }

  stats(): object {
    const now = Date.now();
    const replayed = this.store.replayedTsn;
    const oldest = this.arrivals[0];
    const rebuild = this.options.rebuildStats?.();
    return {
      role: this.phaseNow === 'promoted' ? 'primary' : 'standby',
      phase: this.phase,
      name: this.options.name,
      primary: this.link.primary,
      term: this.terms.term,
      writtenTsn: this.written,
      durableTsn: this.durable,
      replayedTsn: replayed,
      visibleTsn: this.visibleTsn,
      primaryDurableTsn: this.primaryDurable,
      safeTsn: this.safe,
      lagTsns: { written: Math.max(0, this.primaryDurable - this.written), durable: Math.max(0, this.primaryDurable - this.durable), replayed: Math.max(0, this.primaryDurable - replayed) },
      replayLagMs: oldest && oldest[0] > replayed ? now - oldest[1] : 0,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(rebuild ? { rebuild } : {}),
      ...this.counters,
    };
  }
}
