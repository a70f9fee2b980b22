// Request bodies as JSON, stricter than JSON.parse alone: invalid UTF-8 is refused (Node's
// decoder would silently put U+FFFD in its place) and nesting is capped before parsing, so a
// document too deep to serialise again (JSON.stringify fails near 4,000 levels) never gets in.

import { isUtf8 } from 'node:buffer';
import { DocketError, DocketErrorCode } from '../../src/errors.js';
import * as limits from '../../src/limits.js';
import { checkJsonPatch, type JsonPatch } from '../../src/documents/json-patch.js';

/** The media types that carry one JSON value. */
export const JSON_MEDIA_TYPES = ['application/json', 'application/merge-patch+json'] as const;
/** JSON Patch (RFC 6902), taken by PATCH of a document only. */
export const JSON_PATCH_MEDIA_TYPE = 'application/json-patch+json';
/** Bulk bodies: one JSON document a line, streamed by routes/bulk.ts rather than parsed here. */
export const NDJSON_MEDIA_TYPE = 'application/x-ndjson';

/** A body sent as JSON_PATCH_MEDIA_TYPE, as bytes; the PATCH route parses it (parseJsonPatch). */
export class JsonPatchText {
  constructor(readonly bytes: Buffer) {}
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** Parses UTF-8 JSON text; `what` names it in errors ("the body", "line 7"). */
export function parseJson(bytes: Buffer, what = 'the body'): unknown {
  if (!isUtf8(bytes)) throw new DocketError(DocketErrorCode.BODY_INVALID, `${what} is not valid UTF-8`);
  checkDepth(bytes, what);
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new DocketError(DocketErrorCode.BODY_INVALID, `${what} is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * A JSON Patch body: 400 BODY_INVALID if it is not UTF-8 JSON, 413 if it nests deeper than
 * DOCUMENT_DEPTH_MAX, 400 PATCH_INVALID if it is not a JSON Patch (checkJsonPatch).
 */
export function parseJsonPatch(bytes: Buffer): JsonPatch {
  parseJson(bytes, 'the JSON Patch');
  return checkJsonPatch(bytes.toString('utf8'));
}

/** Refuses nesting deeper than DOCUMENT_DEPTH_MAX (the outermost object is depth 1). */
function checkDepth(bytes: Buffer, what: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (++depth > limits.DOCUMENT_DEPTH_MAX) throw new DocketError(DocketErrorCode.LIMIT_EXCEEDED, `${what} nests deeper than ${limits.DOCUMENT_DEPTH_MAX} levels`);
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    }
  }
}
