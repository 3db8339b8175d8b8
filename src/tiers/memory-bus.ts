import {
  assertStoreName,
  generationShard,
  type Invalidation,
  type InvalidationBus,
  type InvalidationNotice,
} from './invalidation-bus.js';

export interface MemoryInvalidationBusOptions {
  /** Generation counters. Default 1; 1..256. */
  readonly shards?: number;
}

/**
 * An InvalidationBus inside one process: several TieredStores over one shared L2 in the same process (and the
 * tests of the tier's logic) use one bus object. Notices are delivered on a later turn of the event loop, as a
 * network would, so code that works here does not depend on delivery being synchronous.
 */
export class MemoryInvalidationBus implements InvalidationBus {
  readonly name = 'memory';
  readonly shards: number;
  readonly #counters: number[];
  readonly #listeners = new Set<(notice: InvalidationNotice) => void>();

  constructor(options: MemoryInvalidationBusOptions = {}) {
    const shards = options.shards ?? 1;
    if (!Number.isSafeInteger(shards) || shards < 1 || shards > 256) {
      throw new RangeError('memory invalidation bus shards must be an integer in 1..256');
    }
    this.shards = shards;
    this.#counters = Array.from({ length: shards }, () => 0);
  }

  async publish(from: string, invalidation: Invalidation): Promise<InvalidationNotice> {
    assertStoreName(invalidation.name, invalidation.kind);
    const shard = generationShard(invalidation.name, this.shards);
    const generation = (this.#counters[shard] ?? 0) + 1;
    this.#counters[shard] = generation;
    const notice: InvalidationNotice = {
      kind: invalidation.kind,
      name: invalidation.name,
      from,
      shard,
      generation,
    };
    for (const listener of this.#listeners) setImmediate(() => listener(notice));
    return notice;
  }

  async subscribe(listener: (notice: InvalidationNotice) => void): Promise<() => Promise<void>> {
    // Each subscription gets its own function, so one listener subscribed twice is delivered to twice.
    const own = (notice: InvalidationNotice) => listener(notice);
    this.#listeners.add(own);
    return async () => {
      this.#listeners.delete(own);
    };
  }

  async generations(): Promise<readonly number[]> {
    return [...this.#counters];
  }
}
