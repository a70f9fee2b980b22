// Starts a server's replication role once its store is open (before it serves): a standby with
// --replica-of (writes refused from the first request on), a primary otherwise.

import * as os from 'node:os';
import * as path from 'node:path';
import { RealFileSystem, type FileSystem } from '../storage/index.js';
import { BINLOG_SEGMENT_SIZE_BYTES_DEFAULT } from '../src/binlog/binlog.js';
import type { DocumentStore } from '../src/store.js';
import { HttpPrimaryLink } from '../src/replication/http-link.js';
import { ReplicationNode } from '../src/replication/node.js';
import { TermFile } from '../src/replication/term.js';
import type { Config } from './config.js';

export type ReplicationLog = (level: 'info' | 'warn' | 'error', message: string, detail?: object) => void;

/** Reconnect backoff of a standby, and how often it reports when nothing changes. */
export const STANDBY_BACKOFF_MIN_MS = 100;
export const STANDBY_BACKOFF_MAX_MS = 5_000;
export const HEARTBEAT_MS = 1_000;
/** Records a standby has appended but not yet made durable before it reads the stream no further. */
export const STANDBY_IN_FLIGHT_RECORDS_MAX = 16_384;

export async function startReplication(store: DocumentStore, config: Readonly<Config>, options: { fileSystem?: FileSystem; segmentSizeBytes?: number; log: ReplicationLog }): Promise<ReplicationNode> {
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
  const link = new HttpPrimaryLink(config.replicaOf, config.replicaToken === '' ? undefined : config.replicaToken, config.replicationTimeoutMs);
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
      onCheckpointNeeded: bootstrapFromCheckpoint,
    },
  });
}

/**
 * THE SEAM for the checkpoint bootstrap (built on the `checkpoint` branch, not here): a standby
 * that cannot follow its primary's log (empty while the primary purged what it needs, or with a
 * diverged history) would fetch a checkpoint here, replace its data directory with it, and
 * resume following from the checkpoint's TSN. Until then the standby keeps refusing, visibly:
 * /stats shows phase `checkpoint-needed` and the log says why.
 */
async function bootstrapFromCheckpoint(): Promise<void> {
  // Not built: see docs/REPLICATION.md, "Checkpoints".
}
