// What `docket load` shows while it runs: a progress bar (cli-progress) on a terminal, a plain
// line every few seconds otherwise (logs, CI), and the summary at the end. Rates count this
// run only; the ETA comes from input bytes read against the inputs' size on disk.

import { SingleBar } from 'cli-progress';
import type { LoadCounts } from './checkpoint.js';
import type { LoadProgress } from './loader.js';

const BAR_REDRAW_MS = 250;

export interface ProgressOptions {
  readonly stream: NodeJS.WriteStream;
  /** A bar when the stream is a terminal; otherwise a line each intervalMs. */
  readonly intervalMs: number;
  readonly quiet: boolean;
}

interface Figures {
  readonly documents: number;
  readonly megabytes: number;
  readonly documentsPerSecond: number;
  readonly megabytesPerSecond: number;
  /** 0..1 of the input's bytes on disk, or null (standard input). */
  readonly fraction: number | null;
  readonly etaSeconds: number | null;
}

/** Starts showing the progress `sample` returns; the returned function stops it. */
export function showProgress(sample: () => LoadProgress, options: ProgressOptions): () => void {
  if (options.quiet) return () => undefined;
  const started = performance.now();
  const first = sample();
  const figures = (): Figures => measure(first, sample(), (performance.now() - started) / 1000);
  if (!options.stream.isTTY) {
    const timer = setInterval(() => options.stream.write(`docket load: ${describe(figures())}\n`), options.intervalMs);
    return () => clearInterval(timer);
  }
  const bar = new SingleBar({
    stream: options.stream,
    format: '{bar} {percent} | {documents} docs | {megabytes} MB | {rate} docs/s | {mbRate} MB/s | ETA {remaining}',
    hideCursor: true,
    barsize: 24,
    fps: 1000 / BAR_REDRAW_MS,
  });
  const payload = (now: Figures): Record<string, string> => ({
    percent: now.fraction === null ? '' : `${(now.fraction * 100).toFixed(1)}%`,
    documents: group(now.documents),
    megabytes: now.megabytes.toFixed(1),
    rate: group(Math.round(now.documentsPerSecond)),
    mbRate: now.megabytesPerSecond.toFixed(2),
    remaining: now.etaSeconds === null ? '?' : duration(now.etaSeconds), // Not "eta": cli-progress fills that token itself.
  });
  bar.start(1000, 0, payload(figures()));
  const timer = setInterval(() => {
    const now = figures();
    bar.update(Math.round((now.fraction ?? 0) * 1000), payload(now));
  }, BAR_REDRAW_MS);
  return () => {
    clearInterval(timer);
    const now = figures();
    bar.update(Math.round((now.fraction ?? 0) * 1000), payload(now));
    bar.stop();
  };
}

function measure(first: LoadProgress, now: LoadProgress, seconds: number): Figures {
  const documents = now.counts.lines - first.counts.lines;
  const megabytes = (now.counts.bytes - first.counts.bytes) / 1e6;
  const total = now.fileBytesTotal;
  const fraction = total === null || total === 0 ? null : Math.min(1, now.fileBytesAcknowledged / total);
  const readRate = (now.fileBytesAcknowledged - first.fileBytesAcknowledged) / Math.max(seconds, 1e-3);
  const etaSeconds = total === null || readRate <= 0 ? null : Math.max(0, total - now.fileBytesAcknowledged) / readRate;
  return { documents, megabytes, documentsPerSecond: documents / Math.max(seconds, 1e-3), megabytesPerSecond: megabytes / Math.max(seconds, 1e-3), fraction, etaSeconds };
}

function describe(figures: Figures): string {
  const parts = [`${group(figures.documents)} lines`, `${figures.megabytes.toFixed(1)} MB`, `${group(Math.round(figures.documentsPerSecond))} docs/s`, `${figures.megabytesPerSecond.toFixed(2)} MB/s`];
  if (figures.fraction !== null) parts.push(`${(figures.fraction * 100).toFixed(1)}% of input read`);
  if (figures.etaSeconds !== null) parts.push(`ETA ${duration(figures.etaSeconds)}`);
  return parts.join(', ');
}

/** The end-of-load summary line. */
export function summarize(counts: LoadCounts, thisRun: LoadCounts, seconds: number): string {
  const rate = thisRun.lines / Math.max(seconds, 1e-3);
  const megabytes = thisRun.bytes / 1e6;
  const resumed = thisRun.lines !== counts.lines ? ` (this run: ${group(thisRun.lines)} lines)` : '';
  return (
    `${group(counts.lines)} lines: ${group(counts.stored)} stored, ${group(counts.failed)} failed${resumed}; ` +
    `${megabytes.toFixed(1)} MB in ${seconds.toFixed(1)} s (${group(Math.round(rate))} docs/s, ${(megabytes / Math.max(seconds, 1e-3)).toFixed(2)} MB/s)`
  );
}

function group(value: number): string {
  return value.toLocaleString('en-US');
}

function duration(seconds: number): string {
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  if (whole < 3600) return `${Math.floor(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.floor(whole / 3600)}h${String(Math.floor((whole % 3600) / 60)).padStart(2, '0')}m`;
}
