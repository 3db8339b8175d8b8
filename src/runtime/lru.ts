import { integerOption } from '../options.js';

interface Slot<V> {
  value: V;
  /** Read or written since the eviction scan last passed it: it gets a second chance. */
  used: boolean;
}

/**
 * A map bounded by count that keeps what is used and drops what is not: the CLOCK (second-chance) approximation of
 * least-recently-used. A hit only sets a flag; reordering happens at eviction, which moves each used entry it
 * passes to the end and drops the first unused one. Moving the key on every hit instead (delete and set on a Map)
 * measured about 100 times slower for a hot key, and these memos are read several times per cache operation.
 */
export class Lru<K, V> {
  readonly #map = new Map<K, Slot<V>>();
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

  /** The value, now marked as used, or undefined. */
  get(key: K): V | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.value;
  }

  set(key: K, value: V): void {
    const slot = this.#map.get(key);
    if (slot !== undefined) {
      slot.value = value;
      slot.used = true;
      return;
    }
    this.#map.set(key, { value, used: false });
    if (this.#map.size > this.#max) this.#evictOne();
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Every entry, oldest first (by insertion, or by the last second chance), without marking any as used. */
  *entries(): IterableIterator<[K, V]> {
    for (const [key, slot] of this.#map) yield [key, slot.value];
  }

  /** Every value, oldest first. */
  *values(): IterableIterator<V> {
    for (const slot of this.#map.values()) yield slot.value;
  }

  clear(): void {
    this.#map.clear();
  }

  #evictOne(): void {
    for (const [key, slot] of this.#map) {
      this.#map.delete(key);
      if (slot.used) {
        // A second chance: to the end, unmarked. Every entry is passed at most once before one is dropped.
        slot.used = false;
        this.#map.set(key, slot);
        continue;
      }
      this.#evicted?.(key, slot.value);
      return;
    }
  }
}
