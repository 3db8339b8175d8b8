import type { CacheStore, StoredEntry, StoreWriteOptions } from '../../src/store/cache-store.js';

export interface RecordedWrite {
  /** `replace`: a rewrap or re-encryption, which keeps the entry's tags and expiry (its TTL as left after it). */
  readonly op: 'set' | 'add' | 'replace';
  readonly key: string;
  readonly value: Buffer;
  readonly options: StoreWriteOptions;
}

/**
 * A real store with a tap: every key, value and tag that crosses the port is kept, so a test can search all of it
 * for plaintext and check every write's TTL. It changes no behaviour.
 */
export class RecordingStore implements CacheStore {
  readonly writes: RecordedWrite[] = [];
  readonly reads: string[] = [];
  readonly deletedTags: string[] = [];
  readonly name: string;
  readonly #inner: CacheStore;

  constructor(inner: CacheStore) {
    this.#inner = inner;
    this.name = inner.name;
  }

  /** Everything that reached the store, as one string to search. */
  transcript(): string {
    return [
      ...this.writes.flatMap((w) => [w.key, w.value.toString('latin1'), ...(w.options.tags ?? [])]),
      ...this.reads,
      ...this.deletedTags,
    ].join('\n');
  }

  get(key: string) {
    this.reads.push(key);
    return this.#inner.get(key);
  }
  /** The inner store's own entry view where it has one (Redis's frame), else the value alone. */
  async getEntry(key: string): Promise<StoredEntry | undefined> {
    this.reads.push(key);
    if (this.#inner.getEntry !== undefined) return this.#inner.getEntry(key);
    const value = await this.#inner.get(key);
    return value === undefined ? undefined : { value, carries: () => true };
  }
  set(key: string, value: Buffer, options: StoreWriteOptions) {
    this.writes.push({ op: 'set', key, value: Buffer.from(value), options });
    return this.#inner.set(key, value, options);
  }
  add(key: string, value: Buffer, options: StoreWriteOptions) {
    this.writes.push({ op: 'add', key, value: Buffer.from(value), options });
    return this.#inner.add(key, value, options);
  }
  delete(key: string) {
    this.reads.push(key);
    return this.#inner.delete(key);
  }
  /** The inner store's atomic step where it has one, else compare and delete. */
  async deleteIfSame(key: string, value: Buffer): Promise<boolean> {
    this.reads.push(key);
    if (this.#inner.deleteIfSame !== undefined) return this.#inner.deleteIfSame(key, value);
    return (await this.#inner.get(key))?.equals(value) === true && this.#inner.delete(key);
  }
  /** Rewraps and re-encryptions are writes. */
  async replaceIfSame(key: string, seen: Buffer, next: Buffer, ttlMs?: number): Promise<boolean> {
    if (this.#inner.replaceIfSame === undefined) return false;
    const replaced = await this.#inner.replaceIfSame(key, seen, next, ttlMs);
    if (replaced) {
      const left = ttlMs ?? (await this.#inner.ttl(key)) ?? 1;
      this.writes.push({ op: 'replace', key, value: Buffer.from(next), options: { ttlMs: left } });
    }
    return replaced;
  }
  keysByTag(tag: string): AsyncIterable<string> {
    if (this.#inner.keysByTag === undefined)
      throw new TypeError(`the ${this.#inner.name} store cannot list a tag`);
    return this.#inner.keysByTag(tag);
  }
  scan(prefix: string): AsyncIterable<string> {
    if (this.#inner.scan === undefined)
      throw new TypeError(`the ${this.#inner.name} store cannot be scanned`);
    return this.#inner.scan(prefix);
  }
  deleteByTag(tag: string) {
    this.deletedTags.push(tag);
    return this.#inner.deleteByTag(tag);
  }
  ttl(key: string) {
    return this.#inner.ttl(key);
  }
  close() {
    return this.#inner.close();
  }
}
