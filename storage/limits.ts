// Every bound of the engine, with its unit, in one place, and asserts on how they relate.

import assert from 'node:assert/strict';

/** Largest user key. Keys are short (collection, id, field); a bound keeps index blocks small. */
export const KEY_SIZE_BYTES_MAX = 16 * 1024;
/** Largest value of one item. */
export const VALUE_SIZE_BYTES_MAX = 16 * 1024 * 1024;
/** Items in one write batch. */
export const BATCH_ITEMS_MAX = 1_000_000;
/** Column families an engine may hold (ids are one varint on disk). */
export const FAMILIES_MAX = 65_536;
/** Longest column family name. */
export const FAMILY_NAME_BYTES_MAX = 255;

/** Largest record the shared log framing accepts (manifest edits, WAL batches, binlog records). */
export const LOG_RECORD_SIZE_BYTES_MAX = 64 * 1024 * 1024;

export const MEMTABLE_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024;
/**
 * Bytes all active memtables together may hold (RocksDB's db_write_buffer_size): past it the
 * largest is switched for flush, so memory stays bounded however many families are written.
 */
export const WRITE_BUFFER_BYTES_DEFAULT = 256 * 1024 * 1024;
/** Immutable memtables per family waiting for flush before writes stop. */
export const IMMUTABLE_MEMTABLES_MAX = 2;

export const BLOCK_SIZE_BYTES_DEFAULT = 4 * 1024; // Measured: 2.5x the random reads of 16 KiB blocks (BENCHMARKS.md).
export const BLOCK_RESTART_INTERVAL = 16;
export const BLOOM_BITS_PER_KEY = 10;
export const TABLE_SIZE_BYTES_TARGET = 64 * 1024 * 1024;

export const LEVELS = 7;
export const L0_COMPACTION_TRIGGER_FILES = 4;
export const L0_SLOWDOWN_TRIGGER_FILES = 12;
export const L0_STOP_TRIGGER_FILES = 20;
/** Bytes of level 1; each deeper level is LEVEL_SIZE_RATIO times larger. */
export const LEVEL1_SIZE_BYTES = 256 * 1024 * 1024;
export const LEVEL_SIZE_RATIO = 10;
/** Delay applied to each write batch while L0 is over the slowdown trigger. */
export const WRITE_SLOWDOWN_DELAY_MS = 1;

export const BLOCK_CACHE_SIZE_BYTES_DEFAULT = 256 * 1024 * 1024;
export const TABLE_CACHE_FILES_DEFAULT = 500;

/** The manifest is rewritten as a snapshot once its log grows past this. */
export const MANIFEST_SIZE_BYTES_MAX = 4 * 1024 * 1024;
/** The engine WAL rotates to a new file past this size. */
export const WAL_SEGMENT_SIZE_BYTES = 64 * 1024 * 1024;

/** Entries a flush or compaction processes before it yields to the event loop. */
export const BACKGROUND_SLICE_ENTRIES = 2048;

assert(L0_COMPACTION_TRIGGER_FILES < L0_SLOWDOWN_TRIGGER_FILES);
assert(L0_SLOWDOWN_TRIGGER_FILES < L0_STOP_TRIGGER_FILES);
assert(KEY_SIZE_BYTES_MAX + VALUE_SIZE_BYTES_MAX < LOG_RECORD_SIZE_BYTES_MAX); // One item fits a WAL record.
assert(BLOCK_RESTART_INTERVAL >= 1);
