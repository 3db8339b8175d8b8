/**
 * Unwrapped data keys held in memory, bounded three ways: by age (a key unwrapped long ago is unwrapped again,
 * so a revoked KEK takes effect), by messages sealed (random 96-bit GCM nonces stay safe well under 2^32
 * messages per key) and by count. Every key that leaves the cache is zeroed.
 */

import { Lru } from '../runtime/lru.js';

export interface DekCacheOptions {
  /** How long an unwrapped key may be used, in ms. Default 15 minutes; at least 1. */
  readonly maxAgeMs?: number;
  /** Seals per key in this process before a new key is made. Default 2^24; at most 2^30. */
  readonly maxMessages?: number;
  /** Keys held at once. Default 10,000. */
  readonly maxEntries?: number;
}

export interface CachedDek {
  readonly tenant: string;
  readonly className: string;
  readonly epoch: number;
  /** The data key generation (key states) it was made in: a key of an older generation seals nothing more. */
  readonly gen: number;
  /** Hex of the 16-byte DEK id sealed into every envelope it made. */
  readonly id: string;
  readonly kid: string;
  /** The 32 key bytes; zeroed when the entry is evicted. */
  readonly key: Buffer;
  readonly loadedAt: number;
  sealed: number;
  /**
   * Set when the cache drops the key and zeroes its bytes. A caller that got the key before an `await` checks it
   * in the same synchronous step as the seal or open, so an eviction in between can never make it use zeros.
   */
  evicted: boolean;
}

export interface ResolvedDekCacheOptions {
  readonly maxAgeMs: number;
  readonly maxMessages: number;
  readonly maxEntries: number;
}

export function resolveDekCacheOptions(options: DekCacheOptions = {}): ResolvedDekCacheOptions {
  const resolved = {
    maxAgeMs: options.maxAgeMs ?? 15 * 60_000,
    maxMessages: options.maxMessages ?? 2 ** 24,
    maxEntries: options.maxEntries ?? 10_000,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RangeError(`dek cache ${name} must be a positive integer`);
  }
  if (resolved.maxMessages > 2 ** 30) throw new RangeError('dek cache maxMessages must be at most 2^30');
  return Object.freeze(resolved);
}

export class DekCache {
  readonly #options: ResolvedDekCacheOptions;
  /**
   * By (tenant, class, id), bounded by count with a second chance for keys used since the last eviction (CLOCK):
   * a hit only sets a flag, where reordering a Map cost a delete and a set on every seal and open.
   */
  readonly #byId: Lru<string, CachedDek>;
  /** The key new writes seal with, by (tenant, class, epoch). */
  readonly #current = new Map<string, CachedDek>();
  /** Keys whose sealing budget this process spent: they may open entries again but never seal another. */
  readonly #spent = new Set<string>();

  constructor(options: DekCacheOptions = {}) {
    this.#options = resolveDekCacheOptions(options);
    this.#byId = new Lru(this.#options.maxEntries, (_slot, dek) => this.#forget(dek));
  }

  get size(): number {
    return this.#byId.size;
  }

  /** A key that may still open entries, or undefined when absent or too old. */
  get(tenant: string, className: string, id: string, now: number): CachedDek | undefined {
    const slot = idSlot(tenant, className, id);
    const dek = this.#byId.get(slot);
    if (dek === undefined) return undefined;
    if (now - dek.loadedAt >= this.#options.maxAgeMs) {
      this.#evict(slot, dek);
      return undefined;
    }
    return dek;
  }

  /**
   * The key to seal one more message with, counted against its budget, or undefined when there is none or its
   * budget or age is spent (the caller then makes or loads another).
   */
  takeForSealing(tenant: string, className: string, epoch: number, now: number): CachedDek | undefined {
    const dek = this.#current.get(currentSlot(tenant, className, epoch));
    if (dek === undefined || this.get(tenant, className, dek.id, now) !== dek) return undefined;
    if (dek.sealed >= this.#options.maxMessages) {
      const slot = idSlot(tenant, className, dek.id);
      this.#spent.add(slot);
      if (this.#spent.size > this.#options.maxEntries)
        this.#spent.delete(this.#spent.values().next().value as string);
      this.#evict(slot, dek);
      return undefined;
    }
    dek.sealed += 1;
    return dek;
  }

  /** True when this process spent the key's sealing budget, so it must not be loaded for sealing again. */
  isSpent(tenant: string, className: string, id: string): boolean {
    return this.#spent.has(idSlot(tenant, className, id));
  }

  put(dek: CachedDek, sealing: boolean): void {
    const slot = idSlot(dek.tenant, dek.className, dek.id);
    const previous = this.#byId.get(slot);
    if (previous !== undefined && previous !== dek) this.#evict(slot, previous);
    // Past maxEntries the Lru drops one key that was not used lately, and #forget zeroes it.
    this.#byId.set(slot, dek);
    if (sealing) this.#current.set(currentSlot(dek.tenant, dek.className, dek.epoch), dek);
  }

  /** Forgets which keys seal new writes (a rekey): each is made or loaded again; held keys still open entries. */
  dropSealing(): void {
    this.#current.clear();
  }

  /** Drops and zeroes every key wrapped under a KEK version (a retired one): it must open nothing more here. */
  evictKid(kid: string): number {
    return this.#evictWhere((dek) => dek.kid === kid);
  }

  /** Drops and zeroes every key of a tenant (crypto-shredding of the in-memory copies). */
  evictTenant(tenant: string): number {
    return this.#evictWhere((dek) => dek.tenant === tenant);
  }

  #evictWhere(matches: (dek: CachedDek) => boolean): number {
    let count = 0;
    for (const [slot, dek] of [...this.#byId.entries()]) {
      if (matches(dek)) {
        this.#evict(slot, dek);
        count += 1;
      }
    }
    return count;
  }

  clear(): void {
    for (const [slot, dek] of [...this.#byId.entries()]) this.#evict(slot, dek);
  }

  #evict(slot: string, dek: CachedDek): void {
    this.#byId.delete(slot);
    this.#forget(dek);
  }

  /** Zeroes a key that left #byId (evicted for room, or deleted by #evict). */
  #forget(dek: CachedDek): void {
    const current = currentSlot(dek.tenant, dek.className, dek.epoch);
    if (this.#current.get(current) === dek) this.#current.delete(current);
    dek.evicted = true;
    dek.key.fill(0);
  }
}

/** Length-prefixed, so no two (tenant, class, id) triples share a slot whatever the tenant string holds. */
function idSlot(tenant: string, className: string, id: string): string {
  return `${tenant.length}:${tenant}|${className}|${id}`;
}

function currentSlot(tenant: string, className: string, epoch: number): string {
  return `${tenant.length}:${tenant}|${className}|#${epoch}`;
}
