import { PhiCacheError } from '../../errors.js';
import { integerOption } from '../../options.js';
import { assertWriteOptions, type CacheStore, type StoreWriteOptions } from '../cache-store.js';
import { ExpiryHeap } from './expiry-heap.js';

export interface MemoryStoreOptions {
  /** Upper bound of the bytes held (values, keys and tags of entries and key records). Default 64 MiB. */
  readonly maxBytes?: number;
  /** Upper bound of the entries held, key records not included. Default 100,000. */
  readonly maxEntries?: number;
  /**
   * Upper bound of the data-key records held (`keyRecord` writes), which are never evicted for entries: when it is
   * reached a new key record is refused (`ERR_STORE_UNAVAILABLE`), and the cache drops that write. Default 10,000.
   */
  readonly maxKeyRecords?: number;
  /** Largest single value accepted, in bytes. Default 1 MiB, at most maxBytes. */
  readonly maxEntryBytes?: number;
  /** How often expired entries are freed, in ms. Default 1,000. */
  readonly sweepIntervalMs?: number;
  /** Milliseconds since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
}

interface Entry {
  readonly value: Buffer;
  readonly expiresAt: number;
  readonly tags: readonly string[];
  readonly bytes: number;
  readonly keyRecord: boolean;
  /** Read since eviction last passed it: it gets a second chance (see #write). */
  used: boolean;
}

export interface MemoryStoreStats {
  /** Entries held, expired-but-unswept ones included; key records not included. */
  readonly entries: number;
  /** Data-key records held, expired-but-unswept ones included. */
  readonly keyRecords: number;
  /** Bytes counted against maxBytes: entries and key records. */
  readonly bytes: number;
  /** Slots of the expiry heap: one per key held, whatever the number of writes. */
  readonly heapSlots: number;
}

/** Rough per-entry bookkeeping cost, so that many tiny entries still count against maxBytes. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * The embedded store: an in-process LRU bounded by bytes and by entries. Expired entries are freed by a sweep
 * (not merely hidden on read), so expired ciphertext does not linger in the heap.
 *
 * Data-key records live apart from the LRU. A wrapped DEK is written once and then never read while its unwrapped
 * key is cached, so an LRU would evict it first, and every live entry it sealed would become unreadable once the
 * unwrapped key aged out. Key records are bounded by their own count instead, and leave only by expiry, delete or
 * deleteByTag (crypto-shredding).
 */
export class MemoryStore implements CacheStore {
  readonly name = 'memory';
  readonly #maxBytes: number;
  readonly #maxEntries: number;
  readonly #maxKeyRecords: number;
  readonly #maxEntryBytes: number;
  readonly #clock: () => number;
  /** Map order is oldest first: inserted, or given a second chance, longest ago. */
  readonly #entries = new Map<string, Entry>();
  readonly #keyRecords = new Map<string, Entry>();
  readonly #tags = new Map<string, Set<string>>();
  /** Expiry times by key only: the heap must not keep values alive after an overwrite or delete. */
  readonly #expiry = new ExpiryHeap();
  readonly #sweeper: NodeJS.Timeout;
  #bytes = 0;
  #keyRecordBytes = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxBytes = integerOption('memory store', 'maxBytes', options.maxBytes ?? 64 * 1024 * 1024, 1);
    this.#maxEntries = integerOption('memory store', 'maxEntries', options.maxEntries ?? 100_000, 1);
    this.#maxKeyRecords = integerOption('memory store', 'maxKeyRecords', options.maxKeyRecords ?? 10_000, 1);
    const defaultEntryBytes = Math.min(1024 * 1024, this.#maxBytes);
    this.#maxEntryBytes = integerOption(
      'memory store',
      'maxEntryBytes',
      options.maxEntryBytes ?? defaultEntryBytes,
      1,
    );
    if (this.#maxEntryBytes > this.#maxBytes) throw new RangeError('maxEntryBytes must not exceed maxBytes');
    const sweepIntervalMs = integerOption(
      'memory store',
      'sweepIntervalMs',
      options.sweepIntervalMs ?? 1000,
      1,
    );
    this.#clock = options.clock ?? Date.now;
    this.#sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.#sweeper.unref();
  }

