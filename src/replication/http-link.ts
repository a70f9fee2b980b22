// The standby's HTTP link to its primary: GET /replication/binlog as one long-lived streaming
// response, POST /replication/feedback for written / durable / replayed TSNs. A refusal comes
// back as Docket's JSON error body; its code is rethrown as a DocketError so the standby can
// tell "needs a checkpoint" from "try again".

import { DocketError, DocketErrorCode } from '../errors.js';
import type { Feedback, PullRequest } from './levels.js';
import type { PrimaryLink } from './standby.js';

const CODES = new Set<string>(Object.values(DocketErrorCode));

export class HttpPrimaryLink implements PrimaryLink {
  private readonly base: string;

  constructor(
    readonly primary: string,
    private readonly token: string | undefined,
    private readonly feedbackTimeoutMs: number,
  ) {
    this.base = primary.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...extra, ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) };
  }

  async *pull(request: PullRequest, signal: AbortSignal): AsyncIterable<Buffer> {
    const query = new URLSearchParams({ name: request.name, from: String(request.from), last_term: String(request.lastTerm), term: String(request.term) });
    const response = await fetch(`${this.base}/replication/binlog?${query}`, { headers: this.headers(), signal });
    if (response.status !== 200 || !response.body) throw await refusal(response);
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }

  async feedback(report: Feedback): Promise<void> {
    const response = await fetch(`${this.base}/replication/feedback`, {
      method: 'POST',
      headers: this.headers({ 'content-type': 'application/json' }),
      body: JSON.stringify(report),
      signal: AbortSignal.timeout(this.feedbackTimeoutMs),
    });
    if (response.status !== 200 && response.status !== 204) throw await refusal(response);
    await response.arrayBuffer();
  }
}

/** A primary's non-2xx answer as an Error: a DocketError with its code when the body is Docket's. */
export async function refusal(response: Response): Promise<Error> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { code?: string; message?: string };
    if (typeof body.code === 'string' && CODES.has(body.code)) return new DocketError(body.code as DocketErrorCode, `the primary answered ${response.status}: ${body.message ?? ''}`);
  } catch {
    // Not Docket's error body: say what came back.
  }
  return new Error(`the primary answered ${response.status}: ${text.slice(0, 200)}`);
}
