// Every bound of the binlog, with its unit, in one place. The on-disk layout is in FORMAT.md.

import assert from 'node:assert/strict';
import { limits } from '../../storage/index.js';

/** A segment's preallocated size: big enough that rotation (one fsync of a full file) is rare. */
export const BINLOG_SEGMENT_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024;
/** The smallest segmentSizeBytes option accepted; tests use a few KiB to rotate often. */
export const BINLOG_SEGMENT_SIZE_BYTES_MIN = 4 * 1024;
/** Bytes of records in one group: one write call and one fsync. Bounds the memory of one write. */
export const BINLOG_GROUP_SIZE_BYTES_MAX = 4 * 1024 * 1024;
/** Records in one group, so that one slow sync cannot make a group unboundedly long to settle. */
export const BINLOG_GROUP_RECORDS_MAX = 16 * 1024;
/** Zeros per write call when a segment is preallocated, and per read when a spare is checked. */
export const BINLOG_PREALLOCATE_CHUNK_BYTES = 1024 * 1024;
/** Bytes per read when open reads only a segment's header: not a whole read chunk per segment. */
export const BINLOG_HEADER_READ_CHUNK_BYTES = 4 * 1024;
/** Bytes of the TSN in front of each caller payload. */
export const BINLOG_TSN_BYTES = 8;
/** The largest caller payload: the framing's record limit less the TSN. */
export const BINLOG_PAYLOAD_SIZE_BYTES_MAX = limits.LOG_RECORD_SIZE_BYTES_MAX - BINLOG_TSN_BYTES;

assert(BINLOG_SEGMENT_SIZE_BYTES_MIN <= BINLOG_SEGMENT_SIZE_BYTES_DEFAULT);
assert(BINLOG_PREALLOCATE_CHUNK_BYTES > 0 && BINLOG_GROUP_RECORDS_MAX > 0);
// A group is bounded by bytes, but a single record bigger than the bound still goes alone.
assert(BINLOG_GROUP_SIZE_BYTES_MAX <= limits.LOG_RECORD_SIZE_BYTES_MAX);
