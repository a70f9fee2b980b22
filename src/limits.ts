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
/** Operations in one JSON Patch (RFC 6902); more is 400 DOCKET_ERR_PATCH_INVALID. */
export const JSON_PATCH_OPERATIONS_MAX = 1000;
/** Operations in one atomic batch. */
export const BATCH_OPERATIONS_MAX = 10_000;
/** Encoded size of one transaction's binlog record: one atomic batch. */
export const TRANSACTION_SIZE_BYTES_MAX = 32 * 1024 * 1024;
/**
 * Collections in one store (BENCHMARKS.md, "collections": measured up to this many, with
 * writes, reads and reopen). Each also reserves its column families (below), so collections
 * with many field families may reach FAMILIES_RESERVED_MAX first.
 */
export const COLLECTIONS_MAX = 2000;
/**
 * Column families the collections may reserve together: each reserves its meta and overflow
 * families and its fieldFamiliesMax, whether used yet or not, so a write never finds the
 * engine out of families. The catalog family is the engine's one more.
 */
export const FAMILIES_RESERVED_MAX = 16_384;
/** Distinct top-level field names ever seen in one collection (each needs a catalog entry). */
export const FIELDS_PER_COLLECTION_MAX = 10_000;
/**
 * Column families that hold fields, per collection: one per field until this many, then the
 * fields take them in turn. Few families make a whole-document read a few seeks and a write
 * touch few memtables (BENCHMARKS.md, "layout"); `columns` gives a field a family of its own.
 */
export const FIELD_FAMILIES_PER_COLLECTION_DEFAULT = 4;
export const FIELD_FAMILIES_PER_COLLECTION_MAX = 32;
/** Secondary indexes on one collection; each is a column family (reserved with the collection's). */
export const INDEXES_PER_COLLECTION_MAX = 8;
/** Fields of one (compound) index. */
export const INDEX_FIELDS_MAX = 8;
/** An index name: [A-Za-z0-9_-]{1,64}. An indexed field path: at most this many bytes and this many dotted steps. */
export const INDEX_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const INDEX_FIELD_PATH_BYTES_MAX = 512;
export const INDEX_FIELD_PATH_STEPS_MAX = 16;
/** One index key: the encoded indexed values and the id. A write whose key would be longer is refused (413). */
export const INDEX_KEY_SIZE_BYTES_MAX = 4096;
/** Documents one step of a background index build reads and indexes, in one transaction. */
export const INDEX_BUILD_CHUNK_DOCUMENTS = 500;
/** Queries: documents one find returns at most, and by default. */
export const FIND_LIMIT_MAX = 1000;
export const FIND_LIMIT_DEFAULT = 25;
/** Queries: nesting of $and/$or/field operators; clauses (field conditions) in all; values of one $in; a selector's bytes. */
export const QUERY_DEPTH_MAX = 8;
export const QUERY_CLAUSES_MAX = 64;
export const QUERY_IN_VALUES_MAX = 256;
/** Queries with allow_scan: documents examined and milliseconds spent at most; the answer says when it stopped. */
export const QUERY_SCAN_DOCUMENTS_MAX = 100_000;
export const QUERY_SCAN_MS_MAX = 2000;
/** Queries served by an index: index keys examined at most before the page ends (with a bookmark). */
export const QUERY_KEYS_EXAMINED_MAX = 100_000;
/** count: index keys counted at most (the answer says when it stopped), and groups returned. */
export const COUNT_KEYS_MAX = 10_000_000;
export const COUNT_GROUPS_MAX = 10_000;
/** A collection name: [A-Za-z0-9_-]{1,64}. */
export const COLLECTION_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Documents a list call returns at most. */
export const LIST_LIMIT_MAX = 1000;
export const LIST_LIMIT_DEFAULT = 100;
/** Documents in one transaction of a non-atomic bulk load. */
export const BULK_BATCH_DOCUMENTS_MAX = 1000;
/** One transaction of a non-atomic bulk load, as the store's bound on its record (checkPut). */
export const BULK_BATCH_BYTES_MAX = 4 * 1024 * 1024;
/** Transactions of one bulk load awaiting acknowledgement; at this many it stops reading its body. */
export const BULK_BATCHES_IN_FLIGHT_MAX = 2;
/** Line errors a bulk response lists; the counts stay exact beyond it. */
export const BULK_ERRORS_MAX = 100;
/** `docket load`: lines and bytes of one bulk request body, by default (a body ends at a line's end). */
export const LOAD_BATCH_LINES_DEFAULT = 5000;
export const LOAD_BATCH_BYTES_DEFAULT = 8 * 1024 * 1024;
/** `docket load`: pipelined bulk requests sent and not yet answered, by default. */
export const LOAD_IN_FLIGHT_DEFAULT = 4;
/** `docket load`: a longer line is refused by the loader itself rather than held (the server's bound is smaller). */
export const LOAD_LINE_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;
/** `docket load`: line errors written to standard error; `--errors FILE` records every one. */
export const LOAD_ERRORS_SHOWN_MAX = 50;
/** Changes one page of the change feed holds by default, and at most; a page may exceed it by the rest of its last transaction. */
export const CHANGES_LIMIT_DEFAULT = 1000;
export const CHANGES_LIMIT_MAX = 10_000;
/** Transactions one change-feed call reads at most, matching its collection filter or not. */
export const CHANGES_SCAN_TRANSACTIONS_MAX = 10_000;
/** Bytes of binlog records one change-feed call reads at most (it always reads one transaction whole). */
export const CHANGES_SCAN_BYTES_MAX = 16 * 1024 * 1024;
/**
 * Bytes of documents one change-feed page with include_docs carries, about: past it the page
 * ends with the transaction it is in (never split), and `last` says where to go on from.
 */
