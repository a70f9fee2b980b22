// Server configuration: every setting with its default, its flag and its environment variable.

export interface Config {
  host: string;
  port: number;
  dataDirectory: string;
}

interface Setting {
  readonly key: keyof Config;
  readonly flag: string;
  readonly environment: string;
  readonly description: string;
  readonly parse: (text: string) => Config[keyof Config];
}

export const DEFAULTS: Config = { host: '127.0.0.1', port: 8080, dataDirectory: './data' };

function port(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new ConfigError(`port must be an integer 0..65535, got ${JSON.stringify(text)}`);
  return value;
}

export const SETTINGS: readonly Setting[] = [
  { key: 'host', flag: '--host', environment: 'DOCKET_HOST', description: 'address to listen on', parse: (text) => text },
  { key: 'port', flag: '--port', environment: 'DOCKET_PORT', description: 'TCP port (0 picks a free one)', parse: port },
  { key: 'dataDirectory', flag: '--data-dir', environment: 'DOCKET_DATA_DIR', description: 'where the store keeps its files', parse: (text) => text },
];

export class ConfigError extends Error {}

/** Flags win over environment variables, which win over defaults. */
export function loadConfig(argv: readonly string[], environment: NodeJS.ProcessEnv): Config {
  const config: Config = { ...DEFAULTS };
  for (const setting of SETTINGS) {
    const text = environment[setting.environment];
    if (text !== undefined && text !== '') Object.assign(config, { [setting.key]: setting.parse(text) });
  }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined];
    const setting = SETTINGS.find((s) => s.flag === flag);
    if (!setting) throw new ConfigError(`unknown option ${flag}; see --help`);
    const text = inline ?? argv[++i];
    if (text === undefined) throw new ConfigError(`${flag} needs a value`);
    Object.assign(config, { [setting.key]: setting.parse(text) });
  }
  return config;
}

export function helpText(): string {
  const lines = SETTINGS.map((s) => `  ${`${s.flag} <value>`.padEnd(22)} ${s.description} (default ${JSON.stringify(DEFAULTS[s.key])}; env ${s.environment})`);
  return ['Usage: docket serve [options]', '', 'Options:', ...lines, '  --help                 this text', ''].join('\n');
}
