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
   * leaves only by expiry, delete or deleteByTag. Default false.
   */
  readonly keyRecord?: boolean;
}

export interface CacheStore {
  /** A short name for messages, such as `memory` or `redis`. */
  readonly name: string;
  get(key: string): Promise<Buffer | undefined>;
  set(key: string, value: Buffer, options: StoreWriteOptions): Promise<void>;
  /** Writes only when the key is absent; true when this call wrote it. */
  add(key: string, value: Buffer, options: StoreWriteOptions): Promise<boolean>;
  delete(key: string): Promise<boolean>;
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
