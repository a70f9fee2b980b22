// The primary's side of log shipping: binlog streams to standbys, their feedback, commit levels
// and the quorum, and the binlog they still need. Transport-free: the HTTP route
// (routes/replication.ts) and the simulation (test/replication/) drive it the same way.
//
// A stream ships only records durable in the primary's binlog, under either sync policy: a
// record a primary crash could take back is never on a standby (else the restarted primary
// would write a different record at that TSN in the same term). Under `periodic` a standby so
// trails by up to one sync interval, unless a write waits at a remote level (it asks for the sync).
//
// Invariant: a write waiting at a remote level is confirmed only by feedback naming a TSN at or
// past its own from `quorum` counted standbys, each of which started from a point checked to
// match this log (same TSN, same term: log matching), and reports in this term.

import { DocketError, DocketErrorCode } from '../errors.js';
import type { DocumentStore } from '../store.js';
import { encodeFrame, encodeHello, encodeStatus, FRAME_RECORD } from './frame.js';
import { Signal, type CommitLevel, type Feedback, type PullRequest } from './levels.js';
import type { TermFile } from './term.js';

export interface SourceOptions {
  /** The commit level of writes that name none. */
  readonly level: CommitLevel;
  /** ANY k: standbys that must confirm a write at a remote level. */
  readonly quorum: number;
  /** The standbys whose confirmations count (by name); empty: any. */
  readonly standbys: readonly string[];
  /** A standby not heard from for this long leaves the quorum. */
  readonly timeoutMs: number;
  /** How long a write waits for its level before 503 DOCKET_ERR_REPLICATION_TIMEOUT. */
  readonly waitMs: number;
  /** With fewer than `quorum` standbys in the quorum: refuse remote-level writes at once (fail), or let them wait (wait). */
  readonly onQuorumLoss: 'wait' | 'fail';
  /** Binlog bytes kept for standbys beyond what recovery needs; past it they need a checkpoint. */
  readonly retentionBytes: number;
  readonly segmentSizeBytes: number;
  /** Status frames this often on an idle stream (heartbeats carry the safe TSN). */
  readonly heartbeatMs: number;
  readonly log: (level: 'info' | 'warn', message: string, detail?: object) => void;
}

export interface StandbyState {
  readonly name: string;
  streams: number;
  connectedAtMs: number;
  lastHeardMs: number;
  inQuorum: boolean;
  from: number;
  written: number;
  durable: number;
  replayed: number;
}

interface Waiter {
  readonly tsn: number;
  readonly level: CommitLevel;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

const SAMPLES_MAX = 4096;
/** Recent records kept in memory to ship without reading the binlog back: at most this many, and bytes. */
const RECENT_RECORDS_MAX = 8192;
const RECENT_BYTES_MAX = 64 * 1024 * 1024;
/** Within a run of records, a STATUS frame after every this many bytes of them. */
export const STATUS_EVERY_BYTES = 128 * 1024;

export class ReplicationSource {
  private readonly standbys = new Map<string, StandbyState>();
  private readonly changed = new Signal();
  private readonly waiters = new Set<Waiter>();
  /** (durable TSN, when) pairs, ascending: how long ago a TSN became durable here (lag in time). */
  private readonly samples: [number, number][] = [];
  private readonly checker: NodeJS.Timeout;
  private closed = false;
  /** The last records appended, TSNs dense, oldest first (recentFirst is the TSN of recent[0]). */
  private recent: Buffer[] = [];
  private recentFirst = 0;
  private recentBytes = 0;
  readonly counters = { quorumLeaves: 0, quorumJoins: 0, timeouts: 0, refusedQuorumLost: 0, framesSent: 0, bytesSent: 0 };

  constructor(
    private readonly store: DocumentStore,
    private readonly terms: TermFile,
    readonly options: SourceOptions,
  ) {
    const log = store.replicationLog;
    this.samples.push([log.durableTsn, Date.now()]);
    log.onDurable = (tsn) => {
      this.samples.push([tsn, Date.now()]);
      if (this.samples.length > SAMPLES_MAX) this.samples.splice(0, this.samples.length - SAMPLES_MAX);
      this.changed.notify();
    };
    this.recentFirst = log.lastTsn + 1;
    log.onAppend = (tsn, payload) => this.remember(tsn, payload);
    store.retainBinlog(() => this.retainFrom());
    this.checker = setInterval(() => this.checkQuorum(), Math.max(10, Math.floor(options.timeoutMs / 4)));
    this.checker.unref();
  }

  get term(): number {
    return this.terms.term;
  }

