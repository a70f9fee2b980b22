// Checkpoints (admin): GET /admin/checkpoint streams a consistent online checkpoint of the
// store (src/checkpoint/FORMAT.md), what `docket backup` writes to a directory and a new
// standby starts from; POST /admin/checkpoint writes one into a directory on the server's own
// disk, with hard links for the tables. The server keeps serving reads and writes meanwhile.

import { Readable } from 'node:stream';
import * as path from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import type { CheckpointSource } from '../src/checkpoint/checkpoint.js';
import { DocketError, DocketErrorCode } from '../src/errors.js';
import * as limits from '../src/limits.js';
import type { Docket } from '../server/http/context.js';
import { JsonText } from '../src/documents/json-text.js';
import { isPlainObject } from '../src/documents/merge-patch.js';
import { parseJson } from '../server/http/json.js';
import { CHECKPOINT_MEDIA_TYPE, streamCheckpoint } from '../src/checkpoint/stream.js';
import { writeCheckpoint } from '../src/checkpoint/target.js';

export const adminRoutes: FastifyPluginAsync<{ docket: Docket }> = async (app, { docket }) => {
  // No automatic HEAD: it would capture a checkpoint (pinning tables and binlog) to send nothing.
  app.get<{ Querystring: { flush?: string } }>('/admin/checkpoint', { exposeHeadRoute: false }, async (request, reply) => {
    return sendCheckpoint(reply, await docket.store.checkpoint({ flush: flushOf(request.query.flush) }));
  });

  app.post('/admin/checkpoint', async (request, reply) => {
    const { directory, flush } = bodyOf(request.body, request.headers['content-type']);
    const source = await docket.store.checkpoint({ flush });
    try {
      const descriptor = await writeCheckpoint(source, { fileSystem: source.fileSystem, directory });
      void reply.code(201);
      return { directory, tsn: descriptor.tsn, startedTsn: descriptor.startedTsn, replayFromTsn: descriptor.replayFromTsn, files: descriptor.files.length, bytes: source.sizeBytes };
    } finally {
      source.release();
    }
  });
};

/**
 * Streams a captured checkpoint as the response (GET /admin/checkpoint, GET
 * /replication/checkpoint), releasing it when the stream ends however it ends.
 */
export function sendCheckpoint(reply: FastifyReply, source: CheckpointSource, headers: Record<string, string> = {}): FastifyReply {
  const { sizeBytes, chunks } = streamCheckpoint(source);
  // A read that fails mid-stream destroys the response: the client sees a truncated stream.
  const body = Readable.from(chunks, { objectMode: false });
  body.once('close', () => source.release());
  // A client that stops reading stops the socket's progress: cut it, which releases the pins.
  reply.raw.setTimeout(limits.CHECKPOINT_STREAM_IDLE_MS_MAX, () => reply.raw.destroy());
  void reply
    .headers(headers)
    .header('content-type', CHECKPOINT_MEDIA_TYPE)
    .header('content-length', String(sizeBytes))
    .header('x-docket-checkpoint-tsn', String(source.descriptor.tsn));
  return reply.send(body);
}

/** `flush=true|false` (default false). */
export function flushOf(text: string | undefined): boolean {
  if (text === undefined || text === 'false') return false;
  if (text === 'true') return true;
  throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, `flush is true or false, not ${JSON.stringify(text.slice(0, 20))}`);
}

/** The body `{"directory": "/absolute/path", "flush"?: boolean}`. */
function bodyOf(text: unknown, type: string | undefined): { directory: string; flush: boolean } {
  if (text === undefined && type !== undefined) throw new DocketError(DocketErrorCode.UNSUPPORTED_MEDIA_TYPE, `the body must be application/json, not ${type}`);
  const body = text instanceof JsonText ? parseJson(text.bytes) : text;
  const refuse = (): never => {
    throw new DocketError(DocketErrorCode.INVALID_ARGUMENT, 'the body is {"directory": "/an/absolute/path", "flush": false}: a new or empty directory on the server\'s disk');
  };
  if (!isPlainObject(body)) return refuse();
  const { directory, flush, ...rest } = body as { directory?: unknown; flush?: unknown };
  if (typeof directory !== 'string' || !path.isAbsolute(directory) || directory.includes('\u0000')) return refuse();
  if ((flush !== undefined && typeof flush !== 'boolean') || Object.keys(rest).length > 0) return refuse();
  return { directory: path.normalize(directory), flush: flush ?? false };
}
