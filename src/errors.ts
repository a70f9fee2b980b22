// Coded errors of the document layer. Codes are a stable contract: append only, and a retired
// code stays here as a comment. Storage errors (DOCKET_ERR_STORAGE_*) pass through unchanged;
// the HTTP layer maps both kinds to statuses.

export const DocketErrorCode = {
  /** No collection by that name. */
  COLLECTION_NOT_FOUND: 'DOCKET_ERR_COLLECTION_NOT_FOUND',
  /** A collection by that name exists with a different definition. */
  COLLECTION_EXISTS: 'DOCKET_ERR_COLLECTION_EXISTS',
  /** A collection name outside [A-Za-z0-9_-]{1,64}. */
  COLLECTION_NAME_INVALID: 'DOCKET_ERR_COLLECTION_NAME_INVALID',
  /** The collection's JSON Schema or column mapping does not compile or is malformed. */
  COLLECTION_DEFINITION_INVALID: 'DOCKET_ERR_COLLECTION_DEFINITION_INVALID',
  /** Too many collections, or a collection has too many distinct fields. */
  COLLECTION_LIMIT: 'DOCKET_ERR_COLLECTION_LIMIT',
  /** No document by that id (or it was deleted). */
  DOCUMENT_NOT_FOUND: 'DOCKET_ERR_DOCUMENT_NOT_FOUND',
  /**
   * A precondition failed: the revision differs, or the document exists (or does not). Over
   * HTTP this is 412, whether the condition came from If-Match / If-None-Match or a batch.
   */
  DOCUMENT_CONFLICT: 'DOCKET_ERR_DOCUMENT_CONFLICT',
  /** The document is not a JSON object, or holds something JSON cannot represent. */
  DOCUMENT_INVALID: 'DOCKET_ERR_DOCUMENT_INVALID',
  /** The document does not satisfy the collection's JSON Schema. */
  DOCUMENT_SCHEMA: 'DOCKET_ERR_DOCUMENT_SCHEMA',
  /** An id that is empty, too long, not well-formed Unicode, or holds a control character. */
  ID_INVALID: 'DOCKET_ERR_ID_INVALID',
  /** A field name that is too long or not well-formed Unicode. */
  FIELD_NAME_INVALID: 'DOCKET_ERR_FIELD_NAME_INVALID',
  /** A documented limit was exceeded (document bytes, fields, depth, batch size...). */
  LIMIT_EXCEEDED: 'DOCKET_ERR_LIMIT_EXCEEDED',
  /** A binlog record or segment failed its checks in the middle of the log. */
  BINLOG_CORRUPTION: 'DOCKET_ERR_BINLOG_CORRUPTION',
  /** Recovery found the engine's flush flags and the binlog disagree; the store does not open. */
  RECOVERY_MISMATCH: 'DOCKET_ERR_RECOVERY_MISMATCH',
  /** An earlier write or sync failed; the store refuses writes until it is reopened. */
  READ_ONLY: 'DOCKET_ERR_READ_ONLY',
  /** The store is closed. */
  CLOSED: 'DOCKET_ERR_CLOSED',
  /** An argument outside its documented range (a bad option, a bad cursor...). */
  INVALID_ARGUMENT: 'DOCKET_ERR_INVALID_ARGUMENT',
  /** A document names the same top-level field twice. */
  DOCUMENT_FIELD_DUPLICATE: 'DOCKET_ERR_DOCUMENT_FIELD_DUPLICATE',
  /** No index by that name on the collection. */
  INDEX_NOT_FOUND: 'DOCKET_ERR_INDEX_NOT_FOUND',
  /** An index by that name exists with a different definition. */
  INDEX_EXISTS: 'DOCKET_ERR_INDEX_EXISTS',
  /** An index definition that is malformed (fields, orders, unique) or past a documented bound. */
  INDEX_DEFINITION_INVALID: 'DOCKET_ERR_INDEX_DEFINITION_INVALID',
  /** A write would give two documents the same values of a unique index. */
  INDEX_UNIQUE_CONFLICT: 'DOCKET_ERR_INDEX_UNIQUE_CONFLICT',
  /** A document's values for an index make a key longer than INDEX_KEY_SIZE_BYTES_MAX. */
  INDEX_KEY_TOO_LARGE: 'DOCKET_ERR_INDEX_KEY_TOO_LARGE',
  /** A query that is malformed: an unknown operator, a wrong type, too deep, too many clauses, a bad bookmark. */
  QUERY_INVALID: 'DOCKET_ERR_QUERY_INVALID',
  /** No ready index serves the query, and it did not set allow_scan. */
  QUERY_NO_INDEX: 'DOCKET_ERR_QUERY_NO_INDEX',
  // ---- the HTTP layer's own ----
  /** A request body that is not what its media type promises: bad JSON, invalid UTF-8, a bad NDJSON line. */
  BODY_INVALID: 'DOCKET_ERR_BODY_INVALID',
  /** A body in a media type the route does not take. */
  UNSUPPORTED_MEDIA_TYPE: 'DOCKET_ERR_UNSUPPORTED_MEDIA_TYPE',
  /** No route for that method and path. */
  ROUTE_NOT_FOUND: 'DOCKET_ERR_ROUTE_NOT_FOUND',
  /** The server is recovering or shutting down; try again. */
  UNAVAILABLE: 'DOCKET_ERR_UNAVAILABLE',
  /** The change feed was asked for TSNs the binlog has already purged. */
  CHANGES_PURGED: 'DOCKET_ERR_CHANGES_PURGED',
  /** The request took longer than the server's request timeout. */
  REQUEST_TIMEOUT: 'DOCKET_ERR_REQUEST_TIMEOUT',
  /** A bug or an unexpected failure; the message and the server log say more. */
  INTERNAL: 'DOCKET_ERR_INTERNAL',
  /** No valid access token: none was sent, or it is malformed, unknown, revoked or expired. */
  AUTH_REQUIRED: 'DOCKET_ERR_AUTH_REQUIRED',
  /** The token is valid but its role may not do this (server/auth/roles.ts). */
  AUTH_FORBIDDEN: 'DOCKET_ERR_AUTH_FORBIDDEN',
  /** The server is past a configured bound (connections, requests in flight, event-loop delay); retry after Retry-After. */
  OVERLOADED: 'DOCKET_ERR_OVERLOADED',
  /** A request body in a Content-Encoding the server does not decode (it decodes gzip, deflate, br, zstd). */
  ENCODING_UNSUPPORTED: 'DOCKET_ERR_ENCODING_UNSUPPORTED',
  /** A request body whose bytes are not valid for the Content-Encoding it declares (truncated, corrupt). */
  ENCODING_INVALID: 'DOCKET_ERR_ENCODING_INVALID',
  /** A JSON Patch (RFC 6902) that is malformed: not an array of operations, a bad op, member or pointer, too many operations. */
  PATCH_INVALID: 'DOCKET_ERR_PATCH_INVALID',
  /** A JSON Patch that cannot apply to the document as it is: a path that does not exist, an index out of range. */
  PATCH_CONFLICT: 'DOCKET_ERR_PATCH_CONFLICT',
  /** A JSON Patch `test` operation failed. */
  PATCH_TEST_FAILED: 'DOCKET_ERR_PATCH_TEST_FAILED',
  // ---- replication (docs/REPLICATION.md) ----
  /** This server is a standby: it takes no writes; the message and X-Docket-Primary name its primary. */
  STANDBY_READ_ONLY: 'DOCKET_ERR_STANDBY_READ_ONLY',
  /** A stream or record from a term older than one this server knows: the sender was deposed. */
  REPLICATION_TERM_STALE: 'DOCKET_ERR_REPLICATION_TERM_STALE',
  /** The standby cannot follow the log from where it is (purged, or its history diverged): it needs a checkpoint. */
  CHECKPOINT_NEEDED: 'DOCKET_ERR_CHECKPOINT_NEEDED',
  /** Fewer standbys than the commit level needs are in the quorum: the write was refused before it was made. */
  REPLICATION_QUORUM_LOST: 'DOCKET_ERR_REPLICATION_QUORUM_LOST',
  /** The write is committed on the primary but was not confirmed at its commit level in time. */
  REPLICATION_TIMEOUT: 'DOCKET_ERR_REPLICATION_TIMEOUT',
  /** A read named a TSN (X-Docket-Min-TSN, min_tsn) this standby has not replayed in time; retry after Retry-After. */
  REPLICATION_BEHIND: 'DOCKET_ERR_REPLICATION_BEHIND',
  /** A replication request to a server not in the role it needs (promote a primary, pull from a standby). */
  REPLICATION_ROLE: 'DOCKET_ERR_REPLICATION_ROLE',
  /** A running standby could not rebuild itself from its primary's checkpoint; it keeps its old copy and tries again (/stats replication.rebuild). */
  STANDBY_REBUILD_FAILED: 'DOCKET_ERR_STANDBY_REBUILD_FAILED',
  // ---- checkpoints and backups (src/checkpoint/FORMAT.md) ----
  /** A checkpoint or backup was asked to write into a directory that exists and is not empty. */
  CHECKPOINT_TARGET_NOT_EMPTY: 'DOCKET_ERR_CHECKPOINT_TARGET_NOT_EMPTY',
  /** A checkpoint stream whose framing, a name, a length or a checksum is wrong. */
  CHECKPOINT_CORRUPT: 'DOCKET_ERR_CHECKPOINT_CORRUPT',
  /** A checkpoint stream that ended before its end record. */
  CHECKPOINT_TRUNCATED: 'DOCKET_ERR_CHECKPOINT_TRUNCATED',
  /** A data directory holding a checkpoint or backup that was never completed; it does not open. */
  CHECKPOINT_INCOMPLETE: 'DOCKET_ERR_CHECKPOINT_INCOMPLETE',
} as const;

export type DocketErrorCode = (typeof DocketErrorCode)[keyof typeof DocketErrorCode];

export class DocketError extends Error {
  readonly code: DocketErrorCode;

  constructor(code: DocketErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DocketError';
    this.code = code;
  }
}
