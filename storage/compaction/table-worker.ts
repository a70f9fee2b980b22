// The worker thread's entry point: runs table jobs on the real file system, one at a time in
// arrival order, and answers each with the tables it wrote or the error it met.

import { parentPort } from 'node:worker_threads';
import { RealFileSystem } from '../file-system.js';
import { runTableJob, type TableJob } from './table-job.js';

const fs = new RealFileSystem();
let queue: Promise<void> = Promise.resolve();

parentPort!.on('message', ({ id, job }: { id: number; job: TableJob }) => {
  queue = queue.then(async () => {
    try {
      parentPort!.postMessage({ id, files: await runTableJob(fs, job) });
    } catch (error) {
      const { message, code } = error as { message?: string; code?: string };
      parentPort!.postMessage({ id, error: { message: message ?? String(error), code } });
    }
  });
});
