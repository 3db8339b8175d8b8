import { randomBytes } from 'node:crypto';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import type { RedisCommands } from '../../src/store/redis/commands.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import type { InvalidationBus, InvalidationNotice } from '../../src/tiers/invalidation-bus.js';
import { RedisInvalidationBus } from '../../src/tiers/redis-bus.js';
import { TieredStore, type TieredStoreOptions } from '../../src/tiers/tiered-store.js';
import { type RedisTopology, sharedRedis } from '../harness/redis.js';
import { BINDINGS, type BindingName, connectionOptions } from '../store/redis/bindings.js';

export const key = () => `phc:e:test:${randomBytes(24).toString('base64url')}`;
export const tag = () => `phc:t:${randomBytes(24).toString('base64url')}`;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A channel of its own per test: test files run at once against the shared fleet, and counters follow channels. */
export const channel = () => `phc:inv:test-${randomBytes(6).toString('hex')}`;

export interface Instance {
  readonly store: TieredStore;
  readonly commands: RedisCommands;
  readonly bus: InvalidationBus;
  /** The L1 in use now (a new one after each drop). */
  l1(): MemoryStore;
}

export type InstanceOptions = Partial<Omit<TieredStoreOptions, 'l2' | 'bus' | 'l1'>> & {
  readonly channel: string;
  /** Wraps the Redis bus, to lose notices on purpose. */
  readonly wrapBus?: (bus: InvalidationBus) => InvalidationBus;
};

/** One "application instance": its own connection, RedisStore, bus and L1, over the shared Redis. */
export async function instance(
  topology: RedisTopology,
  binding: BindingName,
  options: InstanceOptions,
): Promise<Instance> {
  const commands = await BINDINGS[binding](connectionOptions(await sharedRedis(topology)));
  const { channel: name, wrapBus, ...tierOptions } = options;
  const redisBus = new RedisInvalidationBus(commands, { channel: name, commandTimeoutMs: 2_000 });
  const bus = wrapBus === undefined ? redisBus : wrapBus(redisBus);
  const l1s: MemoryStore[] = [];
  const store = await TieredStore.create({
    l2: new RedisStore(commands, { commandTimeoutMs: 2_000 }),
    bus,
    l1: () => {
      const l1 = new MemoryStore();
      l1s.push(l1);
      return l1;
    },
    ...tierOptions,
  });
  return { store, commands, bus, l1: () => l1s.at(-1)! };
}

/** A bus that loses every notice to its subscriber while `lose` is set, as a dropped subscriber connection would. */
export class LossyBus implements InvalidationBus {
  lose = false;
  lost = 0;
  readonly #inner: InvalidationBus;

  constructor(inner: InvalidationBus) {
    this.#inner = inner;
  }

  get name() {
    return this.#inner.name;
  }
  get shards() {
    return this.#inner.shards;
  }
  publish(from: string, invalidation: Parameters<InvalidationBus['publish']>[1]) {
    return this.#inner.publish(from, invalidation);
  }
  subscribe(listener: (notice: InvalidationNotice) => void) {
    return this.#inner.subscribe((notice) => {
      if (this.lose) this.lost += 1;
      else listener(notice);
    });
  }
  generations() {
    return this.#inner.generations();
  }
}

/** Polls until `condition` holds; resolves with the time it took, or rejects after `timeoutMs`. */
export async function within(
  timeoutMs: number,
  what: string,
  condition: () => Promise<boolean>,
): Promise<number> {
  const start = performance.now();
  for (;;) {
    if (await condition()) return performance.now() - start;
    if (performance.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}

/** Runs `write` (on another instance) and waits until `store` has received `count` more notices. */
export async function noticed(store: TieredStore, write: () => Promise<unknown>, count = 1): Promise<void> {
  const before = store.stats().noticesReceived;
  await write();
  await within(2_000, 'the notice arrives', async () => store.stats().noticesReceived >= before + count);
}

/**
 * Waits until `store` has received no notice for `ms`. A read racing a notice does not fill L1 (it may have read
 * the value the notice replaced), so a test that checks an L1 copy first lets earlier notices land.
 */
export async function quiet(store: TieredStore, ms = 50): Promise<void> {
  let seen = store.stats().noticesReceived;
  for (;;) {
    await sleep(ms);
    const now = store.stats().noticesReceived;
    if (now === seen) return;
    seen = now;
  }
}

/** Several instances; if one cannot start, those already started are closed, so no connection outlives the test. */
export async function instances(
  topology: RedisTopology,
  binding: BindingName,
  ...options: InstanceOptions[]
): Promise<Instance[]> {
  const made: Instance[] = [];
  try {
    for (const each of options) made.push(await instance(topology, binding, each));
  } catch (error) {
    for (const each of made) await each.store.close();
    throw error;
  }
  return made;
}