export const CHANGES_DOCS_BYTES_MAX = 16 * 1024 * 1024;
/** How long a long poll of the change feed waits for a change, by default and at most. */
export const LONGPOLL_TIMEOUT_MS_DEFAULT = 30_000;
export const LONGPOLL_TIMEOUT_MS_MAX = 60_000;
/** A comment line on an idle event stream this often, under the usual 60 s proxy idle timeouts. */
export const SSE_HEARTBEAT_MS = 15_000;
/**
 * A zstd request body's frames may declare a window of at most this (RFC 9659's bound for the
 * `zstd` content coding): the decoder allocates the window a frame declares.
 */
export const ZSTD_WINDOW_BYTES_MAX = 8 * 1024 * 1024;
/**
 * A compressed bulk body may decode to at most the body limit plus this many times the
 * compressed bytes read so far (NDJSON compresses ~5-20x; a zip bomb ~1,000x and more).
 */
export const BULK_DECODED_RATIO_MAX = 100;
/** Responses at least this long are compressed when the client accepts gzip or br. */
export const RESPONSE_COMPRESSION_THRESHOLD_BYTES = 1024;
/**
 * Whole documents as JSON text, keyed by collection, id and revision: a revision is a TSN, so
 * what a document holds at one never changes and a hit is never stale. Charged in bytes.
 */
export const DOCUMENT_CACHE_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Per cached document beyond its text and key: the slot, the map entry, the string headers. */
export const DOCUMENT_CACHE_SLOT_OVERHEAD_BYTES = 160;
/** Transactions between sequencing and acknowledgement before new writes wait. */
export const TRANSACTIONS_IN_FLIGHT_MAX = 4096;
/** Memtable size of each column family the document layer creates. */
/** Memory all memtables of the store together hold before the largest is switched for flush. */
export const WRITE_BUFFER_BYTES_DEFAULT = 256 * 1024 * 1024;
export const MEMTABLE_SIZE_BYTES_DEFAULT = 16 * 1024 * 1024; // Per family: a collection has meta + 4 field families by default (at most 34).
/** A family whose flush flag lags the binlog's end by more than this is flushed on purpose. */
export const EPOCH_LAG_BYTES_MAX = 256 * 1024 * 1024;
/** ... or whose flag is older than this. */
export const EPOCH_LAG_MS_MAX = 5 * 60 * 1000;
/** How often the epoch keeper looks at the flags, purges the binlog and flushes laggards. */
export const EPOCH_CHECK_INTERVAL_MS = 1000;
/**
 * A checkpoint stream (GET /admin/checkpoint) whose client takes nothing for this long is cut:
 * a stalled client would otherwise keep its tables and binlog segments from deletion for ever.
 */
export const CHECKPOINT_STREAM_IDLE_MS_MAX = 5 * 60 * 1000;

// Families per collection: meta, overflow, and the field families.
assert(FAMILIES_RESERVED_MAX + 1 <= engine.FAMILIES_MAX);
assert(COLLECTIONS_MAX * (FIELD_FAMILIES_PER_COLLECTION_DEFAULT + 2) <= FAMILIES_RESERVED_MAX);
assert(DOCUMENT_SIZE_BYTES_MAX + ID_SIZE_BYTES_MAX + 64 <= engine.VALUE_SIZE_BYTES_MAX);
assert(ID_SIZE_BYTES_MAX + FIELD_NAME_SIZE_BYTES_MAX + 16 <= engine.KEY_SIZE_BYTES_MAX);
assert(INDEX_KEY_SIZE_BYTES_MAX <= engine.KEY_SIZE_BYTES_MAX);
assert(TRANSACTION_SIZE_BYTES_MAX <= engine.LOG_RECORD_SIZE_BYTES_MAX);
assert(DOCUMENT_SIZE_BYTES_MAX < TRANSACTION_SIZE_BYTES_MAX); // One document always fits a transaction.
assert(BULK_BATCH_DOCUMENTS_MAX <= BATCH_OPERATIONS_MAX);
// A bulk transaction fits even when each of its documents replaces one of the most fields,
// every old field deleted (the store bounds a delete at 24 bytes of record).
assert(BULK_BATCH_BYTES_MAX + BULK_BATCH_DOCUMENTS_MAX * FIELDS_PER_DOCUMENT_MAX * 24 + 16 <= TRANSACTION_SIZE_BYTES_MAX);
assert(CHANGES_LIMIT_DEFAULT <= CHANGES_LIMIT_MAX && LONGPOLL_TIMEOUT_MS_DEFAULT <= LONGPOLL_TIMEOUT_MS_MAX);
// An unfiltered page of CHANGES_LIMIT_MAX changes spans at most that many transactions.
assert(CHANGES_LIMIT_MAX <= CHANGES_SCAN_TRANSACTIONS_MAX);

/** POST /admin/replica-of: characters of the primary's URL, and of its replication token. */
export const REPLICA_OF_URL_CHARS_MAX = 2048;
export const REPLICA_OF_TOKEN_CHARS_MAX = 512;
