/**
 * The InvalidationBus port: how instances sharing an L2 tell each other which L1 entries to drop. A notice names
 * one store key (`phc:e:...`) or one tag (`phc:t:...`, `phc:s:...`), which are HMACs, and the sender's random
 * instance id; never a value. Delivery is at-most-once, so publishing a notice also advances a generation counter
 * kept next to the data, and an instance that reads a counter beyond the notices it received knows it missed one.
 */

/** What to drop: one entry, or every entry carrying one tag. */
export interface Invalidation {
  readonly kind: 'key' | 'tag';
  /** A store name, as the store received it: it starts with `phc:`. */
  readonly name: string;
}

/** An invalidation as published: who sent it and which generation it advanced. */
export interface InvalidationNotice extends Invalidation {
  /** The sender's instance id (random, 1..64 characters of `[A-Za-z0-9_-]`), so a sender skips its own notices. */
  readonly from: string;
  /** Which generation counter the notice advanced: `0 <= shard < bus.shards`. */
  readonly shard: number;
  /** That counter's value right after this notice advanced it: a positive integer. */
  readonly generation: number;
}

export interface InvalidationBus {
  /** A short name for messages, such as `memory` or `redis`. */
  readonly name: string;
  /** How many generation counters there are; every instance on one L2 must see the same number. */
  readonly shards: number;
  /** Advances the counter of the invalidation's shard and announces the notice to every subscriber, sender included. */
  publish(from: string, invalidation: Invalidation): Promise<InvalidationNotice>;
  /** Resolves once delivery to `listener` is live, with a function that ends it. */
  subscribe(listener: (notice: InvalidationNotice) => void): Promise<() => Promise<void>>;
  /** Every counter's current value, indexed by shard; a counter never advanced (or expired) reads 0. */
  generations(): Promise<readonly number[]>;
}

/** Instance ids: short, and safe to put in a message without escaping. */
export const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Store names are HMACs with a `phc:` kind prefix; anything else must not reach a pub/sub message (PHI-LEAK-01). */
export function assertStoreName(name: string, what: 'key' | 'tag'): void {
  if (typeof name !== 'string' || !name.startsWith('phc:')) {
    throw new TypeError(
      `a tiered store ${what} is a store name starting with phc: (an HMAC name from PhiCache)`,
    );
  }
}

/** The counter a name advances. FNV-1a: cheap, and even enough to spread notices over the counters. */
export function generationShard(name: string, shards: number): number {
  if (shards === 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}
