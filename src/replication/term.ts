// The replication term and its history, kept in `<data-dir>/term.json` (never in the binlog's
// record payload). A term is the span during which one server was primary; promotion starts the
// next one. The history lists, per term, the first TSN written in it, so any server can say in
// which term a TSN was written: two servers whose logs hold the same TSN written in the same
// term hold the same record there (only one primary per term writes, and a standby only copies),
// which is how a stream's start is checked (log matching, as Raft does it).
//
// The file is replaced durably: written to a temporary name, fsynced, renamed, the directory
// fsynced (as the token file is). A store with no file is in term 1, which starts at TSN 1.

import * as path from 'node:path';
import type { FileSystem } from '../../storage/index.js';
import { DocketError, DocketErrorCode } from '../errors.js';

export const TERM_FILE = 'term.json';
const FORMAT = 'docket-term-1';

export interface TermStart {
  readonly term: number;
  /** The first TSN written in this term. */
  readonly startTsn: number;
}

export interface TermState {
  /** The highest term this server knows of (its own if primary, its primary's if standby). */
  readonly term: number;
  /** Terms in which records of this server's log were written, ascending. */
  readonly history: readonly TermStart[];
}

export const INITIAL_TERM: TermState = { term: 1, history: [{ term: 1, startTsn: 1 }] };

/** The term TSN `tsn` was written in, by `history` (0 for TSN 0, before any record). */
export function termOf(history: readonly TermStart[], tsn: number): number {
  if (tsn <= 0) return 0;
  let term = 0;
  for (const start of history) if (start.startTsn <= tsn) term = start.term;
  return term;
}

export class TermFile {
  private constructor(
    private readonly fs: FileSystem,
    private readonly directory: string,
    private current: TermState,
  ) {}

  static async open(fs: FileSystem, directory: string): Promise<TermFile> {
    const file = path.join(directory, TERM_FILE);
    if (!(await fs.exists(file))) return new TermFile(fs, directory, INITIAL_TERM);
    let state: TermState;
    try {
      const body = JSON.parse((await fs.readFile(file)).toString('utf8')) as { format?: unknown };
      if (body.format !== FORMAT) throw new Error('unexpected shape');
      state = termStateOf(body);
    } catch (error) {
      throw new DocketError(DocketErrorCode.RECOVERY_MISMATCH, `${file} is not a valid term file: ${(error as Error).message}`);
    }
    return new TermFile(fs, directory, state);
  }

  get state(): TermState {
    return this.current;
  }

  get term(): number {
    return this.current.term;
  }

  /** The term of the record at `tsn` of this server's log. */
  termOf(tsn: number): number {
    return termOf(this.current.history, tsn);
  }

  /** Durably replaces the state (temporary file, fsync, rename, fsync of the directory). */
  async save(state: TermState): Promise<void> {
    const file = path.join(this.directory, TERM_FILE);
    const temporary = `${file}.tmp`;
    if (await this.fs.exists(temporary)) await this.fs.unlink(temporary);
    const handle = await this.fs.open(temporary, 'create');
    try {
      await handle.append(Buffer.from(JSON.stringify({ format: FORMAT, term: state.term, history: state.history }) + '\n'));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await this.fs.rename(temporary, file);
    await this.fs.syncDirectory(this.directory);
    this.current = state;
  }

  /** Learns a higher current term (a standby hearing its primary). */
  async raiseTerm(term: number): Promise<void> {
    if (term > this.current.term) await this.save({ term, history: this.current.history });
  }

  /** Records that the records from `startTsn` on were written in `term` (a standby copying them). */
  async beginTerm(term: number, startTsn: number): Promise<void> {
    const last = this.current.history.at(-1)!;
    if (term === last.term) return;
    if (term < last.term) throw new DocketError(DocketErrorCode.REPLICATION_TERM_STALE, `a record of term ${term} follows records of term ${last.term}`);
    // Terms started past the end of this log (nothing of them copied) are dropped: the record at `startTsn` says which term holds it.
    const history = this.current.history.filter((h) => h.startTsn < startTsn);
    await this.save({ term: Math.max(term, this.current.term), history: [...history, { term, startTsn }] });
  }

  /** Promotion: the next term, whose records start after `lastTsn`. */
  async promote(lastTsn: number): Promise<number> {
    const term = this.current.term + 1;
    await this.save({ term, history: [...this.current.history.filter((h) => h.startTsn <= lastTsn), { term, startTsn: lastTsn + 1 }] });
    return term;
  }
}

/** `{term, history}` checked: terms rise, start TSNs do not fall, the last term is at most `term`. Throws an Error saying what is wrong. */
export function termStateOf(value: unknown): TermState {
  const body = value as { term?: unknown; history?: unknown } | null;
  if (typeof body !== 'object' || body === null || !isTerm(body.term) || !Array.isArray(body.history)) throw new Error('unexpected shape');
  const history = body.history as TermStart[];
  if (history.length === 0 || !history.every((h, i) => isTerm(h?.term) && Number.isSafeInteger(h.startTsn) && h.startTsn >= 1 && (i === 0 || (h.term > history[i - 1]!.term && h.startTsn >= history[i - 1]!.startTsn)))) throw new Error('bad history');
  if (history.at(-1)!.term > body.term) throw new Error('history beyond the term');
  return { term: body.term, history: history.map(({ term, startTsn }) => ({ term, startTsn })) };
}

function isTerm(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}
