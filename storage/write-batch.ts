// A write batch: puts and deletes over several column families, applied atomically with
// consecutive LSNs (item i gets LSN first + i). Its encoding is the engine WAL's record payload.

import { invalidArgument } from './errors.js';
import { EntryKind } from './entry.js';
import { BATCH_ITEMS_MAX, KEY_SIZE_BYTES_MAX, VALUE_SIZE_BYTES_MAX } from './limits.js';

export interface BatchItem {
  readonly family: string;
  readonly kind: EntryKind;
  readonly key: Buffer;
  readonly value: Buffer;
}

const EMPTY = Buffer.alloc(0);

export class WriteBatch {
  readonly items: BatchItem[] = [];
  sizeBytes = 0;

  put(family: string, key: Buffer, value: Buffer): this {
    if (value.length > VALUE_SIZE_BYTES_MAX) throw invalidArgument(`value of ${value.length} bytes exceeds ${VALUE_SIZE_BYTES_MAX}`);
    return this.add({ family, kind: EntryKind.PUT, key, value });
  }

  delete(family: string, key: Buffer): this {
    return this.add({ family, kind: EntryKind.DELETE, key, value: EMPTY });
  }

  private add(item: BatchItem): this {
    if (item.key.length > KEY_SIZE_BYTES_MAX) throw invalidArgument(`key of ${item.key.length} bytes exceeds ${KEY_SIZE_BYTES_MAX}`);
    if (this.items.length >= BATCH_ITEMS_MAX) throw invalidArgument(`a batch holds at most ${BATCH_ITEMS_MAX} items`);
    this.items.push(item);
    this.sizeBytes += item.key.length + item.value.length + 16;
    return this;
  }

  get length(): number {
    return this.items.length;
  }
}
