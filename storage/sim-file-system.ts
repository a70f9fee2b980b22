// A simulated in-memory FileSystem for crash and fault tests. It keeps, per file, the current and
// the durable bytes and, per directory, the current and the durable entries, numbers every
// mutating operation, and builds the disk a power loss would leave behind under a chosen damage.

import * as path from 'node:path';
import { fromSystemError, StorageError } from './errors.js';
import type { File, FileSystem, OpenMode } from './file-system.js';

/** What a power loss does to the unsynced state; see `SimFileSystem.image`. */
export type Damage = 'drop-unsynced' | 'keep-prefix' | 'torn-write' | 'reorder' | 'revert-directories' | 'zero-extend';

export const DAMAGES: readonly Damage[] = [
  'drop-unsynced',
  'keep-prefix',
  'torn-write',
  'reorder',
  'revert-directories',
  'zero-extend',
];

export type FaultKind = 'EIO' | 'ENOSPC' | 'short-write';

/** The mutating calls a fault can target. 'open' means open in mode 'create'. */
export type FaultCall = 'append' | 'write' | 'sync' | 'open' | 'rename' | 'unlink' | 'truncate' | 'syncDirectory' | 'mkdir' | 'link';

export interface Fault {
  /** The Nth matching mutating operation from now fails, 1-based. */
  operation: number;
  kind: FaultKind;
  /** When true, every later matching operation fails too. */
  persistent: boolean;
  /** Only operations on a path containing this substring match. */
  path?: string;
  /** Only this call matches. */
  call?: FaultCall;
}

/** Thrown by every operation once the simulated machine has crashed. */
export class SimulatedCrash extends Error {
  constructor(message = 'simulated crash: the machine lost power') {
    super(message);
    this.name = 'SimulatedCrash';
  }
}

const SECTOR_BYTES = 512;
const MAX_ZERO_EXTENSION_BYTES = 8192;

const ERROR_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EEXIST: 'file already exists',
  EIO: 'i/o error',
  ENOSPC: 'no space left on device',
  EISDIR: 'illegal operation on a directory',
  ENOTDIR: 'not a directory',
  EBADF: 'bad file descriptor',
};

/** Builds an errno-style error and passes it through fromSystemError, as RealFileSystem does. */
function systemError(code: string, what: string): StorageError {
  const error = Object.assign(new Error(`${code}: ${ERROR_TEXT[code] ?? 'error'}, ${what}`), { code });
  return fromSystemError(error, what);
}

function faultError(kind: FaultKind, what: string): StorageError {
  return systemError(kind === 'EIO' ? 'EIO' : 'ENOSPC', what);
}

type Random = () => number;

/**
 * mulberry32: small, fast and good enough to pick crash damage reproducibly from a seed. The
 * tests' seeded workloads use it too.
 */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max], both inclusive. */
function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A growable byte array. Bytes past `length` are kept zero so that a gap reads as zeros. */
class Bytes {
  private buffer: Buffer;
  length: number;

  constructor(initial?: Uint8Array) {
    this.buffer = Buffer.from(initial ?? new Uint8Array(0));
    this.length = this.buffer.length;
  }

  view(): Buffer {
    return this.buffer.subarray(0, this.length);
  }

  copy(): Bytes {
    return new Bytes(this.view());
  }

  write(position: number, data: Uint8Array): void {
    this.reserve(position + data.length);
    this.buffer.set(data, position);
    this.length = Math.max(this.length, position + data.length);
  }

  truncate(sizeBytes: number): void {
    if (sizeBytes < this.length) this.buffer.fill(0, sizeBytes, this.length);
    else this.reserve(sizeBytes);
    this.length = sizeBytes;
  }

  flip(offset: number, bit: number): void {
    if (offset < this.length) this.buffer[offset] ^= 1 << bit;
  }

