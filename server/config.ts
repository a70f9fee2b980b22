// Server configuration: every setting with its default, its flag and its environment variable,
// in one table that `docket serve --help`, the README and the tests read. Flags win over the
// environment, which wins over the defaults.

import * as limits from '../src/limits.js';
import type { Durability } from '../src/store.js';
import { COMMIT_LEVELS, type CommitLevel } from '../src/replication/levels.js';

export type SyncMode = 'immediate' | 'periodic';

export interface Config {
  host: string;
  port: number;
  dataDirectory: string;
  sync: SyncMode;
  syncIntervalMs: number;
  durability: Durability;
  documentCacheBytes: number;
  writeBufferBytes: number;
  bodyLimitBytes: number;
  bulkLineBytesMax: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  logLevel: string;
  tlsCert: string;
  tlsKey: string;
  connectionsMax: number;
  requestsInFlightMax: number;
  eventLoopDelayMaxMs: number;
  tokenReloadMs: number;
  replicaOf: string;
  replicaToken: string;
  replicaName: string;
  commitLevel: CommitLevel;
  commitQuorum: number;
  commitStandbys: string;
  commitWaitMs: number;
  onQuorumLoss: 'wait' | 'fail';
  replicationTimeoutMs: number;
  replicationRetentionBytes: number;
  readWaitMsMax: number;
}

export const DEFAULTS: Readonly<Config> = {
  host: '127.0.0.1',
  port: 8080,
  dataDirectory: './data',
  sync: 'immediate',
  syncIntervalMs: 100,
  durability: 'passive',
  documentCacheBytes: limits.DOCUMENT_CACHE_BYTES_DEFAULT,
  writeBufferBytes: limits.WRITE_BUFFER_BYTES_DEFAULT,
  bodyLimitBytes: limits.DOCUMENT_SIZE_BYTES_MAX,
  bulkLineBytesMax: limits.DOCUMENT_SIZE_BYTES_MAX,
  requestTimeoutMs: 300_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  logLevel: 'info',
  tlsCert: '',
  tlsKey: '',
  connectionsMax: 1024,
  requestsInFlightMax: 256,
  eventLoopDelayMaxMs: 1000,
  tokenReloadMs: 1000,
  replicaOf: '',
  replicaToken: '',
  replicaName: '',
  commitLevel: 'local',
  commitQuorum: 1,
  commitStandbys: '',
  commitWaitMs: 10_000,
  onQuorumLoss: 'wait',
  replicationTimeoutMs: 5_000,
  replicationRetentionBytes: 4 * 1024 * 1024 * 1024,
  readWaitMsMax: 5_000,
};

interface Setting {
  readonly key: keyof Config;
  readonly flag: string;
  readonly environment: string;
  readonly description: string;
  readonly parse: (text: string, flag: string) => Config[keyof Config];
}

export class ConfigError extends Error {}

function integer(min: number, max: number): (text: string, flag: string) => number {
  return (text, flag) => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isSafeInteger(value) || value < min || value > max) throw new ConfigError(`${flag} must be an integer ${min}..${max}, got ${JSON.stringify(text)}`);
    return value;
  };
}

function oneOf<T extends string>(...values: T[]): (text: string, flag: string) => T {
  return (text, flag) => {
    if (!(values as string[]).includes(text)) throw new ConfigError(`${flag} must be one of ${values.join(', ')}, got ${JSON.stringify(text)}`);
    return text as T;
  };
}

function text(value: string, flag: string): string {
  if (value === '') throw new ConfigError(`${flag} must not be empty`);
  return value;
}

const HOUR_MS = 3_600_000;

function url(value: string, flag: string): string {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${flag} must be a URL such as http://127.0.0.1:8080, got ${JSON.stringify(value)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError(`${flag} must be an http: or https: URL`);
  return value;
}

function name(value: string, flag: string): string {
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(value)) throw new ConfigError(`${flag} must be 1..64 of [A-Za-z0-9_.:-], got ${JSON.stringify(value)}`);
  return value;
}

