// `docket token create|list|revoke`: the access tokens of a data directory (server/auth/tokens.ts).
// `create` prints the token alone on standard output, once (so `TOKEN=$(docket token create
// --role admin)` works), and what it made on standard error. A running server picks the
// change up within --token-reload-ms; no restart.

import { parseArgs } from 'node:util';
import { ROLES, isRole } from './roles.js';
import { createToken, isExpired, readTokens, revokeToken, TokenFileError } from './tokens.js';

export const TOKEN_HELP = `Usage: docket token <create|list|revoke> [options]

  docket token create --role ROLE [--name NAME] [--expires WHEN] [--data-dir DIR]
      makes a token and prints it, once: the server keeps only its scrypt hash.
      ROLE is one of:
        admin      everything: collections (create, drop) and every route below
        readwrite  read and write documents, bulk loads, the change feed, stats
        readonly   read documents, listings, the change feed, stats
        replica    pull the binlog (for standbys); no document reads or writes
      WHEN is a duration (90m, 12h, 30d) from now or an ISO 8601 time; default never.
  docket token list [--json] [--data-dir DIR]
      id, role, name, created, expires; never a secret.
  docket token revoke ID [--data-dir DIR]
      deletes the token; a running server refuses it within --token-reload-ms.

DIR is the server's --data-dir (default ./data, or DOCKET_DATA_DIR). Once the data directory
holds a token file, every route but /healthz, /openapi.yaml, /openapi.json and /docs needs a
token (Authorization: Bearer <token>), also after the last token is revoked.
`;

class UsageError extends Error {}

const DURATION = /^(\d+)(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration from `now` (90m, 12h, 30d) or an ISO 8601 time; it must lie in the future. */
export function parseExpiry(text: string, now: Date): Date {
  const duration = DURATION.exec(text);
  const when = duration ? new Date(now.getTime() + Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]) : new Date(text);
  if (Number.isNaN(when.getTime()) || (!duration && !/^\d{4}-\d{2}-\d{2}/.test(text))) throw new UsageError(`--expires: ${JSON.stringify(text)} is neither a duration (90m, 12h, 30d) nor an ISO 8601 time`);
  if (when.getTime() <= now.getTime()) throw new UsageError(`--expires: ${when.toISOString()} is not in the future`);
  return when;
}

/** Runs `docket token` with `argv` (after the command name); resolves with the exit status. */
export async function token(argv: string[], environment: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    if (argv.length === 0 || argv.includes('--help') || argv.includes('-h')) {
      process.stdout.write(TOKEN_HELP);
      return argv.length === 0 ? 2 : 0;
    }
    const [action, ...rest] = argv;
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { role: { type: 'string' }, name: { type: 'string' }, expires: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean', default: false } },
      });
    } catch (error) {
      throw new UsageError(`${(error as Error).message} (docket token --help)`);
    }
    const { values, positionals } = parsed;
    const dataDirectory = values['data-dir'] ?? (environment.DOCKET_DATA_DIR || './data');
    switch (action) {
      case 'create': {
        if (positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(positionals[0])}`);
        if (values.role === undefined || !isRole(values.role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
        const now = new Date();
        const expires = values.expires === undefined ? null : parseExpiry(values.expires, now);
        const { record, token } = await createToken(dataDirectory, { role: values.role, name: values.name ?? '', expires, now });
        process.stdout.write(`${token}\n`);
        process.stderr.write(
          `docket token: created ${record.id} (role ${record.role}${record.name ? `, name ${JSON.stringify(record.name)}` : ''}, expires ${record.expires ?? 'never'}) in ${dataDirectory}.\n` +
            'docket token: the line above is the token; it is not stored and cannot be shown again. Send it as `Authorization: Bearer <token>`.\n',
        );
        return 0;
      }
      case 'list': {
        if (positionals.length > 0) throw new UsageError(`unexpected ${JSON.stringify(positionals[0])}`);
        const tokens = (await readTokens(dataDirectory)) ?? [];
        const now = Date.now();
        const rows = tokens.map((record) => ({ id: record.id, role: record.role, name: record.name, created: record.created, expires: record.expires, expired: isExpired(record, now) }));
        if (values.json) {
          process.stdout.write(JSON.stringify(rows) + '\n');
          return 0;
        }
        if (rows.length === 0) process.stderr.write(`docket token: no tokens in ${dataDirectory}\n`);
        for (const row of rows) process.stdout.write(`${row.id}  ${row.role.padEnd(9)}  ${row.created}  ${row.expires === null ? 'never expires' : `${row.expired ? 'expired' : 'expires'} ${row.expires}`}  ${row.name}\n`);
        return 0;
      }
      case 'revoke': {
        if (positionals.length !== 1) throw new UsageError('revoke takes one token id (docket token list shows them)');
        const id = positionals[0]!.replace(/^dkt_([0-9a-f]{16})(_.*)?$/, '$1');
        if (!(await revokeToken(dataDirectory, id))) {
          process.stderr.write(`docket token: no token ${JSON.stringify(id)} in ${dataDirectory}\n`);
          return 1;
        }
        process.stderr.write(`docket token: revoked ${id}\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown action ${JSON.stringify(action)}: create, list or revoke`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`docket token: ${error.message}\n`);
      return 2;
    }
    if (error instanceof TokenFileError) {
      process.stderr.write(`docket token: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
