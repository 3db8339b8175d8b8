import { PhiCacheError } from '../../errors.js';
import { integerOption } from '../../options.js';
import { assertWriteOptions, type CacheStore, type StoreWriteOptions } from '../cache-store.js';
import { ExpiryHeap } from './expiry-heap.js';

export interface MemoryStoreOptions {
  /** Upper bound of the bytes held (values, keys and tags). Default 64 MiB. */
  readonly maxBytes?: number;
  /** Upper bound of the entries held. Default 100,000. */
  readonly maxEntries?: number;
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
}

/** Rough per-entry bookkeeping cost, so that many tiny entries still count against maxBytes. */
const ENTRY_OVERHEAD_BYTES = 96;

/**
 * The embedded store: an in-process LRU bounded by bytes and by entries. Expired entries are freed by a sweep
 * (not merely hidden on read), so expired ciphertext does not linger in the heap.
 */
export class MemoryStore implements CacheStore {
  readonly name = 'memory';
  readonly #maxBytes: number;
  readonly #maxEntries: number;
  readonly #maxEntryBytes: number;
  readonly #clock: () => number;
  /** Map order is least recently used first. */
  readonly #entries = new Map<string, Entry>();
  readonly #tags = new Map<string, Set<string>>();
  /** Expiry times by key only: the heap must not keep values alive after an overwrite or delete. */
  readonly #expiry = new ExpiryHeap();
  readonly #sweeper: NodeJS.Timeout;
  #bytes = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxBytes = integerOption('memory store', 'maxBytes', options.maxBytes ?? 64 * 1024 * 1024, 1);
    this.#maxEntries = integerOption('memory store', 'maxEntries', options.maxEntries ?? 100_000, 1);
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

  /** Entries and bytes held right now, expired-but-unswept ones included. */
  stats(): { entries: number; bytes: number } {
    return { entries: this.#entries.size, bytes: this.#bytes };
  }

  async get(key: string): Promise<Buffer | undefined> {
    const entry = this.#live(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
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
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#remove(key, entry);
    return entry.expiresAt > this.#clock();
  }

  async deleteByTag(tag: string): Promise<number> {
    const keys = this.#tags.get(tag);
    if (keys === undefined) return 0;
    const now = this.#clock();
    let count = 0;
    for (const key of [...keys]) {
      const entry = this.#entries.get(key);
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
    this.#tags.clear();
    this.#expiry.clear();
    this.#bytes = 0;
  }

  /** Frees every expired entry now; runs on a timer, and may be called to free memory at once. */
  sweep(): number {
    const now = this.#clock();
    let freed = 0;
    for (const { key, at } of this.#expiry.popExpired(now)) {
      const entry = this.#entries.get(key);
      if (entry !== undefined && entry.expiresAt <= now && entry.expiresAt === at) {
        this.#remove(key, entry);
        freed += 1;
      }
    }
    return freed;
  }

  #live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
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
    // A copy in its own memory: a slice of Node's shared pool would keep a whole 8 KiB slab alive per entry.
    const copy = Buffer.allocUnsafeSlow(value.length);
    value.copy(copy);
    const entry: Entry = {
      value: copy,
      expiresAt: this.#clock() + options.ttlMs,
      tags,
      bytes:
        value.length + key.length + tags.reduce((sum, tag) => sum + tag.length, 0) + ENTRY_OVERHEAD_BYTES,
    };
    const previous = this.#entries.get(key);
    if (previous !== undefined) this.#remove(key, previous);
    this.#entries.set(key, entry);
    this.#bytes += entry.bytes;
    for (const tag of tags) {
      const keys = this.#tags.get(tag);
      if (keys === undefined) this.#tags.set(tag, new Set([key]));
      else keys.add(key);
    }
    this.#expiry.push(entry.expiresAt, key);
    this.sweep();
    while (this.#bytes > this.#maxBytes || this.#entries.size > this.#maxEntries) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry];
      this.#remove(oldestKey, oldest);
    }
  }

  #remove(key: string, entry: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
    for (const tag of entry.tags) {
      const keys = this.#tags.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) this.#tags.delete(tag);
    }
  }
}
