import { integerOption } from '../options.js';
import type { CounterHit, CounterRequest, CounterStore } from './counter-store.js';

export interface MemoryCountersOptions {
  /**
   * Most identities tracked at once. Past it, expired counters are swept and then the oldest are dropped (which lets
   * their next request through early: a bound on memory beats an attacker filling it). Default 100,000; 1..10^7.
   */
  readonly maxKeys?: number;
}

type Counter = { kind: 'fixed'; count: number; expiresAt: number } | { kind: 'sliding'; hits: number[] };

/**
 * Counters in this process, for a single instance (the embedded default). JavaScript runs one hit at a time, so
 * each hit is atomic without a lock.
 */
export class MemoryCounters implements CounterStore {
  readonly name = 'memory';
  readonly #counters = new Map<string, Counter>();
  readonly #maxKeys: number;

  constructor(options: MemoryCountersOptions = {}) {
    this.#maxKeys = integerOption('MemoryCounters', 'maxKeys', options.maxKeys ?? 100_000, 1, 10_000_000);
  }

  /** Counters held right now (expired ones included until swept). */
  get size(): number {
    return this.#counters.size;
  }

  async hit(request: CounterRequest): Promise<CounterHit> {
    const { key, algorithm, windowMs, limit, now } = request;
    const existing = this.#counters.get(key);
    if (algorithm === 'fixed') {
      let counter = existing?.kind === 'fixed' && existing.expiresAt > now ? existing : undefined;
      if (counter === undefined) {
        counter = { kind: 'fixed', count: 0, expiresAt: now + windowMs };
        this.#put(key, counter, now);
      }
      counter.count += 1;
      return { count: counter.count, resetMs: counter.expiresAt - now };
    }
    let counter = existing?.kind === 'sliding' ? existing : undefined;
    if (counter === undefined) {
      counter = { kind: 'sliding', hits: [] };
      this.#put(key, counter, now);
    }
    const hits = counter.hits;
    while (hits.length > 0 && hits[0]! <= now - windowMs) hits.shift();
    const count = hits.length + 1;
    if (hits.length < limit) hits.push(now);
    return { count, resetMs: hits.length > 0 ? hits[0]! + windowMs - now : windowMs };
  }

  async close(): Promise<void> {
    this.#counters.clear();
  }

  #put(key: string, counter: Counter, now: number): void {
    this.#counters.delete(key);
    if (this.#counters.size >= this.#maxKeys) this.#sweep(now);
    this.#counters.set(key, counter);
  }

  /** Drops expired counters; if that frees nothing, the oldest tenth (Map keeps insertion order). */
  #sweep(now: number): void {
    for (const [key, counter] of this.#counters) {
      const expired = counter.kind === 'fixed' ? counter.expiresAt <= now : counter.hits.length === 0;
      if (expired) this.#counters.delete(key);
    }
    if (this.#counters.size < this.#maxKeys) return;
    let drop = Math.max(1, Math.floor(this.#maxKeys / 10));
    for (const key of this.#counters.keys()) {
      if (drop-- <= 0) break;
      this.#counters.delete(key);
    }
  }
}