  /**
   * Checks a standby's request and returns its stream: a HELLO frame, then every durable record
   * from `from` on, each as it becomes durable, with STATUS frames between. Throws (before any
   * frame) CHECKPOINT_NEEDED if the log no longer holds `from` or the standby's history diverged,
   * TERM_STALE if the standby knows a newer term than this server.
   */
  open(request: PullRequest, signal: AbortSignal): AsyncIterable<Buffer> {
    this.check(request);
    return this.stream(request, signal);
  }

  private check({ from, lastTerm, term, name }: PullRequest): void {
    if (this.closed) throw new DocketError(DocketErrorCode.UNAVAILABLE, 'the server is shutting down');
    if (term > this.terms.term) throw new DocketError(DocketErrorCode.REPLICATION_TERM_STALE, `standby ${name} knows term ${term}, newer than this server's ${this.terms.term}: this server was deposed and must rejoin as a standby`);
    const log = this.store.replicationLog;
    if (from - 1 > log.durableTsn) throw new DocketError(DocketErrorCode.CHECKPOINT_NEEDED, `standby ${name} holds TSNs through ${from - 1}, past this primary's durable ${log.durableTsn}: its history diverged; it needs a checkpoint`);
    const ours = this.terms.termOf(from - 1);
    if (ours !== lastTerm) throw new DocketError(DocketErrorCode.CHECKPOINT_NEEDED, `standby ${name} wrote TSN ${from - 1} in term ${lastTerm}, this primary in term ${ours}: its history diverged; it needs a checkpoint`);
    if (from < log.firstTsn && from <= log.lastTsn) throw new DocketError(DocketErrorCode.CHECKPOINT_NEEDED, `standby ${name} needs TSN ${from} but the binlog starts at ${log.firstTsn} (purged): it needs a checkpoint`);
  }

  private async *stream(request: PullRequest, signal: AbortSignal): AsyncGenerator<Buffer> {
    const state = this.connect(request);
    try {
      yield this.sent(encodeHello(this.terms.term, request.from));
      let next = request.from;
      let lastStatus = '';
      while (!signal.aborted && !this.closed) {
        const log = this.store.replicationLog;
        const durable = log.durableTsn;
        if (next <= durable) {
          if (next < log.firstTsn) throw new DocketError(DocketErrorCode.CHECKPOINT_NEEDED, `standby ${request.name} fell behind the binlog's retention (it starts at ${log.firstTsn}, the standby needs ${next}): it needs a checkpoint`);
          let sinceStatus = 0;
          for await (const record of this.records(next, durable)) {
            yield this.sent(encodeFrame(FRAME_RECORD, this.terms.termOf(record.tsn), record.tsn, record.payload));
            next = record.tsn + 1;
            if (signal.aborted) return;
            // A long run (a standby catching up) carries the safe TSN along, so the standby
            // replays while it still receives rather than after the whole run.
            sinceStatus += record.payload.length;
            if (sinceStatus >= STATUS_EVERY_BYTES) {
              sinceStatus = 0;
              lastStatus = `${log.durableTsn} ${this.safeTsn()}`;
              yield this.sent(encodeStatus(this.terms.term, log.durableTsn, this.safeTsn()));
            }
          }
        }
        const status = `${log.durableTsn} ${this.safeTsn()}`;
        if (status !== lastStatus || next > log.durableTsn) {
          lastStatus = status;
          yield this.sent(encodeStatus(this.terms.term, log.durableTsn, this.safeTsn()));
        }
        if (next > this.store.replicationLog.durableTsn) await this.changed.wait(this.options.heartbeatMs, signal);
      }
    } finally {
      this.disconnect(state);
    }
  }

  private remember(tsn: number, payload: Buffer): void {
    if (tsn !== this.recentFirst + this.recent.length) {
      this.recent = [];
      this.recentFirst = tsn;
      this.recentBytes = 0;
    }
    this.recent.push(payload);
    this.recentBytes += payload.length;
    while (this.recent.length > 1 && (this.recent.length > RECENT_RECORDS_MAX || this.recentBytes > RECENT_BYTES_MAX)) {
      this.recentBytes -= this.recent.shift()!.length;
      this.recentFirst++;
    }
  }

  /** Records from..through: from memory when all are there, else read from the binlog. */
  private async *records(from: number, through: number): AsyncGenerator<{ tsn: number; payload: Buffer }> {
    if (from >= this.recentFirst && through < this.recentFirst + this.recent.length) {
      const first = this.recentFirst;
      const batch = this.recent.slice(from - first, through - first + 1);
      for (let i = 0; i < batch.length; i++) yield { tsn: from + i, payload: batch[i]! };
      return;
    }
    for await (const record of this.store.replicationLog.read(from, { throughTsn: through })) yield record;
  }

