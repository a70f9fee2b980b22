// Starts a server's replication role once its store is open (before it serves): a standby with
// --replica-of (writes refused from the first request on), a primary otherwise.

import * as os from 'node:os';
import * as path from 'node:path';
import { RealFileSystem, type FileSystem } from '../storage/index.js';
import { BINLOG_SEGMENT_SIZE_BYTES_DEFAULT } from '../src/binlog/binlog.js';
import type { DocumentStore } from '../src/store.js';
import { HttpPrimaryLink, refusal } from '../src/replication/http-link.js';
import { ReplicationNode } from '../src/replication/node.js';
import { termStateOf, TermFile, type TermState } from '../src/replication/term.js';
import { COMPLETE_MARKER, INCOMPLETE_MARKER } from '../src/checkpoint/checkpoint.js';
import { installCheckpoint } from '../src/checkpoint/stream.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import { rm } from 'node:fs/promises';
import type { Config } from './config.js';

export type ReplicationLog = (level: 'info' | 'warn' | 'error', message: string, detail?: object) => void;

/** Reconnect backoff of a standby, and how often it reports when nothing changes. */
export const STANDBY_BACKOFF_MIN_MS = 100;
export const STANDBY_BACKOFF_MAX_MS = 5_000;
export const HEARTBEAT_MS = 1_000;
/** Records a standby has appended but not yet made durable before it reads the stream no further. */
export const STANDBY_IN_FLIGHT_RECORDS_MAX = 16_384;

export interface ReplicationStartOptions {
  readonly fileSystem?: FileSystem;
  readonly segmentSizeBytes?: number;
  readonly log: ReplicationLog;
  /** A standby that cannot follow its primary's log calls this (server/rebuild.ts rebuilds it in place). */
  readonly onCheckpointNeeded?: (error: DocketError) => Promise<void>;
  /** What /stats shows of rebuilds in place (server/rebuild.ts). */
  readonly rebuildStats?: () => { readonly state: string } | undefined;
}

export async function startReplication(store: DocumentStore, config: Readonly<Config>, options: ReplicationStartOptions): Promise<ReplicationNode> {
  const terms = await TermFile.open(options.fileSystem ?? new RealFileSystem(), path.resolve(config.dataDirectory));
  const heartbeatMs = Math.min(HEARTBEAT_MS, Math.max(10, Math.floor(config.replicationTimeoutMs / 3)));
  const sourceOptions = {
    level: config.commitLevel,
    quorum: config.commitQuorum,
    standbys: config.commitStandbys === '' ? [] : config.commitStandbys.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    timeoutMs: config.replicationTimeoutMs,
    waitMs: config.commitWaitMs,
    onQuorumLoss: config.onQuorumLoss,
    retentionBytes: config.replicationRetentionBytes,
    segmentSizeBytes: options.segmentSizeBytes ?? BINLOG_SEGMENT_SIZE_BYTES_DEFAULT,
    heartbeatMs,
    log: options.log,
  };
  if (config.replicaOf === '') return new ReplicationNode(store, terms, sourceOptions);
  const link = primaryLink(config);
  const name = config.replicaName === '' ? `${os.hostname()}:${config.port}` : config.replicaName;
  return new ReplicationNode(store, terms, sourceOptions, {
    link,
    options: {
      name,
      backoffMinMs: STANDBY_BACKOFF_MIN_MS,
      backoffMaxMs: STANDBY_BACKOFF_MAX_MS,
      feedbackIntervalMs: heartbeatMs,
      inFlightRecordsMax: STANDBY_IN_FLIGHT_RECORDS_MAX,
      log: options.log,
      ...(options.onCheckpointNeeded ? { onCheckpointNeeded: options.onCheckpointNeeded } : {}),
      ...(options.rebuildStats ? { rebuildStats: options.rebuildStats } : {}),
    },
  });
}

/** The HTTP link to the primary `config` names (--replica-of, --replica-token). */
export function primaryLink(config: Readonly<Config>): HttpPrimaryLink {
  return new HttpPrimaryLink(config.replicaOf, config.replicaToken === '' ? undefined : config.replicaToken, config.replicationTimeoutMs);
}