  private reserve(sizeBytes: number): void {
    if (sizeBytes <= this.buffer.length) return;
    const next = Buffer.alloc(Math.max(sizeBytes, this.buffer.length * 2));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
}

type Mutation = { kind: 'write'; position: number; data: Buffer } | { kind: 'truncate'; sizeBytes: number };

/** An inode: open Files hold it, so they keep working after a rename or an unlink. */
interface FileNode {
  kind: 'file';
  current: Bytes;
  durable: Bytes;
  /** Writes and truncates since the last sync, oldest first; crash images replay some of them. */
  pending: Mutation[];
}

interface DirNode {
  kind: 'dir';
  entries: Map<string, Node>;
  durable: Map<string, Node>;
}

type Node = FileNode | DirNode;

/** One entry set (node) or removed (undefined); a rename is two of these applied together. */
interface EntryChange {
  dir: DirNode;
  name: string;
  node: Node | undefined;
}

function newFile(contents?: Uint8Array): FileNode {
  return { kind: 'file', current: new Bytes(contents), durable: new Bytes(contents), pending: [] };
}

function newDir(): DirNode {
  return { kind: 'dir', entries: new Map(), durable: new Map() };
}

function apply(bytes: Bytes, mutation: Mutation): void {
  if (mutation.kind === 'write') bytes.write(mutation.position, mutation.data);
  else bytes.truncate(mutation.sizeBytes);
}

function recordWrite(node: FileNode, position: number, data: Buffer): void {
  if (data.length === 0) return;
  node.current.write(position, data);
  node.pending.push({ kind: 'write', position, data });
}

function makeDurable(node: FileNode): void {
  // Replaying the pending mutations costs only the unsynced bytes, not the whole file.
  for (const mutation of node.pending) apply(node.durable, mutation);
  node.pending = [];
}

/** What a failed fdatasync may do on Linux: the dirty pages are dropped, not retried. */
function discardUnsynced(node: FileNode): void {
  node.current = node.durable.copy();
  node.pending = [];
}

interface ArmedFault extends Fault {
  remaining: number;
  fired: boolean;
}

/** State shared by the file system and its open files: counters, faults and the crash switch. */
class Machine {
  operationCount = 0;
  bytesWritten = 0;
  /** Operations an injected fault or the byte limit failed (what a fault sweep checks it reached). */
  faultsFired = 0;
  crashed = false;
  crashAt = Infinity;
  faults: ArmedFault[] = [];
  byteLimit = Infinity;
  byteLimitKind: 'EIO' | 'ENOSPC' = 'ENOSPC';

  check(): void {
    if (this.crashed) throw new SimulatedCrash();
  }

  /** Runs one numbered mutating operation, failing it instead when an injected fault matches. */
  async mutate<T>(call: FaultCall, paths: string[], body: () => T, onFault?: (kind: FaultKind) => void): Promise<T> {
    this.check();
    this.operationCount += 1;
    try {
      const fault = this.faultFor(call, paths);
      if (fault === undefined) return body();
      this.faultsFired += 1;
      onFault?.(fault);
      throw faultError(fault, `${call} ${paths.join(' to ')}`);
    } finally {
      if (this.operationCount === this.crashAt) this.crashed = true;
    }
  }

  private faultFor(call: FaultCall, paths: string[]): FaultKind | undefined {
    let hit: FaultKind | undefined;
    for (const fault of this.faults) {
      if (fault.call !== undefined && fault.call !== call) continue;
      if (fault.path !== undefined && !paths.some((p) => p.includes(fault.path as string))) continue;
      if (!fault.fired) fault.remaining -= 1;
      if (fault.remaining > 0 || (fault.fired && !fault.persistent)) continue;
      fault.fired = true;
      hit ??= fault.kind;
    }
    this.faults = this.faults.filter((fault) => !fault.fired || fault.persistent);
    return hit;
  }

  /** Counts bytes against the flaky-disk budget and returns how many of them may be written. */
  grant(wantedBytes: number): number {
    const allowed = Math.max(0, Math.min(wantedBytes, this.byteLimit - this.bytesWritten));
    this.bytesWritten += allowed;
    if (allowed < wantedBytes) this.faultsFired += 1;
    return allowed;
  }
}

class SimFile implements File {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly node: FileNode,
    private readonly writable: boolean,
    private readonly machine: Machine,
  ) {}

  size(): number {
    return this.node.current.length;
  }

  async append(data: Uint8Array): Promise<void> {
    return this.put('append', undefined, data);
  }