  private sent(frame: Buffer): Buffer {
    this.counters.framesSent++;
    this.counters.bytesSent += frame.length;
    return frame;
  }

  private connect(request: PullRequest): StandbyState {
    let state = this.standbys.get(request.name);
    const now = Date.now();
    if (!state) {
      state = { name: request.name, streams: 0, connectedAtMs: now, lastHeardMs: now, inQuorum: false, from: request.from, written: request.from - 1, durable: request.from - 1, replayed: 0 };
      this.standbys.set(request.name, state);
    }
    state.streams++;
    state.connectedAtMs = state.lastHeardMs = now;
    state.from = request.from;
    // What it holds now is what it asked past: its log matches ours through from - 1.
    state.written = state.durable = request.from - 1;
    this.options.log('info', `standby ${request.name} connected, streaming from TSN ${request.from}`);
    this.checkQuorum();
    return state;
  }

  private disconnect(state: StandbyState): void {
    state.streams--;
    if (state.streams === 0) this.options.log('info', `standby ${state.name} disconnected at durable TSN ${state.durable}`);
    this.checkQuorum();
  }

  /** Feedback from a standby; ignored unless it is in this term and streaming. */
  feedback(report: Feedback): void {
    if (report.term !== this.terms.term) throw new DocketError(DocketErrorCode.REPLICATION_TERM_STALE, `feedback in term ${report.term}; this server is in term ${this.terms.term}`);
    const state = this.standbys.get(report.name);
    if (!state || state.streams === 0) return;
    const last = this.store.replicationLog.durableTsn;
    state.lastHeardMs = Date.now();
    // Never more than was shipped; never backwards within a stream.
    state.written = Math.max(state.written, Math.min(report.written, last));
    state.durable = Math.max(state.durable, Math.min(report.durable, state.written));
    state.replayed = Math.max(state.replayed, Math.min(report.replayed, state.durable));
    this.checkQuorum();
    this.settleWaiters();
    this.changed.notify(); // The safe TSN may have moved.
  }

  private counted(state: StandbyState): boolean {
    return this.options.standbys.length === 0 || this.options.standbys.includes(state.name);
  }

  /** Updates who is in the quorum (streaming and heard from within timeoutMs), visibly. */
  private checkQuorum(): void {
    const now = Date.now();
    for (const state of this.standbys.values()) {
      const inQuorum = state.streams > 0 && now - state.lastHeardMs <= this.options.timeoutMs && this.counted(state);
      if (inQuorum === state.inQuorum) continue;
      state.inQuorum = inQuorum;
      if (inQuorum) this.counters.quorumJoins++;
      else this.counters.quorumLeaves++;
      this.options.log(inQuorum ? 'info' : 'warn', `standby ${state.name} ${inQuorum ? 'joined' : 'left'} the quorum (${this.inQuorum()} of ${this.options.quorum} needed)`, { standby: state.name, durable: state.durable });
    }
    if (this.options.onQuorumLoss === 'fail' && this.inQuorum() < this.options.quorum) {
      for (const waiter of this.waiters) this.settle(waiter, this.timeoutError(waiter, 'the quorum was lost while it waited'));
    }
  }

  inQuorum(): number {
    let count = 0;
    for (const state of this.standbys.values()) if (state.inQuorum) count++;
    return count;
  }

  /** Refuses a write before it is made if its level cannot be met now and the server fails fast. */
  admit(level: CommitLevel): void {
    if (level === 'local' || this.options.onQuorumLoss !== 'fail') return;
    const have = this.inQuorum();
    if (have >= this.options.quorum) return;
    this.counters.refusedQuorumLost++;
    throw new DocketError(DocketErrorCode.REPLICATION_QUORUM_LOST, `the write needs ${level} on ${this.options.quorum} standby(s) but ${have} are in the quorum; it was not made`);
  }

