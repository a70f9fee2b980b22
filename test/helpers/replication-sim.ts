// An in-process replication cluster for seeded simulation: a primary and standbys, each a
// DocumentStore on its own simulated file layer (storage/sim-file-system.ts), joined by a
// simulated transport that drops, duplicates, reorders, delays, corrupts and splits frames and
// partitions links. One scenario (runScenario) drives writes at a commit level and reads on the
// standbys through faults (standby crashes with damage included), kills the primary, promotes
// the most advanced standby, rejoins everyone to it, and returns what the invariants need.

import { DAMAGES, mulberry32, SimFileSystem, type Damage } from '../../storage/sim-file-system.js';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import { DocumentStore } from '../../src/store.js';
import type { CommitLevel, Feedback, PullRequest } from '../../src/replication/levels.js';
import { ReplicationNode } from '../../src/replication/node.js';
import type { SourceOptions } from '../../src/replication/source.js';
import type { PrimaryLink, StandbyOptions } from '../../src/replication/standby.js';
import { TermFile } from '../../src/replication/term.js';

type Random = () => number;

export interface NetFaults {
  readonly drop: number;
  readonly duplicate: number;
  readonly reorder: number;
  readonly corrupt: number;
  readonly split: number;
  readonly delay: number;
  readonly feedbackDrop: number;
}

const DIRECTORY = '/db';

export class Node {
  store!: DocumentStore;
  node!: ReplicationNode;
  checkpointNeeded: DocketError | undefined;
  private checkpointWaiters: (() => void)[] = [];
  /** Reads seen here: [collection, id, revision (TSN), JSON]. */
  readonly seen: [string, string, number, string][] = [];

  constructor(
    readonly name: string,
    public fs: SimFileSystem,
  ) {}

  async open(): Promise<void> {
    this.store = await DocumentStore.open({ directory: DIRECTORY, fileSystem: this.fs, binlogSegmentSizeBytes: 64 * 1024, epochCheckIntervalMs: 0 });
  }

  async start(sourceOptions: SourceOptions, standby?: { link: PrimaryLink; options: Omit<StandbyOptions, 'onCheckpointNeeded'> }): Promise<void> {
    const terms = await TermFile.open(this.fs, DIRECTORY);
    const onCheckpointNeeded = async (error: DocketError): Promise<void> => {
      this.checkpointNeeded = error;
      for (const wake of this.checkpointWaiters.splice(0)) wake();
    };
    this.node = new ReplicationNode(this.store, terms, sourceOptions, standby ? { link: standby.link, options: { ...standby.options, onCheckpointNeeded } } : undefined);
  }

  /** Resolves once this standby was refused for want of a checkpoint. */
  whenCheckpointNeeded(): Promise<void> {
    if (this.checkpointNeeded) return Promise.resolve();
    return new Promise((resolve) => this.checkpointWaiters.push(resolve));
  }

  /** The records of this node's binlog, by TSN (payload bytes). */
  async log(): Promise<Map<number, Buffer>> {
    const records = new Map<number, Buffer>();
    const binlog = this.store.replicationLog;
    for await (const record of binlog.read(binlog.firstTsn, { throughTsn: binlog.durableTsn })) records.set(record.tsn, Buffer.from(record.payload));
    return records;
  }

  /** Every document of every collection: `collection/id` -> JSON. */
  async documents(): Promise<Map<string, string>> {
    const all = new Map<string, string>();
    for (const { name } of this.store.listCollections()) {
      let after: string | undefined;
      for (;;) {
        const page = await this.store.list(name, { limit: 1000, ...(after !== undefined ? { after } : {}) });
        for (const doc of page.documents) all.set(`${name}/${doc.id}`, doc.json);
        if (page.next === undefined) break;
        after = page.next;
      }
    }
    return all;
  }
}

/** The simulated network: a link per standby to whichever node is the primary now. */
export class Net {
  primary: Node | undefined;
  readonly partitioned = new Set<string>();
  framesDropped = 0;
  framesCorrupted = 0;
  framesDuplicated = 0;
  framesReordered = 0;

  constructor(
    private readonly random: Random,
    public faults: NetFaults,
  ) {}

  link(name: string): PrimaryLink {
    return new SimLink(this, name, this.random);
  }
}

class SimLink implements PrimaryLink {
  readonly primary = 'sim://primary';

  constructor(
    private readonly net: Net,
    private readonly name: string,
    private readonly random: Random,
  ) {}

  private source() {
    const node = this.net.primary;
    if (!node || this.net.partitioned.has(this.name)) throw new Error(`sim: ${this.name} cannot reach the primary`);
    const source = node.node.source;
    if (!source) throw new DocketError(DocketErrorCode.REPLICATION_ROLE, 'sim: not a primary');
    return source;
  }

