// Access tokens: `dkt_<id>_<secret>`, 16 hex digits of id (how the server finds the record
// without trying every hash) and 43 base64url characters of secret (32 random bytes). The
// data directory's `tokens.json` holds, per token, its id, name, role, creation and expiry
// times and an scrypt hash of the secret with its own salt; never the secret itself, which is
// printed once, by `docket token create`. The file is replaced whole and durably (a temporary
// file written and fsynced, renamed over it, the directory fsynced), mode 0600.
//
// A running server re-reads the file when it changes (checked at most every --token-reload-ms),
// so tokens created or revoked while it runs take effect without a restart.

import { randomBytes, scrypt as scryptCallback, timingSafeEqual, createHash, type ScryptOptions } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { isRole, type Role } from './roles.js';

export const TOKENS_FILE = 'tokens.json';
const FORMAT = 'docket-tokens/1';
const TOKEN_PATTERN = /^dkt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const ID_PATTERN = /^[0-9a-f]{16}$/;
const SECRET_BYTES = 32;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** scrypt's cost: 16 MiB and some tens of ms a verification; a verified token is then cached. */
const SCRYPT_DEFAULT = { N: 16_384, r: 8, p: 1 } as const;
/** Distinct tokens being verified with scrypt at once, at most (the thread pool has 4 threads). */
const VERIFICATIONS_IN_FLIGHT_MAX = 4;

export interface TokenRecord {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  /** ISO 8601. */
  readonly created: string;
  /** ISO 8601, or null for a token that does not expire. */
  readonly expires: string | null;
  readonly scrypt: { readonly N: number; readonly r: number; readonly p: number; readonly salt: string; readonly hash: string };
}

interface TokensFile {
  readonly format: typeof FORMAT;
  readonly tokens: readonly TokenRecord[];
}

export class TokenFileError extends Error {}

export function tokensPath(dataDirectory: string): string {
  return path.join(dataDirectory, TOKENS_FILE);
}

/** The id and secret of a presented token, or undefined if it is not one in Docket's format. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const match = TOKEN_PATTERN.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

function scrypt(secret: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(secret, salt, HASH_BYTES, { ...options, maxmem: 64 * 1024 * 1024 }, (error, key) => (error ? reject(error) : resolve(key))));
}

/** Whether `secret` is the one `record` was created with: scrypt, compared in constant time. */
export async function verifySecret(record: TokenRecord, secret: string): Promise<boolean> {
  const { N, r, p, salt, hash } = record.scrypt;
  const expected = Buffer.from(hash, 'base64');
  const actual = await scrypt(secret, Buffer.from(salt, 'base64'), { N, r, p });
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export function isExpired(record: TokenRecord, nowMs: number): boolean {
  return record.expires !== null && Date.parse(record.expires) <= nowMs;
}

/** Reads the token file; undefined if there is none. Throws TokenFileError if it is damaged. */
export async function readTokens(dataDirectory: string): Promise<TokenRecord[] | undefined> {
  const file = tokensPath(dataDirectory);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TokenFileError(`cannot read ${file}: ${(error as Error).message}`);
  }
  return parseTokensFile(text, file);
}

function parseTokensFile(text: string, file: string): TokenRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new TokenFileError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  const body = parsed as Partial<TokensFile> | null;
  if (typeof body !== 'object' || body === null || body.format !== FORMAT || !Array.isArray(body.tokens)) throw new TokenFileError(`${file} is not a Docket token file (format ${FORMAT})`);
  body.tokens.forEach((record, index) => {
    const r = record as Partial<TokenRecord> | null;
    const ok =
      typeof r === 'object' && r !== null && typeof r.id === 'string' && ID_PATTERN.test(r.id) && typeof r.name === 'string' && typeof r.role === 'string' && isRole(r.role) &&
      typeof r.created === 'string' && (r.expires === null || (typeof r.expires === 'string' && !Number.isNaN(Date.parse(r.expires)))) &&
      typeof r.scrypt === 'object' && r.scrypt !== null && Number.isSafeInteger(r.scrypt.N) && Number.isSafeInteger(r.scrypt.r) && Number.isSafeInteger(r.scrypt.p) &&
      typeof r.scrypt.salt === 'string' && typeof r.scrypt.hash === 'string';
    if (!ok) throw new TokenFileError(`${file}: token ${index + 1} is malformed`);
  });
  return body.tokens as TokenRecord[];
}

