import { integerOption } from '../options.js';

/**
 * A least-recently-used map bounded by count. A `Map` keeps insertion order, so moving a key to the end on every hit
 * makes its first key the least recently used one: O(1) per operation with no list of its own. Unlike clearing a
 * memo whole when it fills, a working set a little larger than the bound still hits on most of its keys.
 */
export class Lru<K, V> {
  readonly #map = new Map<K, V>();
  readonly #max: number;
  readonly #evicted: ((key: K, value: V) => void) | undefined;

  /** `evicted` is called for each entry dropped to make room (not for delete or clear). */
  constructor(max: number, evicted?: (key: K, value: V) => void) {
    this.#max = integerOption('lru', 'max', max, 1);
    this.#evicted = evicted;
  }

  get size(): number {
    return this.#map.size;
  }

  get max(): number {
    return this.#max;
  }

  /** The value, now the most recently used, or undefined. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) {
      const [oldestKey, oldest] = this.#map.entries().next().value as [K, V];
      this.#map.delete(oldestKey);
      this.#evicted?.(oldestKey, oldest);
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Every entry, least recently used first, without touching any. */
  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }

  /** Every value, least recently used first. */
  values(): IterableIterator<V> {
    return this.#map.values();
  }

  clear(): void {
    this.#map.clear();
  }
}