  async *pull(request: PullRequest, signal: AbortSignal): AsyncIterable<Buffer> {
    const source = this.source();
    const primary = this.net.primary;
    await tick();
    const inner = new AbortController();
    const stop = (): void => inner.abort();
    signal.addEventListener('abort', stop, { once: true });
    try {
      let held: Buffer | undefined;
      for await (const frame of source.open(request, inner.signal)) {
        if (this.net.primary !== primary || this.net.partitioned.has(this.name)) throw new Error('sim: the link broke');
        const faults = this.net.faults;
        if (this.random() < faults.delay) await new Promise((resolve) => setTimeout(resolve, 1 + Math.floor(this.random() * 3)));
        let out = [frame];
        const roll = this.random();
        if (roll < faults.drop) {
          this.net.framesDropped++;
          continue;
        } else if (roll < faults.drop + faults.duplicate) {
          this.net.framesDuplicated++;
          out = [frame, frame];
        } else if (roll < faults.drop + faults.duplicate + faults.corrupt) {
          this.net.framesCorrupted++;
          const copy = Buffer.from(frame);
          copy[Math.floor(this.random() * copy.length)]! ^= 1 << Math.floor(this.random() * 8);
          out = [copy];
        } else if (roll < faults.drop + faults.duplicate + faults.corrupt + faults.reorder) {
          if (held === undefined) {
            held = frame;
            continue;
          }
          this.net.framesReordered++;
          out = [frame, held];
          held = undefined;
        }
        for (const piece of out) {
          if (piece.length > 1 && this.random() < faults.split) {
            const cut = 1 + Math.floor(this.random() * (piece.length - 1));
            yield piece.subarray(0, cut);
            yield piece.subarray(cut);
          } else {
            yield piece;
          }
        }
      }
    } finally {
      signal.removeEventListener('abort', stop);
      inner.abort();
    }
  }

