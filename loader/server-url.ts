// The server a client command talks to (`docket load`, `docket backup`): --url, --token (or
// DOCKET_TOKEN) and --ca-file, checked the same way for both.

import { readFileSync } from 'node:fs';

/** A command line mistake: the command prints it with its usage and exits 2. */
export class UsageError extends Error {}

export interface ServerConnection {
  /** The URL's origin (scheme, host, port). */
  readonly url: string;
  readonly token: string | undefined;
  /** The certificate authority to trust for an https:// URL. */
  readonly ca: Buffer | undefined;
}

export function serverConnectionOf(values: { url: string; token?: string | undefined; 'ca-file'?: string | undefined }, environment: NodeJS.ProcessEnv): ServerConnection {
  let url: URL;
  try {
    url = new URL(values.url);
  } catch {
    throw new UsageError(`--url: ${JSON.stringify(values.url)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be an http:// or https:// URL');
  const token = values.token ?? (environment.DOCKET_TOKEN || undefined);
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) throw new UsageError('--token (or DOCKET_TOKEN) holds characters no token has');
  let ca: Buffer | undefined;
  if (values['ca-file'] !== undefined) {
    if (url.protocol !== 'https:') throw new UsageError('--ca-file is for an https:// --url');
    try {
      ca = readFileSync(values['ca-file']);
    } catch (error) {
      throw new UsageError(`--ca-file: cannot read ${values['ca-file']}: ${(error as Error).message}`);
    }
  }
  return { url: url.origin, token, ca };
}