  stats(): MemoryStoreStats {
    return {
      entries: this.#entries.size,
      keyRecords: this.#keyRecords.size,
      bytes: this.#bytes,
      heapSlots: this.#expiry.size,
    };
  }

  async get(key: string): Promise<Buffer | undefined> {
    const entry = this.#live(key);
    if (entry === undefined) return undefined;
    entry.used = true;
    return entry.value;
  }

  async set(key: string, value: Buffer, options: StoreWriteOptions): Promise<void> {
    this.#write(key, value, options);
  }

  async add(key: string, value: Buffer, options: StoreWriteOptions): Promise<boolean> {
    assertWriteOptions(options);
    if (this.#live(key) !== undefined) return false;
    this.#write(key, value, options);
    return true;
  }

  async delete(key: string): Promise<boolean> {
    const entry = this.#held(key);
    if (entry === undefined) return false;
    this.#remove(key, entry);
    return entry.expiresAt > this.#clock();
  }

  async deleteIfSame(key: string, value: Buffer): Promise<boolean> {
    const entry = this.#held(key);
    if (entry === undefined || !entry.value.equals(value)) return false;
    this.#remove(key, entry);
    return entry.expiresAt > this.#clock();
  }

  async replaceIfSame(key: string, seen: Buffer, next: Buffer, ttlMs?: number): Promise<boolean> {
    const entry = this.#live(key);
    if (entry === undefined || !entry.value.equals(seen)) return false;
    const keptMs = ttlMs ?? entry.expiresAt - this.#clock();
    this.#write(key, next, { ttlMs: keptMs, tags: entry.tags, keyRecord: entry.keyRecord });
    return true;
  }

  async *scan(prefix: string): AsyncIterable<string> {
    const now = this.#clock();
    for (const held of [this.#keyRecords, this.#entries]) {
      for (const [key, entry] of [...held]) {
        if (key.startsWith(prefix) && entry.expiresAt > now) yield key;
      }
    }
  }

  async *keysByTag(tag: string): AsyncIterable<string> {
    const now = this.#clock();
    for (const key of [...(this.#tags.get(tag) ?? [])]) {
      const entry = this.#held(key);
      if (entry !== undefined && entry.expiresAt > now) yield key;
    }
  }

  async deleteByTag(tag: string): Promise<number> {
    const keys = this.#tags.get(tag);
    if (keys === undefined) return 0;
    const now = this.#clock();
    let count = 0;
    for (const key of [...keys]) {
      const entry = this.#held(key);
      if (entry === undefined) continue;
      if (entry.expiresAt > now) count += 1;
      this.#remove(key, entry);
    }
    return count;
  }

  async ttl(key: string): Promise<number | undefined> {
    const entry = this.#live(key);
    return entry === undefined ? undefined : entry.expiresAt - this.#clock();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    this.#entries.clear();
    this.#keyRecords.clear();
    this.#tags.clear();
    this.#expiry.clear();
    this.#bytes = 0;
    this.#keyRecordBytes = 0;
  }

  /** Frees every expired entry now; runs on a timer, and may be called to free memory at once. */
  sweep(): number {
    const now = this.#clock();
    // Every write sweeps: when nothing is due, that costs one comparison.
    if (!this.#expiry.due(now)) return 0;
    let freed = 0;
    for (const key of this.#expiry.popExpired(now)) {
      const entry = this.#held(key);
      if (entry !== undefined) {
        this.#remove(key, entry);
        freed += 1;
      }
    }
    return freed;
  }

  #held(key: string): Entry | undefined {
    return this.#entries.get(key) ?? this.#keyRecords.get(key);
  }

  #live(key: string): Entry | undefined {
    const entry = this.#held(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= this.#clock()) {
      this.#remove(key, entry);
      return undefined;
    }
    return entry;
  }

  #write(key: string, value: Buffer, options: StoreWriteOptions): void {
    assertWriteOptions(options);
    if (value.length > this.#maxEntryBytes) {
      throw new PhiCacheError(
        'ERR_VALUE_TOO_LARGE',
        `value of ${value.length} bytes exceeds the memory store limit`,
      );
    }
    const tags = options.tags ?? [];
    const keyRecord = options.keyRecord === true;
    const bytes =
      value.length + key.length + tags.reduce((sum, tag) => sum + tag.length, 0) + ENTRY_OVERHEAD_BYTES;
    this.sweep();
    const previous = this.#held(key);
    if (keyRecord) this.#assertRoomForKeyRecord(previous, bytes);
    // A copy in its own memory: a slice of Node's shared pool would keep a whole 8 KiB slab alive per entry.
    const copy = Buffer.allocUnsafeSlow(value.length);
    value.copy(copy);
    const entry: Entry = {
      value: copy,
      expiresAt: this.#clock() + options.ttlMs,
      tags,
      bytes,
      keyRecord,
      used: false,
    };
    // An overwrite with the same tags (the usual one) leaves the key in its tag sets rather than out and back in.
    const retagged = previous === undefined || !sameTags(previous.tags, tags);
    if (previous !== undefined) this.#remove(key, previous, retagged);
    if (keyRecord) {
      this.#keyRecords.set(key, entry);
      this.#keyRecordBytes += bytes;
    } else {
      this.#entries.set(key, entry);
    }
    this.#bytes += bytes;
    if (retagged) {
      for (const tag of tags) {
        const keys = this.#tags.get(tag);
        if (keys === undefined) this.#tags.set(tag, new Set([key]));
        else keys.add(key);
      }
    }
    this.#expiry.set(key, entry.expiresAt);
    // Only entries are evicted; the room check above keeps key records alone within maxBytes, so this ends. The
    // order is CLOCK (second chance), as in runtime/lru.ts: a read only sets a flag, and eviction moves each read
    // entry it passes to the end, so every read does not have to move its key (a Map delete and set).
    while (
      (this.#bytes > this.#maxBytes || this.#entries.size > this.#maxEntries) &&
      this.#entries.size > 0
    ) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry];
      if (oldest.used) {
        oldest.used = false;
        this.#entries.delete(oldestKey);
        this.#entries.set(oldestKey, oldest);
      } else this.#remove(oldestKey, oldest);
    }
  }

