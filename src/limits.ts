// Every bound of the document layer, with its unit. The HTTP layer takes its own limits from
// here too, so one number holds for every way in. Each is enforced with a coded error.

import assert from 'node:assert/strict';
import { limits as engine } from '../storage/index.js';

/** A document's JSON text, UTF-8. Same as the HTTP body limit for one document. */
export const DOCUMENT_SIZE_BYTES_MAX = 1024 * 1024;
/** A document id, UTF-8. Ids are well-formed Unicode without control characters. */
export const ID_SIZE_BYTES_MAX = 512;
/** A top-level field name, UTF-8. */
export const FIELD_NAME_SIZE_BYTES_MAX = 256;
/** Top-level fields in one document. */
export const FIELDS_PER_DOCUMENT_MAX = 1024;
/** Nesting of arrays and objects; the document itself is depth 1. JSON.stringify fails near 4,000. */
export const DOCUMENT_DEPTH_MAX = 64;
/** Operations in one atomic batch. */
export const BATCH_OPERATIONS_MAX = 10_000;
/** Encoded size of one transaction's binlog record: one atomic batch. */
export const TRANSACTION_SIZE_BYTES_MAX = 32 * 1024 * 1024;
/** Collections in one store. */
export const COLLECTIONS_MAX = 100;
/** Distinct top-level field names ever seen in one collection (each needs a catalog entry). */
export const FIELDS_PER_COLLECTION_MAX = 10_000;
/** Column families that hold fields, per collection: one per field until this, then shared. */
export const FIELD_FAMILIES_PER_COLLECTION_DEFAULT = 32;
export const FIELD_FAMILIES_PER_COLLECTION_MAX = 32;
/** A collection name: [A-Za-z0-9_-]{1,64}. */
export const COLLECTION_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Documents a list call returns at most. */
export const LIST_LIMIT_MAX = 1000;
export const LIST_LIMIT_DEFAULT = 100;
/** Transactions between sequencing and acknowledgement before new writes wait. */
export const TRANSACTIONS_IN_FLIGHT_MAX = 4096;
/** Memtable size of each column family the document layer creates. */
export const MEMTABLE_SIZE_BYTES_DEFAULT = 4 * 1024 * 1024; // Per family: a collection has up to 34.
/** A family whose flush flag lags the binlog's end by more than this is flushed on purpose. */
export const EPOCH_LAG_BYTES_MAX = 256 * 1024 * 1024;
/** ... or whose flag is older than this. */
export const EPOCH_LAG_MS_MAX = 5 * 60 * 1000;
/** How often the epoch keeper looks at the flags, purges the binlog and flushes laggards. */
export const EPOCH_CHECK_INTERVAL_MS = 1000;

// Families per collection: meta, overflow, and the field families.
assert(COLLECTIONS_MAX * (FIELD_FAMILIES_PER_COLLECTION_MAX + 2) + 1 <= engine.FAMILIES_MAX);
assert(DOCUMENT_SIZE_BYTES_MAX + ID_SIZE_BYTES_MAX + 64 <= engine.VALUE_SIZE_BYTES_MAX);
assert(ID_SIZE_BYTES_MAX + FIELD_NAME_SIZE_BYTES_MAX + 16 <= engine.KEY_SIZE_BYTES_MAX);
assert(TRANSACTION_SIZE_BYTES_MAX <= engine.LOG_RECORD_SIZE_BYTES_MAX);
assert(DOCUMENT_SIZE_BYTES_MAX < TRANSACTION_SIZE_BYTES_MAX); // One document always fits a transaction.