  async feedback(report: Feedback): Promise<void> {
    const source = this.source();
    await tick();
    if (this.random() < this.net.faults.feedbackDrop) throw new Error('sim: feedback lost');
    if (this.net.primary?.node.source !== source) throw new Error('sim: the primary changed');
    source.feedback(report);
  }
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export const SIM_TIMING = { timeoutMs: 100, heartbeatMs: 10, feedbackIntervalMs: 10, backoffMinMs: 1, backoffMaxMs: 20, waitMs: 60 };

export function sourceOptions(level: CommitLevel, quorum: number, onQuorumLoss: 'wait' | 'fail' = 'wait'): SourceOptions {
  return {
    level,
    quorum,
    standbys: [],
    timeoutMs: SIM_TIMING.timeoutMs,
    waitMs: SIM_TIMING.waitMs,
    onQuorumLoss,
    retentionBytes: 2 ** 40,
    segmentSizeBytes: 64 * 1024,
    heartbeatMs: SIM_TIMING.heartbeatMs,
    log: () => undefined,
  };
}

export function standbyOptions(name: string): Omit<StandbyOptions, 'onCheckpointNeeded'> {
  return { name, backoffMinMs: SIM_TIMING.backoffMinMs, backoffMaxMs: SIM_TIMING.backoffMaxMs, feedbackIntervalMs: SIM_TIMING.feedbackIntervalMs, inFlightRecordsMax: 64, log: () => undefined };
}

export interface Acknowledged {
  readonly tsn: number;
  readonly level: CommitLevel;
  readonly key: string;
  /** The document's JSON after the write, or null for a delete. */
  readonly json: string | null;
}

export interface ScenarioResult {
  readonly seed: number;
  readonly level: CommitLevel;
  readonly quorum: number;
  /** Writes acknowledged at their level (remote ones confirmed by the quorum). */
  readonly acknowledged: Acknowledged[];
  /** Every write the primary committed locally, by TSN: its document key and JSON. */
  readonly committed: Map<number, { key: string; json: string | null }>;
  /** The old primary's durable log when it died (after its crash damage). */
  readonly primaryLog: Map<number, Buffer>;
  /** Each standby's log just before promotion. */
  readonly standbyLogs: Map<string, Map<number, Buffer>>;
  readonly promoted: string;
  readonly promotedTsn: number;
  readonly promotedTerm: number;
  /** Per node: its documents once everything healed and caught up; the old primary's only if it could rejoin. */
  readonly finalDocuments: Map<string, Map<string, string>>;
  /** Whether the old primary, restarted as a standby, was refused for a diverged history. */
  readonly oldPrimaryDiverged: boolean;
  readonly oldPrimaryLastTsn: number;
  readonly seen: Map<string, [string, string, number, string][]>;
  readonly standbyCrashes: number;
  readonly net: { dropped: number; corrupted: number; duplicated: number; reordered: number };
  /** Standbys that followed the new primary by a re-point (ReplicationNode.repoint), not a restart. */
  readonly repointed: number;
}

/** One seeded scenario; every node closed at the end. */
export async function runScenario(seed: number): Promise<ScenarioResult> {
  const random = mulberry32(Math.imul(seed, 0x9e3779b1) ^ 0x5bd1e995);
  random();
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const level = pick<CommitLevel>(['remote_flush', 'remote_flush', 'remote_apply', 'remote_write', 'local']);
  const quorum = pick([1, 1, 2]);
  const faultLevel = random();
  const faults: NetFaults = {
    drop: faultLevel * 0.04,
    duplicate: faultLevel * 0.04,
    reorder: faultLevel * 0.04,
    corrupt: faultLevel * 0.03,
    split: 0.2,
    delay: faultLevel * 0.2,
    feedbackDrop: faultLevel * 0.1,
  };
  const net = new Net(random, faults);
  const primary = new Node('p', new SimFileSystem());
  const standbys = [new Node('s1', new SimFileSystem()), new Node('s2', new SimFileSystem())];
  const options = sourceOptions(level, quorum);
  await primary.open();
  await primary.start(options);
  net.primary = primary;
  for (const standby of standbys) {
    await standby.open();
    await standby.start(options, { link: net.link(standby.name), options: standbyOptions(standby.name) });
  }

  const acknowledged: Acknowledged[] = [];
  const committed = new Map<number, { key: string; json: string | null }>();
  const collections = ['a', 'b'];
  for (const name of collections) {
    const { tsn } = await primary.store.createCollection(name);
    committed.set(tsn, { key: `!create/${name}`, json: null });
  }
  const writes = 20 + Math.floor(random() * 30);
  const writers = 1 + Math.floor(random() * 4);
  let issued = 0;
  let counter = 0;
  let standbyCrashes = 0;
  const crashStandby = random() < 0.5 ? pick(standbys) : undefined;
  const crashAt = Math.floor(random() * writes);
  const partitionAt = random() < 0.5 ? Math.floor(random() * writes) : -1;
  const partitioned = pick(standbys);
  // The primary stops taking writes near the end; sometimes every standby is cut off a little
  // before, so that it dies holding durable records no standby has (its history diverges).
  const lastWrite = writes - Math.floor(random() * 5);
  const isolateAt = random() < 0.4 ? lastWrite - 1 - Math.floor(random() * 4) : -1;
  let stopReads = false;

  const writer = async (): Promise<void> => {
    while (issued < lastWrite) {
      await tick(); // On the simulated disk a write is all microtasks: let timers and links run.
      const n = issued++;
      if (n === partitionAt) net.partitioned.add(partitioned.name);
      if (n === partitionAt + 10 && n < isolateAt) net.partitioned.delete(partitioned.name);
      if (n === isolateAt) for (const standby of standbys) net.partitioned.add(standby.name);
      if (crashStandby && n === crashAt) await crashAndRestart(crashStandby, net, options, random).then(() => standbyCrashes++);
      const collection = pick(collections);
      const id = `d${Math.floor(random() * 8)}`;
      const key = `${collection}/${id}`;
      const kind = random();
      let tsn: number;
      let json: string | null;
      try {
        if (kind < 0.15) {
          tsn = (await primary.store.delete(collection, id)).tsn;
          json = null;
        } else {
          const value = ++counter;
          const body = { v: value, [`f${value % 5}`]: `w${n}` };
          tsn = (await primary.store.put(collection, id, body)).tsn;
          json = JSON.stringify(body);
        }
      } catch (error) {
        if (error instanceof DocketError && error.code === DocketErrorCode.DOCUMENT_NOT_FOUND) continue;
        throw error;
      }
      committed.set(tsn, { key, json });
      try {
        await primary.node.source!.waitFor(tsn, level);
        acknowledged.push({ tsn, level, key, json });
      } catch (error) {
        if (!(error instanceof DocketError && error.code === DocketErrorCode.REPLICATION_TIMEOUT)) throw error;
      }
    }
  };
  const reader = async (node: Node): Promise<void> => {
    while (!stopReads) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (node.fs.crashed) continue;
      const collection = pick(collections);
      const id = `d${Math.floor(random() * 8)}`;
      try {
        const doc = await node.store.get(collection, id);
        if (doc) node.seen.push([collection, id, doc.revision, doc.json]);
      } catch (error) {
        // A standby mid-restart, or a collection whose create is not replayed yet.
        if (!(error instanceof DocketError)) continue;
      }
    }
  };
  const readers = standbys.map((node) => reader(node));
  await Promise.all(Array.from({ length: writers }, () => writer()));
  // The standbys catch up for a moment (or not at all), then the primary dies with damage.
  await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 20)));
  stopReads = true;
  await Promise.all(readers);
  primary.fs.crashNow();
  net.primary = undefined;
  primary.node.source!.close();
  net.partitioned.clear();
  const damage: Damage = pick(DAMAGES);
  const primaryImage = primary.fs.image(seed, damage);

  // Every standby is stopped where it is; the most advanced one is promoted (what a coordinator
  // reading each standby's durable TSN does). In even seeds the standbys are stopped by being
  // re-pointed (ReplicationNode.repoint, what POST /admin/replica-of does) to the primary to be:
  // the new stream reaches nobody until it is promoted, then the others follow it without a restart.
  const repointed = seed % 2 === 0;
  const standbyLogs = new Map<string, Map<number, Buffer>>();
  for (const standby of standbys) {
    if (repointed) await standby.node.repoint(net.link(standby.name));
    else await standby.node.standby!.close();
    standbyLogs.set(standby.name, await standby.log());
  }
  const promotedNode = standbys.reduce((best, node) => (node.store.lastTsn > best.store.lastTsn ? node : best));
  const others = standbys.filter((node) => node !== promotedNode);
  if (repointed) await promotedNode.node.close();
  // A promotion on a fresh standby object over the same store: the old one was closed above.
  // The new primary needs one confirmation: the old primary may not be able to rejoin.
  await promotedNode.start(sourceOptions(level, 1), { link: net.link(promotedNode.name), options: standbyOptions(promotedNode.name) });
  const { term: promotedTerm, tsn: promotedTsn } = await promotedNode.node.promote();
  net.primary = promotedNode;
  net.faults = { ...faults, drop: 0, duplicate: 0, reorder: 0, corrupt: 0, feedbackDrop: 0 };

  // The old primary comes back from its damaged image as a standby of the new one.
  const oldPrimary = new Node('p', primaryImage);
  await oldPrimary.open();
  const primaryLog = await oldPrimary.log();
  const oldPrimaryLastTsn = oldPrimary.store.lastTsn;
  await oldPrimary.start(options, { link: net.link('p'), options: standbyOptions('p') });
  if (!repointed) for (const node of others) await node.start(options, { link: net.link(node.name), options: standbyOptions(node.name) });

  // A few writes in the new term, confirmed by one standby at least.
  await promotedNode.store.createCollection('a'); // The promoted standby may not have had its create.
  for (let i = 0; i < 5; i++) await promotedNode.store.put('a', `new${i}`, { term: promotedTerm, i });
  const target = promotedNode.store.lastTsn;
  const followers = [...others];
  // Refused (a diverged history) or caught up in the new term: whichever comes first. A
  // refused standby never hears the new term (the refusal comes before the stream's hello).
  const refused = oldPrimary.whenCheckpointNeeded().then(() => false);
  const oldPrimaryRejoins = await Promise.race([
    refused,
    (async () => {
      if (!(await oldPrimary.store.waitReplayed(target, 5000))) throw new Error(`seed ${seed}: the old primary neither caught up nor was refused`);
      if (oldPrimary.node.terms.term >= promotedTerm) return true;
      return refused;
    })(),
  ]);
  if (oldPrimaryRejoins) followers.push(oldPrimary);
  for (const node of followers) if (!(await node.store.waitReplayed(target, 5000))) throw new Error(`seed ${seed}: ${node.name} did not catch up to TSN ${target} (at ${node.store.replayedTsn}): ${JSON.stringify(node.node.stats())} primary: ${JSON.stringify(promotedNode.node.stats())}`);
  const finalDocuments = new Map<string, Map<string, string>>();
  finalDocuments.set(promotedNode.name, await promotedNode.documents());
  for (const node of followers) finalDocuments.set(node.name, await node.documents());

  const seen = new Map(standbys.map((node) => [node.name, node.seen]));
  for (const node of [promotedNode, ...others, oldPrimary]) {
    await node.node.close();
    await node.store.close();
  }
  return {
    seed,
    level,
    quorum,
    acknowledged,
    committed,
    primaryLog,
    standbyLogs,
    promoted: promotedNode.name,
    promotedTsn,
    promotedTerm,
    finalDocuments,
    oldPrimaryDiverged: !oldPrimaryRejoins,
    repointed: repointed ? others.length : 0,
    oldPrimaryLastTsn,
    seen,
    standbyCrashes,
    net: { dropped: net.framesDropped, corrupted: net.framesCorrupted, duplicated: net.framesDuplicated, reordered: net.framesReordered },
  };
}

/** A standby's machine loses power (damage picked by the seed) and it restarts from the image. */
async function crashAndRestart(node: Node, net: Net, options: SourceOptions, random: Random): Promise<void> {
  node.fs.crashNow();
  await node.node.close().catch(() => undefined);
  const damage = DAMAGES[Math.floor(random() * DAMAGES.length)]!;
  node.fs = node.fs.image(Math.floor(random() * 2 ** 31), damage);
  await node.open();
  await node.start(options, { link: net.link(node.name), options: standbyOptions(node.name) });
}
