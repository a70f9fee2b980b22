// What every response body goes through last (an onSend hook): a JSON body ends with a newline
// (so curl's output does not run into the prompt), and a large body is compressed when the
// client accepts br or gzip (Accept-Encoding). Event streams never come here (the changes route
// hijacks its response and writes each event as it happens), so they are never buffered for
// compression. A response with an ETag (a document) is sent as it is: its strong ETag names the
// stored bytes, and a compressed copy would need a tag of its own.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import * as limits from '../../src/limits.js';

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);
/** Brotli's default quality (11) is far too slow for responses; 4 compresses better than gzip's default, as fast. */
const BROTLI_OPTIONS = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } };

const NEWLINE = Buffer.from('\n');
const JSON_TYPE = /^application\/(?:[a-z0-9.+-]+\+)?json\s*(?:;|$)/i;
const COMPRESSIBLE_TYPE = /^(?:application\/(?:(?:[a-z0-9.+-]+\+)?json|x-ndjson|yaml|javascript)|text\/(?!event-stream))/i;

export type ResponseCoding = 'br' | 'gzip';

export function installResponseHooks(app: FastifyInstance, thresholdBytes = limits.RESPONSE_COMPRESSION_THRESHOLD_BYTES): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (typeof payload !== 'string' && !Buffer.isBuffer(payload)) return payload;
    const type = String(reply.getHeader('content-type') ?? '');
    let body: string | Buffer = payload;
    if (JSON_TYPE.test(type) && body.length > 0 && !endsWithNewline(body)) body = typeof body === 'string' ? `${body}\n` : Buffer.concat([body, NEWLINE]);
    return compressed(request, reply, body, type, thresholdBytes);
  });
}

function endsWithNewline(body: string | Buffer): boolean {
  return typeof body === 'string' ? body.endsWith('\n') : body[body.length - 1] === 0x0a;
}

async function compressed(request: FastifyRequest, reply: FastifyReply, body: string | Buffer, type: string, thresholdBytes: number): Promise<string | Buffer> {
  if (!COMPRESSIBLE_TYPE.test(type) || reply.hasHeader('content-encoding') || reply.hasHeader('etag')) return body;
  if (reply.statusCode === 204 || reply.statusCode === 304) return body;
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (bytes.length < thresholdBytes) return body;
  vary(reply, 'Accept-Encoding'); // This size of response is compressed or not by that header.
  const coding = acceptedCoding(request.headers['accept-encoding']);
  if (coding === undefined) return body;
  const packed = coding === 'br' ? await brotli(bytes, BROTLI_OPTIONS) : await gzip(bytes);
  void reply.header('content-encoding', coding).removeHeader('content-length');
  return packed;
}

function vary(reply: FastifyReply, name: string): void {
  const current = reply.getHeader('vary');
  const names = current === undefined ? [] : String(current).split(',').map((part) => part.trim());
  if (names.includes('*') || names.some((part) => part.toLowerCase() === name.toLowerCase())) return;
  void reply.header('vary', [...names.filter((part) => part !== ''), name].join(', '));
}

/**
 * The coding to answer in, from Accept-Encoding (RFC 9110 §12.5.3): br or gzip, whichever has
 * the higher weight (br on a tie); undefined when neither is acceptable, or no header was sent.
 */
export function acceptedCoding(header: string | string[] | undefined): ResponseCoding | undefined {
  if (header === undefined) return undefined;
  const weights = new Map<string, number>();
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [name, ...parameters] = part.split(';').map((piece) => piece.trim().toLowerCase());
    if (!name) continue;
    let weight = 1;
    for (const parameter of parameters) {
      const match = /^q\s*=\s*([0-9.]+)$/.exec(parameter);
      if (match) weight = Number(match[1]);
    }
    if (Number.isFinite(weight)) weights.set(name === 'x-gzip' ? 'gzip' : name, weight);
  }
  const of = (coding: string): number => weights.get(coding) ?? weights.get('*') ?? 0;
  const br = of('br');
  const gz = of('gzip');
  if (br <= 0 && gz <= 0) return undefined;
  return br >= gz ? 'br' : 'gzip';
}
