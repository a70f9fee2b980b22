// The storage engine's whole public surface. Nothing outside storage/ imports deeper than this.

export { Engine } from './db.js';
export type { EngineIterator, IteratorOptions, KeyValue, ReadOptions, Snapshot } from './reader.js';
export type { EngineStats, FamilyStats, RecoveryReport } from './engine.js';
export type { ApplyOptions, EngineOptions, WriteOptions } from './engine.js';
export { StorageError, StorageErrorCode } from './errors.js';
export { RealFileSystem, type File, type FileSystem, type OpenMode } from './file-system.js';
export type { FlushFlag } from './manifest/version-edit.js';
export { WriteBatch } from './write-batch.js';
export { LruCache } from './cache.js';
export * as limits from './limits.js';
// The record framing, for the document layer's binlog (see storage/log/FORMAT.md).
export { LogReader, type LogEndStatus, type LogReaderOptions, type LogRecord } from './log/log-reader.js';
export { LogWriter, type LogWriterOptions } from './log/log-writer.js';
export { ByteReader, ByteWriter, writeVarint } from './util/coding.js';
// The engine's part of a checkpoint (tables and a fresh manifest), for the document layer's.
export { checkpointEngine, type CheckpointFile, type EngineCheckpoint } from './checkpoint.js';
export { crc32c, crc32cUpdate } from './util/crc32c.js';