export const SETTINGS: readonly Setting[] = [
  { key: 'host', flag: '--host', environment: 'DOCKET_HOST', description: 'address to listen on', parse: text },
  { key: 'port', flag: '--port', environment: 'DOCKET_PORT', description: 'TCP port (0 picks a free one)', parse: integer(0, 65535) },
  { key: 'dataDirectory', flag: '--data-dir', environment: 'DOCKET_DATA_DIR', description: 'where the store keeps its files', parse: text },
  { key: 'sync', flag: '--sync', environment: 'DOCKET_SYNC', description: 'binlog sync: immediate (ack after fdatasync) or periodic', parse: oneOf('immediate', 'periodic') },
  { key: 'syncIntervalMs', flag: '--sync-interval-ms', environment: 'DOCKET_SYNC_INTERVAL_MS', description: 'fdatasync interval under --sync periodic', parse: integer(1, 60_000) },
  { key: 'durability', flag: '--durability', environment: 'DOCKET_DURABILITY', description: 'passive (no engine WAL), double (engine WAL too) or naive (unsafe)', parse: oneOf('passive', 'double', 'naive') },
  { key: 'documentCacheBytes', flag: '--document-cache-bytes', environment: 'DOCKET_DOCUMENT_CACHE_BYTES', description: 'memory for whole documents kept for reads (0: none)', parse: integer(0, 64 * 1024 * 1024 * 1024) },
  { key: 'writeBufferBytes', flag: '--write-buffer-bytes', environment: 'DOCKET_WRITE_BUFFER_BYTES', description: 'memory all memtables together hold before the largest is flushed', parse: integer(1024 * 1024, 64 * 1024 * 1024 * 1024) },
  { key: 'bodyLimitBytes', flag: '--body-limit-bytes', environment: 'DOCKET_BODY_LIMIT_BYTES', description: 'largest JSON request body', parse: integer(1024, 64 * 1024 * 1024) },
  { key: 'bulkLineBytesMax', flag: '--bulk-line-bytes-max', environment: 'DOCKET_BULK_LINE_BYTES_MAX', description: 'longest NDJSON line in a bulk request', parse: integer(1024, 64 * 1024 * 1024) },
  { key: 'requestTimeoutMs', flag: '--request-timeout-ms', environment: 'DOCKET_REQUEST_TIMEOUT_MS', description: 'time to receive a whole request, body included', parse: integer(1000, 24 * HOUR_MS) },
  { key: 'headersTimeoutMs', flag: '--headers-timeout-ms', environment: 'DOCKET_HEADERS_TIMEOUT_MS', description: 'time to receive the request headers', parse: integer(100, HOUR_MS) },
  { key: 'keepAliveTimeoutMs', flag: '--keep-alive-timeout-ms', environment: 'DOCKET_KEEP_ALIVE_TIMEOUT_MS', description: 'idle time before a keep-alive connection is closed', parse: integer(100, HOUR_MS) },
  { key: 'logLevel', flag: '--log-level', environment: 'DOCKET_LOG_LEVEL', description: 'pino log level', parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent') },
  { key: 'tlsCert', flag: '--tls-cert', environment: 'DOCKET_TLS_CERT', description: 'PEM certificate (chain) file: serve HTTPS (with --tls-key)', parse: text },
  { key: 'tlsKey', flag: '--tls-key', environment: 'DOCKET_TLS_KEY', description: 'PEM private key file of --tls-cert', parse: text },
  { key: 'connectionsMax', flag: '--connections-max', environment: 'DOCKET_CONNECTIONS_MAX', description: 'open connections before requests on new ones get 503 (0: no bound)', parse: integer(0, 1_000_000) },
  { key: 'requestsInFlightMax', flag: '--requests-in-flight-max', environment: 'DOCKET_REQUESTS_IN_FLIGHT_MAX', description: 'requests being served before more get 503 (0: no bound)', parse: integer(0, 1_000_000) },
  { key: 'eventLoopDelayMaxMs', flag: '--event-loop-delay-max-ms', environment: 'DOCKET_EVENT_LOOP_DELAY_MAX_MS', description: 'event-loop delay before requests get 503 (0: no bound)', parse: integer(0, HOUR_MS) },
  { key: 'replicaOf', flag: '--replica-of', environment: 'DOCKET_REPLICA_OF', description: 'serve as a hot standby of the primary at this URL (docs/REPLICATION.md)', parse: url },
  { key: 'replicaToken', flag: '--replica-token', environment: 'DOCKET_REPLICA_TOKEN', description: "a token of the primary's (role replica) this standby pulls with", parse: text },
  { key: 'replicaName', flag: '--replica-name', environment: 'DOCKET_REPLICA_NAME', description: 'the name this standby reports to its primary (default host:port)', parse: name },
  { key: 'commitLevel', flag: '--commit-level', environment: 'DOCKET_COMMIT_LEVEL', description: 'when a write is acknowledged: local, remote_write, remote_flush or remote_apply (X-Docket-Commit-Level overrides)', parse: oneOf(...COMMIT_LEVELS) },
  { key: 'commitQuorum', flag: '--commit-quorum', environment: 'DOCKET_COMMIT_QUORUM', description: 'ANY k: standbys that must confirm a write at a remote level', parse: integer(1, 64) },
  { key: 'commitStandbys', flag: '--commit-standbys', environment: 'DOCKET_COMMIT_STANDBYS', description: 'comma-separated standby names whose confirmations count (default: any)', parse: text },
  { key: 'commitWaitMs', flag: '--commit-wait-ms', environment: 'DOCKET_COMMIT_WAIT_MS', description: 'how long a write waits for its commit level before 503', parse: integer(1, HOUR_MS) },
  { key: 'onQuorumLoss', flag: '--on-quorum-loss', environment: 'DOCKET_ON_QUORUM_LOSS', description: 'with too few standbys in the quorum: wait (up to --commit-wait-ms) or fail (503 before writing)', parse: oneOf('wait', 'fail') },
  { key: 'replicationTimeoutMs', flag: '--replication-timeout-ms', environment: 'DOCKET_REPLICATION_TIMEOUT_MS', description: 'a standby silent this long leaves the quorum', parse: integer(100, HOUR_MS) },
  { key: 'replicationRetentionBytes', flag: '--replication-retention-bytes', environment: 'DOCKET_REPLICATION_RETENTION_BYTES', description: 'binlog kept for connected standbys, at most', parse: integer(0, 2 ** 50) },
  { key: 'readWaitMsMax', flag: '--read-wait-ms-max', environment: 'DOCKET_READ_WAIT_MS_MAX', description: 'longest a read naming a TSN (X-Docket-Min-TSN, min_tsn) waits for it', parse: integer(0, 60_000) },
  { key: 'tokenReloadMs', flag: '--token-reload-ms', environment: 'DOCKET_TOKEN_RELOAD_MS', description: 'how often the token file is checked for changes', parse: integer(0, HOUR_MS) },
];

/** Flags win over environment variables, which win over defaults. */
export function loadConfig(argv: readonly string[], environment: NodeJS.ProcessEnv): Config {
  const config: Config = { ...DEFAULTS };
  for (const setting of SETTINGS) {
    const value = environment[setting.environment];
    if (value !== undefined && value !== '') Object.assign(config, { [setting.key]: setting.parse(value, setting.environment) });
  }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = splitFlag(argv[i]!);
    const setting = SETTINGS.find((s) => s.flag === flag);
    if (!setting) throw new ConfigError(`unknown option ${flag}; see --help`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    Object.assign(config, { [setting.key]: setting.parse(value, flag) });
  }
  if (config.headersTimeoutMs > config.requestTimeoutMs) throw new ConfigError('--headers-timeout-ms must not exceed --request-timeout-ms');
  if ((config.tlsCert === '') !== (config.tlsKey === '')) throw new ConfigError('--tls-cert and --tls-key go together: give both, or neither');
  if (config.replicaOf === '' && (config.replicaToken !== '' || config.replicaName !== '')) throw new ConfigError('--replica-token and --replica-name are for a standby: give --replica-of too');
  return config;
}

function splitFlag(argument: string): [string, string | undefined] {
  const equals = argument.indexOf('=');
  return equals < 0 ? [argument, undefined] : [argument.slice(0, equals), argument.slice(equals + 1)];
}

export function helpText(): string {
  const width = Math.max(...SETTINGS.map((s) => s.flag.length)) + 10;
  const lines = SETTINGS.map((s) => `  ${`${s.flag} <value>`.padEnd(width)} ${s.description}\n  ${''.padEnd(width)} default ${DEFAULTS[s.key] === '' ? 'none' : JSON.stringify(DEFAULTS[s.key])}; env ${s.environment}`);
  return [
    'Usage: docket serve [options]',
    '',
    'Options:',
    ...lines,
    `  ${'--help'.padEnd(width)} this text`,
    '',
    'Access: with no token file in the data directory, a server on a loopback address is open;',
    'on any other address it refuses to start. `docket token create --role admin` makes a token.',
    '',
  ].join('\n');
}