  /** A new key record must fit beside the others without evicting one: else the write is refused, not stored. */
  #assertRoomForKeyRecord(previous: Entry | undefined, bytes: number): void {
    const replaced = previous?.keyRecord === true ? previous : undefined;
    const count = this.#keyRecords.size + (replaced === undefined ? 1 : 0);
    const keyRecordBytes = this.#keyRecordBytes - (replaced?.bytes ?? 0) + bytes;
    if (count > this.#maxKeyRecords || keyRecordBytes > this.#maxBytes) {
      throw new PhiCacheError(
        'ERR_STORE_UNAVAILABLE',
        `the memory store is full of data-key records (${this.#keyRecords.size} held); the key record was not stored`,
        {
          hint: 'Raise maxKeyRecords (or maxBytes) of the MemoryStore. Key records are never evicted for room, so new data keys wait until old ones expire; writes needing one are dropped meanwhile.',
        },
      );
    }
  }

  /** Forgets an entry; `untag` false leaves the key in its tag sets for a write that puts it back with the same tags. */
  #remove(key: string, entry: Entry, untag = true): void {
    if (entry.keyRecord) {
      this.#keyRecords.delete(key);
      this.#keyRecordBytes -= entry.bytes;
    } else {
      this.#entries.delete(key);
    }
    this.#expiry.delete(key);
    this.#bytes -= entry.bytes;
    if (!untag) return;
    for (const tag of entry.tags) {
      const keys = this.#tags.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) this.#tags.delete(tag);
    }
  }
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
