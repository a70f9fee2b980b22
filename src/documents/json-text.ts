// A JSON document as the client's bytes, the way writes carry it: checked and split into
// top-level fields by the byte scanner (scanner.ts), its values stored as sent. A JavaScript
// value is made only where one is needed (JSON Schema validation), and never written back.

import { DocketError, DocketErrorCode } from '../errors.js';
import * as limits from '../limits.js';
import { assemble } from './assemble.js';
import { FieldScan, mergePatchBytes, scanDocument } from './scanner.js';
import { limit, type FieldList } from './validate.js';

export class JsonText {
  private parsed: unknown;
  private isParsed = false;
  /** Its fields once scanned (fieldsOf), so a text checked early is not scanned again. */
  fields: FieldList | undefined;

  /** `what` names the text in error messages ("the body", "line 7"). */
  constructor(
    readonly bytes: Buffer,
    readonly what = 'the body',
  ) {}

  /**
   * The JavaScript value. REQUIRES: the text was scanned (fields() ran), so it is valid JSON;
   * JSON.parse cannot fail and its numbers never reach the store.
   */
  value(): unknown {
    if (!this.isParsed) {
      this.parsed = JSON.parse(this.bytes.toString('utf8'));
      this.isParsed = true;
    }
    return this.parsed;
  }
}

/** One scan record reused by every call: scans are synchronous and never nest. */
const scan = new FieldScan();

/**
 * The text's top-level fields, names and compact values (views of its bytes where no
 * whitespace had to go), after every check of the scanner: UTF-8, grammar, depth, field names,
 * distinct names and the document limits. `notObject` replaces the message for a non-object.
 */
export function fieldsOf(text: JsonText, notObject?: string): FieldList {
  if (text.fields !== undefined) return text.fields;
  try {
    scanDocument(text.bytes, scan, text.what);
  } catch (error) {
    if (notObject !== undefined && error instanceof DocketError && error.code === DocketErrorCode.DOCUMENT_INVALID) throw new DocketError(DocketErrorCode.DOCUMENT_INVALID, notObject);
    throw error;
  }
  const names: string[] = new Array<string>(scan.count);
  const values: Buffer[] = new Array<Buffer>(scan.count);
  for (let i = 0; i < scan.count; i++) {
    names[i] = scan.name(i);
    values[i] = scan.value(i);
  }
  return (text.fields = { names, values });
}

/**
 * A merge patch (RFC 7396) applied to a document's top-level fields, on bytes: members the patch
 * does not name keep their exact text at every depth, a null removes, a new field goes last.
 * The result is held to the document limits (fields, size) as a scanned document is.
 */
export function mergeFields(names: readonly string[], values: readonly Buffer[], patch: FieldList): FieldList {
  const merged = new Map<string, Buffer>();
  names.forEach((name, i) => merged.set(name, values[i]!));
  patch.names.forEach((name, i) => {
    const value = mergePatchBytes(merged.get(name), patch.values[i]!);
    if (value === undefined) merged.delete(name);
    else merged.set(name, value);
  });
  if (merged.size > limits.FIELDS_PER_DOCUMENT_MAX) throw limit(`a document has at most ${limits.FIELDS_PER_DOCUMENT_MAX} top-level fields, got ${merged.size}`);
  let sizeBytes = 1;
  for (const [name, value] of merged) sizeBytes += Buffer.byteLength(JSON.stringify(name), 'utf8') + value.length + 2;
  if (sizeBytes > limits.DOCUMENT_SIZE_BYTES_MAX) throw limit(`a document is at most ${limits.DOCUMENT_SIZE_BYTES_MAX} bytes of JSON`);
  return { names: [...merged.keys()], values: [...merged.values()] };
}

/** `{"name":value,...}` of a field list, as a string (for a JavaScript value where one is needed). */
export function textOf(fields: FieldList): string {
  return assemble(fields.names.map((name, i) => [name, fields.values[i]!]));
}