/** What seeding a standby did: the checkpoint's last TSN, its bytes, how long it took. */
export interface Seeded {
  readonly tsn: number;
  readonly bytes: number;
  readonly ms: number;
}

/**
 * A new standby (`--replica-of` with a data directory that is absent or empty) starts from a
 * checkpoint of its primary, streamed from GET /replication/checkpoint (flushed first, so it
 * holds almost no binlog), rather than replaying the primary's whole history, which the primary
 * may no longer hold. The term history comes with it and is written into the directory before
 * the checkpoint's COMPLETE marker, so the first pull (from the checkpoint's TSN + 1) passes the
 * primary's log-matching check. A seeding cut short leaves a directory marked incomplete; the
 * next start takes it as empty (it holds nothing else: installCheckpoint wrote it into an empty
 * directory) and seeds again. Resolves undefined when the directory already holds a store.
 */
export async function seedStandby(config: Readonly<Config>, log: ReplicationLog): Promise<Seeded | undefined> {
  const fileSystem = new RealFileSystem();
  const directory = path.resolve(config.dataDirectory);
  if (await fileSystem.exists(directory)) {
    const names = await fileSystem.list(directory);
    const cutShort = names.includes(INCOMPLETE_MARKER) && !names.includes(COMPLETE_MARKER);
    if (names.length > 0 && !cutShort) return undefined;
    if (cutShort) {
      log('warn', `${directory} holds a seeding from a checkpoint that was cut short: seeding again`);
      await rm(directory, { recursive: true, force: true });
    }
  }
  const started = Date.now();
  log('info', `seeding this standby from a checkpoint of ${config.replicaOf.replace(/\/+$/, '')}`);
  const seeded = await streamCheckpointInto(config, directory, log, started);
  log('info', `seeded from a checkpoint of ${config.replicaOf.replace(/\/+$/, '')} through TSN ${seeded.tsn} (${seeded.bytes} bytes in ${seeded.ms} ms); following from TSN ${seeded.tsn + 1}`, seeded);
  return seeded;
}

/**
 * Streams a checkpoint of the primary (GET /replication/checkpoint?flush=true) into `directory`
 * (absent or empty), with the primary's term history written before the checkpoint's COMPLETE
 * marker. Used to seed a new standby and to rebuild a running one (server/rebuild.ts).
 */
export async function streamCheckpointInto(config: Readonly<Config>, directory: string, log: ReplicationLog, started = Date.now(), onProgress?: (bytes: number, totalBytes: number) => void): Promise<Seeded> {
  const fileSystem = new RealFileSystem();
  const primary = config.replicaOf.replace(/\/+$/, '');
  const response = await fetch(`${primary}/replication/checkpoint?flush=true`, { headers: config.replicaToken === '' ? {} : { authorization: `Bearer ${config.replicaToken}` } });
  if (response.status !== 200 || !response.body) throw await refusal(response);
  let terms: TermState;
  try {
    terms = termStateOf(JSON.parse(response.headers.get('x-docket-term-history') ?? ''));
  } catch (error) {
    await response.body.cancel().catch(() => undefined);
    throw new DocketError(DocketErrorCode.CHECKPOINT_CORRUPT, `${primary} sent a checkpoint without a valid X-Docket-Term-History header: ${(error as Error).message}`);
  }
  let reported = 0;
  const descriptor = await installCheckpoint(
    response.body as unknown as AsyncIterable<Uint8Array>,
    { fileSystem, directory, beforeComplete: async (into) => (await TermFile.open(fileSystem, into)).save(terms) },
    ({ bytes, totalBytes }) => {
      onProgress?.(bytes, totalBytes);
      if (bytes < reported + SEED_PROGRESS_BYTES && bytes < totalBytes) return;
      reported = bytes;
      log('info', `checkpoint of ${primary}: ${Math.round(bytes / 2 ** 20)} of ${Math.round(totalBytes / 2 ** 20)} MiB`);
    },
  );
  return { tsn: descriptor.tsn, bytes: descriptor.files.reduce((sum, file) => sum + file.sizeBytes, 0), ms: Date.now() - started };
}

/** Seeding logs its progress every this many bytes. */
const SEED_PROGRESS_BYTES = 64 * 2 ** 20;
