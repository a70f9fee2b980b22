// Coded errors of the storage engine. Codes are a stable contract: append only, and a retired
// code stays here as a comment. Storage errors carry no HTTP status; src/errors.ts maps them.

export const StorageErrorCode = {
  /** A checksum, magic number, length or structural check failed on bytes read from disk. */
  CORRUPTION: 'DOCKET_ERR_STORAGE_CORRUPTION',
  /** The operating system reported an I/O error. */
  IO: 'DOCKET_ERR_STORAGE_IO',
  /** The disk is full (ENOSPC). Nothing acknowledged is lost; writes fail until space is freed. */
  NO_SPACE: 'DOCKET_ERR_STORAGE_NO_SPACE',
  /** An earlier fsync or write failed; the engine refuses writes until it is reopened. */
  READ_ONLY: 'DOCKET_ERR_STORAGE_READ_ONLY',
  /** The engine was closed. */
  CLOSED: 'DOCKET_ERR_STORAGE_CLOSED',
  /** No column family by that name. */
  FAMILY_NOT_FOUND: 'DOCKET_ERR_STORAGE_FAMILY_NOT_FOUND',
  /** A column family by that name exists already. */
  FAMILY_EXISTS: 'DOCKET_ERR_STORAGE_FAMILY_EXISTS',
  /** An argument is out of its documented range (key too long, too many families, ...). */
  INVALID_ARGUMENT: 'DOCKET_ERR_STORAGE_INVALID_ARGUMENT',
  /** The on-disk format version is newer than this code understands. */
  UNSUPPORTED_VERSION: 'DOCKET_ERR_STORAGE_UNSUPPORTED_VERSION',
  /** Another engine (in this process or a live other one) has the directory open. */
  LOCKED: 'DOCKET_ERR_STORAGE_LOCKED',
} as const;

export type StorageErrorCode = (typeof StorageErrorCode)[keyof typeof StorageErrorCode];

export class StorageError extends Error {
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

export function corruption(message: string): StorageError {
  return new StorageError(StorageErrorCode.CORRUPTION, message);
}

export function invalidArgument(message: string): StorageError {
  return new StorageError(StorageErrorCode.INVALID_ARGUMENT, message);
}

/** Translates an operating-system error (errno code) into a StorageError. */
export function fromSystemError(error: unknown, what: string): StorageError {
  if (error instanceof StorageError) return error;
  const code = (error as { code?: string } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StorageError(StorageErrorCode.NO_SPACE, `${what}: disk full (${code})`, { cause: error });
  }
  const detail = error instanceof Error ? error.message : String(error);
  return new StorageError(StorageErrorCode.IO, `${what}: ${detail}`, { cause: error });
}
