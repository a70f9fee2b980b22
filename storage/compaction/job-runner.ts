// Where table jobs run. `WorkerRunner` keeps one worker thread for the engine's lifetime, so
// flushes and compactions use the second core and never stall request handling; `InlineRunner`
// runs them on the event loop in bounded slices (the simulated file system lives in this
// thread's memory, so crash tests use it).

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { StorageError, StorageErrorCode } from '../errors.js';
import type { FileSystem } from '../file-system.js';
import type { FileMeta } from '../manifest/version-edit.js';
import { fileMetaFromClone, runTableJob, type TableJob } from './table-job.js';

export interface JobRunner {
  run(job: TableJob): Promise<FileMeta[]>;
  close(): Promise<void>;
}

export class InlineRunner implements JobRunner {
  constructor(private readonly fs: FileSystem) {}
  run(job: TableJob): Promise<FileMeta[]> {
    return runTableJob(this.fs, job);
  }
  async close(): Promise<void> {}
}

const WORKER_URL = new URL('./table-worker.js', import.meta.url);

/** True where the compiled worker script exists (not when tests run TypeScript sources). */
export function workerAvailable(): boolean {
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

interface Reply {
  readonly id: number;
  readonly files?: FileMeta[];
  readonly error?: { message: string; code?: string };
}

/** One worker thread and the jobs it owes answers for. */
class WorkerLane {
  private readonly worker = new Worker(WORKER_URL);
  private readonly pending = new Map<number, { resolve: (files: FileMeta[]) => void; reject: (error: Error) => void }>();
  private nextId = 1;

  constructor() {
    this.worker.on('message', (reply: Reply) => this.settle(reply));
    this.worker.on('error', (error) => this.failAll(error));
    this.worker.unref(); // An idle worker must not keep the process alive; a busy one must.
  }

  run(job: TableJob): Promise<FileMeta[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, job }); // A flush's memtable is shared memory: nothing is copied.
    });
  }

  private settle(reply: Reply): void {
    const waiter = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (!waiter) return;
    if (reply.files) return waiter.resolve(reply.files.map(fileMetaFromClone));
    const code = (Object.values(StorageErrorCode) as string[]).includes(reply.error?.code ?? '') ? (reply.error!.code as StorageErrorCode) : StorageErrorCode.IO;
    waiter.reject(new StorageError(code, `background job: ${reply.error?.message}`));
  }

  private failAll(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(new StorageError(StorageErrorCode.IO, `background worker died: ${error.message}`, { cause: error }));
    this.pending.clear();
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * Flushes and compactions each on a worker thread of their own, so a long compaction never
 * delays a flush and neither competes with the event loop for the CPU. (Inline, a writer that
 * awaits batch after batch runs entirely on microtasks, so background slices get the thread
 * only while writes are stalled: flush and write then take turns instead of overlapping.)
 */
export class WorkerRunner implements JobRunner {
  private readonly flushes = new WorkerLane();
  private readonly compactions = new WorkerLane();

  run(job: TableJob): Promise<FileMeta[]> {
    return (job.kind === 'flush' ? this.flushes : this.compactions).run(job);
  }

  async close(): Promise<void> {
    await Promise.all([this.flushes.close(), this.compactions.close()]);
  }
}
