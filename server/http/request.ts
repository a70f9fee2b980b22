// Small pieces every route uses: the JSON body a write needs, ids and names from the path, the
// revision as an ETag and preconditions from If-Match / If-None-Match.

import type { FastifyRequest } from 'fastify';
import { fieldsOf, JsonText } from '../../src/documents/json-text.js';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import { parseJson } from './json.js';

/**
 * The JSON body of a document write, scanned (so every fault of the body itself, from its
 * UTF-8 to its field names and size, is answered before anything else is looked at), or a
 * 400/415 that says what was wrong with it.
 */
export function jsonBody(request: FastifyRequest, what: string): unknown {
  if (request.body instanceof JsonText) fieldsOf(request.body, `${what} must be a JSON object`);
  if (request.body !== undefined) return request.body;
  const type = request.headers['content-type'];
  if (type !== undefined) throw new DocketError(DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, `${what} must be application/json, not ${type}`);
  throw new DocketError(DocketErrorCode.BODY_INVALID, `${what} is missing (send it as application/json)`);
}

/** A body a route does not use must still be what its media type says (a broken one is 400). */
export function ignoredBody(request: FastifyRequest): void {
  if (request.body instanceof JsonText) parseJson(request.body.bytes);
}

export function etag(revision: number): string {
  return `"${revision}"`;
}

/** `*`, or the revisions of the strong entity tags listed (weak ones never match strongly). */
export type TagList = '*' | number[];

export function parseTagList(header: string | undefined, name: string): TagList | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === '*') return '*';
  const revisions: number[] = [];
  for (const part of text.split(',')) {
    const tag = part.trim();
    if (tag === '') continue;
    const match = /^(W\/)?"([^"]*)"$/.exec(tag);
    if (!match) throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `${name} must be * or a list of entity tags like "42", got ${JSON.stringify(text.slice(0, 80))}`);
    if (match[1] === undefined && /^(0|[1-9][0-9]{0,15})$/.test(match[2]!)) revisions.push(Number(match[2]));
  }
  return revisions;
}

/** Whether a document at `revision` (undefined: absent) matches the list. */
export function matches(list: TagList, revision: number | undefined): boolean {
  if (revision === undefined) return false;
  return list === '*' || list.includes(revision);
}

/** Weak comparison (If-None-Match on reads): W/"42" matches revision 42 too. */
export function parseWeakTagList(header: string | undefined): TagList | undefined {
  if (header === undefined) return undefined;
  if (header.trim() === '*') return '*';
  const revisions: number[] = [];
  for (const match of header.matchAll(/(?:W\/)?"(0|[1-9][0-9]{0,15})"/g)) revisions.push(Number(match[1]));
  return revisions;
}