  /** Resolves once `tsn` meets `level`; rejects with REPLICATION_TIMEOUT (the write stays committed here). */
  waitFor(tsn: number, level: CommitLevel): Promise<void> {
    if (level === 'local' || this.confirmed(tsn, level)) return Promise.resolve();
    if (this.options.onQuorumLoss === 'fail' && this.inQuorum() < this.options.quorum) return Promise.reject(this.timeoutError({ tsn, level }, 'the quorum is lost'));
    // Under periodic sync nothing past the primary's durable TSN is shipped: ask for the sync now.
    this.store.replicationLog.waitDurable(tsn).catch(() => undefined);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { tsn, level, resolve, reject, timer: setTimeout(() => this.settle(waiter, this.timeoutError(waiter, `not confirmed within ${this.options.waitMs} ms`)), this.options.waitMs) };
      this.waiters.add(waiter);
    });
  }

  private timeoutError(waiter: { tsn: number; level: CommitLevel }, why: string): DocketError {
    this.counters.timeouts++;
    return new DocketError(DocketErrorCode.REPLICATION_TIMEOUT, `the write is committed on the primary at TSN ${waiter.tsn} but not confirmed at ${waiter.level} by ${this.options.quorum} standby(s): ${why}`);
  }

  private settle(waiter: Waiter, error?: DocketError): void {
    if (!this.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    if (error) waiter.reject(error);
    else waiter.resolve();
  }

  private settleWaiters(): void {
    for (const waiter of this.waiters) if (this.confirmed(waiter.tsn, waiter.level)) this.settle(waiter);
  }

  private confirmed(tsn: number, level: CommitLevel): boolean {
    if (this.store.replicationLog.durableTsn < tsn) return false;
    let count = 0;
    for (const state of this.standbys.values()) {
      if (!this.counted(state) || state.streams === 0) continue;
      const at = level === 'remote_write' ? state.written : level === 'remote_flush' ? state.durable : state.replayed;
      if (at >= tsn) count++;
    }
    return count >= this.options.quorum;
  }

  /**
   * The last TSN a standby may show: one a failover at the configured level cannot lose. For
   * remote levels, the k-th highest durable (written, for remote_write) TSN among the counted
   * standbys; for local, the primary's durable TSN.
   */
  safeTsn(): number {
    const durable = this.store.replicationLog.durableTsn;
    const { level, quorum } = this.options;
    if (level === 'local' || quorum === 0) return durable;
    const marks: number[] = [];
    for (const state of this.standbys.values()) if (this.counted(state)) marks.push(level === 'remote_write' ? state.written : state.durable);
    if (marks.length < quorum) return 0;
    marks.sort((a, b) => b - a);
    return Math.min(durable, marks[quorum - 1]!);
  }

  /** The oldest TSN a streaming standby still needs, unless keeping it passes the retention bound. */
  private retainFrom(): number {
    let from = Infinity;
    for (const state of this.standbys.values()) if (state.streams > 0) from = Math.min(from, state.durable + 1);
    if (from === Infinity) return from;
    const { segments } = this.store.replicationLog.stats();
    if (segments * this.options.segmentSizeBytes > this.options.retentionBytes) {
      this.options.log('warn', `binlog kept for standbys passes ${this.options.retentionBytes} bytes: purging; a standby behind TSN ${from} will need a checkpoint`);
      return Infinity;
    }
    return from;
  }

  /** How long ago the first record after `tsn` became durable here (0 if none is waiting). */
  lagMs(tsn: number): number {
    const samples = this.samples;
    if (tsn >= samples[samples.length - 1]![0]) return 0;
    let low = 0;
    let high = samples.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (samples[middle]![0] > tsn) high = middle;
      else low = middle + 1;
    }
    return Date.now() - samples[low]![1];
  }

  stats(): object {
    const durable = this.store.replicationLog.durableTsn;
    const now = Date.now();
    return {
      role: 'primary',
      term: this.terms.term,
      level: this.options.level,
      quorum: this.options.quorum,
      inQuorum: this.inQuorum(),
      onQuorumLoss: this.options.onQuorumLoss,
      durableTsn: durable,
      safeTsn: this.safeTsn(),
      waitingWrites: this.waiters.size,
      ...this.counters,
      standbys: [...this.standbys.values()].map((s) => ({
        name: s.name,
        connected: s.streams > 0,
        inQuorum: s.inQuorum,
        from: s.from,
        writtenTsn: s.written,
        durableTsn: s.durable,
        replayedTsn: s.replayed,
        lagTsns: { written: durable - s.written, durable: durable - s.durable, replayed: durable - s.replayed },
        lagMs: { written: this.lagMs(s.written), durable: this.lagMs(s.durable), replayed: this.lagMs(s.replayed) },
        lastHeardMsAgo: now - s.lastHeardMs,
      })),
    };
  }

  /** Per standby figures for /metrics. */
  standbyStates(): readonly StandbyState[] {
    return [...this.standbys.values()];
  }

  close(): void {
    this.closed = true;
    clearInterval(this.checker);
    this.changed.notify();
    for (const waiter of this.waiters) this.settle(waiter, new DocketError(DocketErrorCode.UNAVAILABLE, `the server is shutting down; the write at TSN ${waiter.tsn} is committed here but not confirmed at ${waiter.level}`));
    this.store.replicationLog.onDurable = undefined;
    this.store.replicationLog.onAppend = undefined;
    this.recent = [];
    this.store.retainBinlog(undefined);
  }
}
