// The record framing shared by the manifest, the engine WAL and the binlog: the constants and
// the encoder that LogWriter and LogReader both rely on. The byte layout is in FORMAT.md.

import assert from 'node:assert/strict';
import { invalidArgument } from '../errors.js';
import { LOG_RECORD_SIZE_BYTES_MAX } from '../limits.js';
import { writeFixed64 } from '../util/coding.js';
import { crc32cUpdate, maskCrc } from '../util/crc32c.js';

/** Bytes before each payload: the masked CRC-32C (4), then the payload length (4). */
export const RECORD_HEADER_BYTES = 8;
/** Where the length field starts in the header; the CRC covers the record from here on. */
export const RECORD_LENGTH_OFFSET = 4;
/** Bytes of the log number that salts every CRC of the log (little-endian). */
export const LOG_NUMBER_BYTES = 8;

/** The CRC-32C of the log number: the starting value of every record CRC in that log. */
export function logCrcSeed(logNumber: number): number {
  assert(Number.isSafeInteger(logNumber) && logNumber >= 0, `log number out of range: ${logNumber}`);
  const bytes = Buffer.alloc(LOG_NUMBER_BYTES);
  writeFixed64(bytes, 0, logNumber);
  return crc32cUpdate(0, bytes);
}

/**
 * The unmasked CRC of the record that starts at `start` in `data` and holds `payloadBytes`.
 * The length field and the payload are contiguous, so one pass covers both.
 */
export function recordCrc(seed: number, data: Uint8Array, start: number, payloadBytes: number): number {
  return crc32cUpdate(seed, data, start + RECORD_LENGTH_OFFSET, start + RECORD_HEADER_BYTES + payloadBytes);
}

/** Whether a length field read from disk can be a payload length at all. */
export function isPayloadLengthValid(payloadBytes: number): boolean {
  return payloadBytes >= 1 && payloadBytes <= LOG_RECORD_SIZE_BYTES_MAX;
}

function checkPayload(payload: Uint8Array): void {
  // Length zero is reserved so that a reader rejects a zeroed or torn length without computing
  // a CRC; no caller has anything to say in zero bytes, so an empty payload is a bug.
  assert(payload.length > 0, 'a log record payload is never empty');
  if (payload.length > LOG_RECORD_SIZE_BYTES_MAX) {
    throw invalidArgument(`log record of ${payload.length} bytes exceeds ${LOG_RECORD_SIZE_BYTES_MAX} bytes`);
  }
}

/** Frames `payload` into `target` at `start`; returns the offset just past the record. */
function encodeInto(target: Buffer, start: number, seed: number, payload: Uint8Array): number {
  target.writeUInt32LE(payload.length, start + RECORD_LENGTH_OFFSET);
  target.set(payload, start + RECORD_HEADER_BYTES);
  target.writeUInt32LE(maskCrc(recordCrc(seed, target, start, payload.length)), start);
  return start + RECORD_HEADER_BYTES + payload.length;
}

/** Frames several payloads back to back into one Buffer, so they go to disk in one write. */
export function encodeRecords(seed: number, payloads: readonly Uint8Array[]): Buffer {
  assert(payloads.length > 0, 'encodeRecords needs at least one payload');
  let totalBytes = 0;
  for (const payload of payloads) {
    checkPayload(payload);
    totalBytes += RECORD_HEADER_BYTES + payload.length;
  }
  const target = Buffer.allocUnsafe(totalBytes);
  let offset = 0;
  for (const payload of payloads) offset = encodeInto(target, offset, seed, payload);
  assert.equal(offset, totalBytes);
  return target;
}

/** One record (header and payload) of the log numbered `logNumber`. */
export function encodeRecord(logNumber: number, payload: Uint8Array): Buffer {
  return encodeRecords(logCrcSeed(logNumber), [payload]);
}
