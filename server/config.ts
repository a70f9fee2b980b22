// Server configuration: every setting with its default, its flag and its environment variable,
// in one table that `docket serve --help`, the README and the tests read. Flags win over the
// environment, which wins over the defaults.

import * as limits from '../src/limits.js';
import type { Durability } from '../src/store.js';

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