  async write(position: number, data: Uint8Array): Promise<void> {
    return this.put('write', position, data);
  }

  async read(position: number, length: number): Promise<Buffer> {
    this.usable(false, 'read');
    return Buffer.from(this.node.current.view().subarray(position, position + length));
  }

  async sync(): Promise<void> {
    this.usable(false, 'fdatasync');
    const node = this.node;
    return this.machine.mutate('sync', [this.path], () => makeDurable(node), () => discardUnsynced(node));
  }

  async truncate(sizeBytes: number): Promise<void> {
    this.usable(true, 'truncate');
    const node = this.node;
    return this.machine.mutate('truncate', [this.path], () => {
      node.current.truncate(sizeBytes);
      node.pending.push({ kind: 'truncate', sizeBytes });
    });
  }

  async close(): Promise<void> {
    this.usable(false, 'close');
    this.closed = true;
  }

  private async put(call: 'append' | 'write', at: number | undefined, data: Uint8Array): Promise<void> {
    this.usable(true, call);
    const { node, machine } = this;
    const position = at ?? node.current.length;
    // A private copy: the caller may reuse its buffer, and pending writes are replayed later.
    const bytes = Buffer.from(data);
    const shortWrite = (kind: FaultKind): void => {
      if (kind !== 'short-write') return;
      const half = Math.floor(bytes.length / 2);
      machine.bytesWritten += half;
      recordWrite(node, position, bytes.subarray(0, half));
    };
    return machine.mutate(call, [this.path], () => {
      const allowed = machine.grant(bytes.length);
      recordWrite(node, position, bytes.subarray(0, allowed));
      if (allowed < bytes.length) throw faultError(machine.byteLimitKind, `${call} ${this.path}`);
    }, shortWrite);
  }

  private usable(forWriting: boolean, what: string): void {
    this.machine.check();
    if (this.closed || (forWriting && !this.writable)) throw systemError('EBADF', `${what} ${this.path}`);
  }
}

/** Damages that keep a random prefix of the unsynced directory changes too. */
const PREFIX_DAMAGES: ReadonlySet<Damage> = new Set<Damage>(['keep-prefix', 'torn-write', 'reorder']);

function replay(durable: Bytes, mutations: Mutation[]): Buffer {
  const bytes = durable.copy();
  for (const mutation of mutations) apply(bytes, mutation);
  return bytes.view();
}

/** Cuts a write at a sector boundary and fills the rest of that sector with garbage or zeros. */
function tear(write: Mutation & { kind: 'write' }, random: Random): Mutation {
  const end = write.position + write.data.length;
  const firstSector = Math.floor(write.position / SECTOR_BYTES) * SECTOR_BYTES;
  const cut = firstSector + SECTOR_BYTES * randomInt(random, 0, Math.ceil((end - firstSector) / SECTOR_BYTES) - 1);
  const keptBytes = Math.max(cut, write.position) - write.position;
  const tornEnd = Math.min(cut + SECTOR_BYTES, end) - write.position;
  const data = Buffer.from(write.data.subarray(0, tornEnd));
  const garbage = random() < 0.5;
  for (let i = keptBytes; i < tornEnd; i++) data[i] = garbage ? Math.floor(random() * 256) : 0;
  return { kind: 'write', position: write.position, data };
}

function tornImage(file: FileNode, random: Random): Buffer {
  // At least one pending write is kept when there is any, so that there is something to tear.
  const count = file.pending.length === 0 ? 0 : randomInt(random, 1, file.pending.length);
  const kept = file.pending.slice(0, count);
  const last = kept[kept.length - 1];
  if (last?.kind === 'write') kept[kept.length - 1] = tear(last, random);
  return replay(file.durable, kept);
}

function zeroExtendedImage(file: FileNode, random: Random): Buffer {
  const durable = file.durable.view();
  // Only files with unsynced growth: an fdatasync'd size is durable, so a closed SST is never extended.
  if (file.pending.length === 0 || random() < 0.5) return durable;
  return Buffer.concat([durable, Buffer.alloc(randomInt(random, 1, MAX_ZERO_EXTENSION_BYTES))]);
}