/** Replaces the token file durably: temporary file, fsync, rename, fsync of the directory. */
export async function writeTokens(dataDirectory: string, tokens: readonly TokenRecord[]): Promise<void> {
  await fs.mkdir(dataDirectory, { recursive: true });
  const file = tokensPath(dataDirectory);
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const body: TokensFile = { format: FORMAT, tokens };
  const handle = await fs.open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(JSON.stringify(body, null, 2) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fs.rename(temporary, file);
  } catch (error) {
    await fs.unlink(temporary).catch(() => undefined);
    throw error;
  }
  const directory = await fs.open(dataDirectory, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}

export interface CreatedToken {
  readonly record: TokenRecord;
  /** The whole token, `dkt_<id>_<secret>`: shown once, stored nowhere. */
  readonly token: string;
}

/** How long a token command waits for another one's lock on the token file. */
const LOCK_WAIT_MS_MAX = 10_000;
const LOCK_RETRY_MS = 25;

/**
 * Runs a read-modify-write of the token file holding `tokens.json.lock` (made with O_EXCL), so
 * two `docket token` commands at once cannot lose one's change. A lock left by a command that
 * died is named in the error after LOCK_WAIT_MS_MAX.
 */
async function withTokenLock<T>(dataDirectory: string, change: () => Promise<T>): Promise<T> {
  await fs.mkdir(dataDirectory, { recursive: true });
  const lock = `${tokensPath(dataDirectory)}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS_MAX;
  for (;;) {
    try {
      const handle = await fs.open(lock, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (Date.now() >= deadline) throw new TokenFileError(`${lock} is held by another token command (remove it if none is running)`);
      await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
    }
  }
  try {
    return await change();
  } finally {
    await fs.unlink(lock).catch(() => undefined);
  }
}

/** Makes a token and adds its record to the data directory's file. */
export async function createToken(dataDirectory: string, options: { role: Role; name?: string; expires?: Date | null; now?: Date }): Promise<CreatedToken> {
  // The slow part, scrypt, before the lock: the lock covers only reading and writing the file.
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  const salt = randomBytes(SALT_BYTES);
  const hash = await scrypt(secret, salt, SCRYPT_DEFAULT);
  return withTokenLock(dataDirectory, async () => {
    const tokens = (await readTokens(dataDirectory)) ?? [];
    let id: string;
    do id = randomBytes(8).toString('hex');
    while (tokens.some((t) => t.id === id));
    const record: TokenRecord = {
      id,
      name: options.name ?? '',
      role: options.role,
      created: (options.now ?? new Date()).toISOString(),
      expires: options.expires ? options.expires.toISOString() : null,
      scrypt: { ...SCRYPT_DEFAULT, salt: salt.toString('base64'), hash: hash.toString('base64') },
    };
    await writeTokens(dataDirectory, [...tokens, record]);
    return { record, token: `dkt_${id}_${secret}` };
  });
}

/** Removes a token's record; false if there was none by that id. */
export async function revokeToken(dataDirectory: string, id: string): Promise<boolean> {
  return withTokenLock(dataDirectory, async () => {
    const tokens = await readTokens(dataDirectory);
    if (!tokens?.some((t) => t.id === id)) return false;
    await writeTokens(dataDirectory, tokens.filter((t) => t.id !== id));
    return true;
  });
}

export type Verdict =
  | { readonly ok: true; readonly record: TokenRecord }
  | { readonly ok: false; readonly why: 'malformed' | 'invalid' | 'expired' | 'busy'; readonly message: string };

/**
 * The tokens a running server accepts: the file as last read, re-read when it changes (its
 * inode, size or times differ; checked at most every reloadMs), and the tokens verified since,
 * kept as a SHA-256 digest of the whole token so scrypt runs once per token, not per request.
 * A revoked token leaves the file, and every reload forgets the verified ones.
 */
export class TokenSet {
  private records = new Map<string, TokenRecord>();
  private exists = false;
  private signature = '';
  private checkedAtMs = -Infinity;
  private checking: Promise<void> | undefined;
  private failure: Error | undefined;
  private readonly verified = new Map<string, Buffer>();
  private readonly pending = new Map<string, Promise<boolean>>();

  private constructor(
    readonly dataDirectory: string,
    private readonly reloadMs: number,
    private readonly onReloadError: (error: Error) => void,
  ) {}

  /** Reads the file now; throws TokenFileError if it is there but unreadable. */
  static async open(dataDirectory: string, options: { reloadMs: number; onReloadError?: (error: Error) => void }): Promise<TokenSet> {
    const set = new TokenSet(dataDirectory, options.reloadMs, options.onReloadError ?? (() => undefined));
    await set.reload(true);
    return set;
  }

  /** Whether a token file exists (so tokens are required); refreshed first if due. */
  async fileExists(): Promise<boolean> {
    await this.refresh();
    return this.exists;
  }

  /** Tokens that have not expired. */
  activeCount(nowMs = Date.now()): number {
    let count = 0;
    for (const record of this.records.values()) if (!isExpired(record, nowMs)) count++;
    return count;
  }

  /** Why the file could not be re-read, while it cannot (the server then refuses tokens). */
  get reloadFailure(): Error | undefined {
    return this.failure;
  }

  async verify(token: string, nowMs = Date.now()): Promise<Verdict> {
    await this.refresh();
    const parsed = parseToken(token);
    if (!parsed) return { ok: false, why: 'malformed', message: 'the bearer token is not a Docket token (dkt_<id>_<secret>)' };
    const record = this.records.get(parsed.id);
    if (!record) return { ok: false, why: 'invalid', message: 'the token is not valid (unknown, revoked or wrong)' };
    const digest = createHash('sha256').update(token).digest();
    const known = this.verified.get(record.id);
    if (!(known && timingSafeEqual(known, digest))) {
      // Requests that bring the same token at once share one scrypt run; distinct guesses
      // beyond a few at a time are turned away rather than queued on the thread pool.
      const key = digest.toString('hex');
      let pending = this.pending.get(key);
      if (!pending) {
        if (this.pending.size >= VERIFICATIONS_IN_FLIGHT_MAX) return { ok: false, why: 'busy', message: 'too many token verifications at once; retry' };
        pending = verifySecret(record, parsed.secret).finally(() => this.pending.delete(key));
        this.pending.set(key, pending);
      }
      if (!(await pending)) return { ok: false, why: 'invalid', message: 'the token is not valid (unknown, revoked or wrong)' };
      // The file may have been re-read while scrypt ran: cache only if the record is still current.
      if (this.records.get(record.id) !== record) return this.verify(token, nowMs);
      this.verified.set(record.id, digest);
    }
    if (isExpired(record, nowMs)) return { ok: false, why: 'expired', message: `the token ${record.id} expired at ${record.expires}` };
    return { ok: true, record };
  }

  private async refresh(): Promise<void> {
    if (Date.now() - this.checkedAtMs < this.reloadMs) return;
    this.checking ??= this.reload(false).finally(() => (this.checking = undefined));
    await this.checking;
  }

  private async reload(first: boolean): Promise<void> {
    const file = tokensPath(this.dataDirectory);
    this.checkedAtMs = Date.now();
    try {
      let signature = 'absent';
      try {
        const stat = await fs.stat(file, { bigint: true });
        signature = `${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new TokenFileError(`cannot read ${file}: ${(error as Error).message}`);
      }
      if (!first && signature === this.signature && this.failure === undefined) return;
      const records = signature === 'absent' ? undefined : await readTokens(this.dataDirectory);
      this.records = new Map((records ?? []).map((record) => [record.id, record]));
      this.exists = records !== undefined;
      this.signature = signature;
      this.verified.clear();
      this.failure = undefined;
    } catch (error) {
      if (first) throw error;
      // Fail closed: tokens are required and none is accepted until the file reads again.
      if (this.failure === undefined) this.onReloadError(error as Error);
      this.failure = error as Error;
      this.records = new Map();
      this.exists = true;
      this.verified.clear();
      this.signature = 'failed';
    }
  }
}

/** An address that only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost' || bare === '::1' || bare === '0:0:0:0:0:0:0:1') return true;
  const v4 = bare.replace(/^::ffff:/, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
