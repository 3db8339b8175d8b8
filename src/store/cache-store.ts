/**
 * The CacheStore port: a byte store with mandatory expiry and tag indexes. It never sees a caller's string:
 * keys and tags arrive as HMAC names and values as sealed envelopes, so an adapter cannot leak what it never had.
 */

export interface StoreWriteOptions {
  /** Time to live in ms: a positive integer. A store never keeps an entry without one. */
  readonly ttlMs: number;
  /** Hashed tag names. Deleting by any of them deletes the entry. */
  readonly tags?: readonly string[];
  /**
   * A data-key record (wrapped DEK or its epoch pointer): a store must not evict it to make room for entries; it
   * leaves only by expiry, delete or deleteByTag.
   */
  readonly keyRecord?: boolean;
}

/** A stored value with what the store itself says about it. */
export interface StoredEntry {
  readonly value: Buffer;
  /**
   * Whether the store would reach this entry by exactly these tags (the ones sealed inside it). A store whose tag
   * bookkeeping sits outside the ciphertext (Redis's frame) must agree with the sealed tags, or a purge could be
   * steered past the entry by editing that bookkeeping.
   */
  carries(tags: readonly string[]): boolean;
}

export interface CacheStore {
  /** A short name for messages, such as `memory` or `redis`. */
  readonly name: string;
  get(key: string): Promise<Buffer | undefined>;
  /** Like `get`, for stores that keep tag bookkeeping next to the value; the cache checks it against the sealed tags. */
  getEntry?(key: string): Promise<StoredEntry | undefined>;
  set(key: string, value: Buffer, options: StoreWriteOptions): Promise<void>;
  /** Writes only when the key is absent; true when this call wrote it. */
  add(key: string, value: Buffer, options: StoreWriteOptions): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  /**
   * Deletes the key only while it still holds `value` (as `get` returned it), in one atomic step: an entry found
   * damaged or expired is removed without removing a newer write that landed in between. True when deleted.
   */
  deleteIfSame?(key: string, value: Buffer): Promise<boolean>;
  /**
   * Replaces the key's value with `next` only while it still holds `seen` (as `get` returned it), in one atomic
   * step, keeping its tags and its expiry (or setting a new one, `ttlMs`): how a data key record is rewrapped and an
   * entry re-encrypted without overwriting a newer write or a purge that landed in between. True when replaced.
   */
  replaceIfSame?(key: string, seen: Buffer, next: Buffer, ttlMs?: number): Promise<boolean>;
  /**
   * Every live key that starts with `prefix` (`phc:k:` for data key records, `phc:e:` for entries), each once while
   * the store does not reshard; for rotation's rewrap and re-encrypt sweeps. Never blocks the store.
   */
  scan?(prefix: string): AsyncIterable<string>;
  /**
   * Every live key written with the tag, each once (a key may be reported after it expired or was deleted: read it
   * to know). Through the tag index, so the cost follows the tag's keys, not the store's: how rotation finds the
   * data key records among millions of entries.
   */
  keysByTag?(tag: string): AsyncIterable<string>;
  /** Deletes every live entry carrying the tag; resolves to how many were deleted. */
  deleteByTag(tag: string): Promise<number>;
  /** Remaining time to live in ms, or undefined when the key is absent. */
  ttl(key: string): Promise<number | undefined>;
  close(): Promise<void>;
}

/** Precondition shared by every adapter: a positive integer TTL (promise PHI-TTL-01: every entry expires). */
export function assertWriteOptions(options: StoreWriteOptions): void {
  if (!Number.isSafeInteger(options.ttlMs) || options.ttlMs <= 0) {
    throw new RangeError('a store write needs ttlMs, a positive integer number of milliseconds');
  }
}