function fileImage(file: FileNode, damage: Damage, random: Random): Buffer {
  switch (damage) {
    case 'drop-unsynced':
      return file.durable.view();
    case 'revert-directories':
      return file.current.view();
    case 'zero-extend':
      return zeroExtendedImage(file, random);
    case 'keep-prefix':
      return replay(file.durable, file.pending.slice(0, randomInt(random, 0, file.pending.length)));
    case 'torn-write':
      return tornImage(file, random);
    case 'reorder':
      return replay(file.durable, file.pending.filter(() => random() < 0.5));
  }
}

/** Copies the tree reachable from `root` through `entriesOf`, with every copy fully durable. */
function copyTree(root: DirNode, entriesOf: (dir: DirNode) => Map<string, Node>, contentsOf: (file: FileNode) => Buffer): DirNode {
  // Memoized by identity: a file under two names (a half-kept cross-directory rename) stays one inode.
  const copies = new Map<Node, Node>();
  const copy = (node: Node): Node => {
    const done = copies.get(node);
    if (done !== undefined) return done;
    if (node.kind === 'file') {
      const file = newFile(contentsOf(node));
      copies.set(node, file);
      return file;
    }
    const dir = newDir();
    copies.set(node, dir);
    const entries = entriesOf(node);
    // Sorted, so the random choices are consumed in the same order for the same state.
    for (const name of [...entries.keys()].sort()) dir.entries.set(name, copy(entries.get(name) as Node));
    dir.durable = new Map(dir.entries);
    return dir;
  };
  return copy(root) as DirNode;
}

function resolvePath(filePath: string): string {
  return path.posix.resolve('/', path.posix.normalize(filePath));
}

function components(filePath: string): string[] {
  return resolvePath(filePath).split('/').filter((name) => name !== '');
}

export class SimFileSystem implements FileSystem {
  private readonly machine = new Machine();
  private root: DirNode = newDir();
  /** Directory changes not yet made durable by syncDirectory, oldest first. */
  private changes: EntryChange[][] = [];

  /** How many mutating operations have been attempted, failed ones included. */
  get operationCount(): number {
    return this.machine.operationCount;
  }

  /** Total bytes written through append and write. */
  get bytesWritten(): number {
    return this.machine.bytesWritten;
  }

  get crashed(): boolean {
    return this.machine.crashed;
  }

  /** Operations that an injected fault or the byte limit failed so far. */
  get faultsFired(): number {
    return this.machine.faultsFired;
  }

  /** Lets `operations` more mutating operations complete, then rejects everything. */
  crashAfter(operations: number): void {
    if (!Number.isInteger(operations) || operations < 0) throw new RangeError(`crashAfter: bad count ${operations}`);
    if (operations === 0) this.crashNow();
    else this.machine.crashAt = this.machine.operationCount + operations;
  }

  crashNow(): void {
    this.machine.crashed = true;
  }

  injectFault(fault: Fault): void {
    if (!Number.isInteger(fault.operation) || fault.operation < 1) {
      throw new RangeError(`injectFault: operation must be a positive integer, got ${fault.operation}`);
    }
    this.machine.faults.push({ ...fault, remaining: fault.operation, fired: false });
  }

  /** A flaky disk: `bytes` more bytes through append and write succeed, then writes fail. */
  failAfterBytes(bytes: number, kind: 'EIO' | 'ENOSPC'): void {
    this.machine.byteLimit = this.machine.bytesWritten + bytes;
    this.machine.byteLimitKind = kind;
  }

  /** Removes every injected fault and the byte limit. */
  clearFaults(): void {
    this.machine.faults = [];
    this.machine.byteLimit = Infinity;
  }

  async open(filePath: string, mode: OpenMode): Promise<File> {
    if (mode === 'create') return this.machine.mutate('open', [filePath], () => this.createFile(filePath));
    this.machine.check();
    const node = this.lookup(filePath);
    if (node === undefined) throw systemError('ENOENT', `open ${filePath}`);
    if (node.kind === 'dir') throw systemError('EISDIR', `open ${filePath}`);
    return new SimFile(filePath, node, mode === 'write', this.machine);
  }

