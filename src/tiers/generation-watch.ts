/**
 * Finds missed invalidation notices. Each notice advanced one generation counter by exactly one, so an instance
 * that holds every generation from its last accounted value up to a counter's current value missed nothing there.
 * A counter below the last accounted value was reset (it expired, or a failover lost increments): whatever happened
 * in between is unknown, and that counts as missed too.
 *
 * A generation counted by the server but not yet delivered looks missing for a moment; the caller judges twice,
 * a grace period apart, before it calls a notice lost.
 */
export type Verdict = 'complete' | 'missing' | 'reset';

export class GenerationWatch {
  readonly shards: number;
  /** Per shard, the value up to which every generation is accounted for; undefined before the first settle. */
  #settled: number[] | undefined;
  /** Per shard, generations above `#settled` that were seen. */
  readonly #seen: Set<number>[];

  constructor(shards: number) {
    this.shards = shards;
    this.#seen = Array.from({ length: shards }, () => new Set<number>());
  }

  get started(): boolean {
    return this.#settled !== undefined;
  }

  /**
   * Everything up to `current` is accounted for: seen, or covered by dropping L1. The first call starts the
   * count, as what came before cannot concern an L1 that is empty then.
   */
  settle(current: readonly number[]): void {
    this.#check(current);
    this.#settled = [...current];
    for (const [shard, seen] of this.#seen.entries()) prune(seen, current[shard]!);
  }

  /** Stops counting until the next `settle`: nothing is vouched for meanwhile. */
  stop(): void {
    this.#settled = undefined;
    for (const seen of this.#seen) seen.clear();
  }

  /** A notice arrived, or this instance published it. */
  saw(shard: number, generation: number): void {
    const seen = this.#seen[shard];
    if (seen === undefined || this.#settled === undefined) return;
    if (generation > this.#settled[shard]!) seen.add(generation);
  }

  /** Whether every generation up to `current` was seen. Changes nothing. */
  judge(current: readonly number[]): Verdict {
    this.#check(current);
    const settled = this.#settled;
    if (settled === undefined) throw new Error('GenerationWatch.judge before the first settle');
    let verdict: Verdict = 'complete';
    for (let shard = 0; shard < this.shards; shard++) {
      const now = current[shard]!;
      const from = settled[shard]!;
      if (now < from) return 'reset';
      if (now === from) continue;
      // Every seen generation is above `from`; the range is complete when as many of them are at most `now`.
      let held = 0;
      for (const generation of this.#seen[shard]!) if (generation <= now) held += 1;
      if (held < now - from) verdict = 'missing';
    }
    return verdict;
  }

  #check(current: readonly number[]): void {
    if (current.length !== this.shards) {
      throw new RangeError(`expected ${this.shards} generation counters, got ${current.length}`);
    }
  }
}

function prune(seen: Set<number>, upTo: number): void {
  for (const generation of seen) if (generation <= upTo) seen.delete(generation);
}