  async readFile(filePath: string): Promise<Buffer> {
    this.machine.check();
    const node = this.lookup(filePath);
    if (node === undefined) throw systemError('ENOENT', `read ${filePath}`);
    if (node.kind === 'dir') throw systemError('EISDIR', `read ${filePath}`);
    return Buffer.from(node.current.view());
  }

  async list(directory: string): Promise<string[]> {
    this.machine.check();
    const node = this.lookup(directory);
    if (node === undefined) throw systemError('ENOENT', `list ${directory}`);
    if (node.kind === 'file') throw systemError('ENOTDIR', `list ${directory}`);
    return [...node.entries.keys()].sort();
  }

  async exists(filePath: string): Promise<boolean> {
    this.machine.check();
    return this.lookup(filePath) !== undefined;
  }

  async mkdir(directory: string): Promise<void> {
    return this.machine.mutate('mkdir', [directory], () => {
      let dir = this.root;
      for (const name of components(directory)) {
        const next = dir.entries.get(name);
        if (next?.kind === 'file') throw systemError('ENOTDIR', `mkdir ${directory}`);
        if (next !== undefined) {
          dir = next;
          continue;
        }
        const created = newDir();
        this.change([{ dir, name, node: created }]);
        dir = created;
      }
    });
  }

  async rename(from: string, to: string): Promise<void> {
    return this.machine.mutate('rename', [from, to], () => {
      const what = `rename ${from} to ${to}`;
      const source = this.parentOf(from, what);
      const node = source.dir.entries.get(source.name);
      if (node === undefined) throw systemError('ENOENT', what);
      const target = this.parentOf(to, what);
      if (target.dir === source.dir && target.name === source.name) return;
      if (target.dir.entries.get(target.name)?.kind === 'dir') throw systemError('EISDIR', what);
      this.change([
        { dir: source.dir, name: source.name, node: undefined },
        { dir: target.dir, name: target.name, node },
      ]);
    });
  }

  /** A second directory entry for the same inode: writes through either name are seen by both. */
  async link(existingPath: string, newPath: string): Promise<void> {
    return this.machine.mutate('link', [existingPath, newPath], () => {
      const what = `link ${existingPath} to ${newPath}`;
      const node = this.lookup(existingPath);
      if (node === undefined) throw systemError('ENOENT', what);
      if (node.kind === 'dir') throw systemError('EISDIR', what);
      const target = this.parentOf(newPath, what);
      if (target.dir.entries.has(target.name)) throw systemError('EEXIST', what);
      this.change([{ dir: target.dir, name: target.name, node }]);
    });
  }

  async unlink(filePath: string): Promise<void> {
    return this.machine.mutate('unlink', [filePath], () => {
      const { dir, name } = this.parentOf(filePath, `unlink ${filePath}`);
      const node = dir.entries.get(name);
      if (node === undefined) throw systemError('ENOENT', `unlink ${filePath}`);
      if (node.kind === 'dir') throw systemError('EISDIR', `unlink ${filePath}`);
      this.change([{ dir, name, node: undefined }]);
    });
  }

  async syncDirectory(directory: string): Promise<void> {
    return this.machine.mutate('syncDirectory', [directory], () => {
      const dir = this.lookup(directory);
      if (dir === undefined) throw systemError('ENOENT', `fsync directory ${directory}`);
      if (dir.kind === 'file') throw systemError('ENOTDIR', `fsync directory ${directory}`);
      dir.durable = new Map(dir.entries);
      // This directory's changes are durable now; the other directories' stay pending.
      this.changes = this.changes.map((parts) => parts.filter((part) => part.dir !== dir)).filter((parts) => parts.length > 0);
    });
  }

  /**
   * The disk after a power loss now, under `damage`, as a new SimFileSystem whose state is all
   * durable. Deterministic for the same seed, damage and state; this file system is not changed.
   * Directory entries are the durable ones, except that 'keep-prefix', 'torn-write' and 'reorder'
   * also keep a random prefix of the directory changes not yet made durable by syncDirectory.
   */
  image(seed: number, damage: Damage): SimFileSystem {
    if (!DAMAGES.includes(damage)) throw new RangeError(`image: unknown damage ${String(damage)}`);
    const random = mulberry32(seed);
    const entriesOf = this.imageEntries(damage, random);
    return SimFileSystem.withRoot(copyTree(this.root, entriesOf, (file) => fileImage(file, damage, random)));
  }

  /** A deep copy of the current state with everything durable, and no faults or crash. */
  clone(): SimFileSystem {
    return SimFileSystem.withRoot(copyTree(this.root, (dir) => dir.entries, (file) => file.current.view()));
  }

  /** The current bytes of a file, for test inspection; works after a crash too. */
  readFileSync(filePath: string): Buffer | undefined {
    const node = this.lookup(filePath);
    return node?.kind === 'file' ? Buffer.from(node.current.view()) : undefined;
  }

  /** Every current file path (absolute), sorted. */
  listAll(): string[] {
    const paths: string[] = [];
    const walk = (dir: DirNode, prefix: string): void => {
      for (const [name, node] of dir.entries) {
        const child = `${prefix}/${name}`;
        if (node.kind === 'file') paths.push(child);
        else walk(node, child);
      }
    };
    walk(this.root, '');
    return paths.sort();
  }

  /** Corrupts one bit in the current, the durable and any pending copy of a byte. */
  flipBit(filePath: string, byteOffset: number, bit: number): void {
    const node = this.lookup(filePath);
    if (node?.kind !== 'file') throw new Error(`flipBit: no file ${filePath}`);
    if (byteOffset < 0 || byteOffset >= node.current.length || bit < 0 || bit > 7) {
      throw new RangeError(`flipBit: byte ${byteOffset} bit ${bit} is outside ${filePath}`);
    }
    node.current.flip(byteOffset, bit);
    node.durable.flip(byteOffset, bit);
    // Pending copies too, so that every crash image carries the corruption.
    for (const mutation of node.pending) {
      const index = mutation.kind === 'write' ? byteOffset - mutation.position : -1;
      if (mutation.kind === 'write' && index >= 0 && index < mutation.data.length) mutation.data[index] ^= 1 << bit;
    }
  }

  private static withRoot(root: DirNode): SimFileSystem {
    const fileSystem = new SimFileSystem();
    fileSystem.root = root;
    return fileSystem;
  }

  private imageEntries(damage: Damage, random: Random): (dir: DirNode) => Map<string, Node> {
    if (!PREFIX_DAMAGES.has(damage)) return (dir) => dir.durable;
    const kept = this.changes.slice(0, randomInt(random, 0, this.changes.length));
    const overlay = new Map<DirNode, Map<string, Node>>();
    for (const part of kept.flat()) {
      const entries = overlay.get(part.dir) ?? new Map(part.dir.durable);
      overlay.set(part.dir, entries);
      if (part.node === undefined) entries.delete(part.name);
      else entries.set(part.name, part.node);
    }
    return (dir) => overlay.get(dir) ?? dir.durable;
  }

  private createFile(filePath: string): File {
    const { dir, name } = this.parentOf(filePath, `open ${filePath}`);
    if (dir.entries.has(name)) throw systemError('EEXIST', `open ${filePath}`);
    const node = newFile();
    this.change([{ dir, name, node }]);
    return new SimFile(filePath, node, true, this.machine);
  }

  private change(parts: EntryChange[]): void {
    for (const part of parts) {
      if (part.node === undefined) part.dir.entries.delete(part.name);
      else part.dir.entries.set(part.name, part.node);
    }
    this.changes.push(parts);
  }

  private lookup(filePath: string): Node | undefined {
    let node: Node = this.root;
    for (const name of components(filePath)) {
      if (node.kind === 'file') return undefined;
      const next: Node | undefined = node.entries.get(name);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  private parentOf(filePath: string, what: string): { dir: DirNode; name: string } {
    const resolved = resolvePath(filePath);
    const name = path.posix.basename(resolved);
    if (name === '') throw systemError('EISDIR', what);
    const dir = this.lookup(path.posix.dirname(resolved));
    if (dir === undefined) throw systemError('ENOENT', what);
    if (dir.kind === 'file') throw systemError('ENOTDIR', what);
    return { dir, name };
  }
}
