import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CacheStore, StoreWriteOptions } from '../../src/store/cache-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { GenerationWatch } from '../../src/tiers/generation-watch.js';
import type { InvalidationBus } from '../../src/tiers/invalidation-bus.js';
import { MemoryInvalidationBus } from '../../src/tiers/memory-bus.js';
import { TieredStore, type TieredStoreOptions } from '../../src/tiers/tiered-store.js';
import { key, LossyBus, sleep, tag } from './helpers.js';

const v = (text: string) => Buffer.from(text);

/** A store whose reads can be held after they read: the answer is the value as it was when the read arrived. */
class HeldReads implements CacheStore {
  readonly name = 'held';
  hold: Promise<void> | undefined;
  readonly #inner: CacheStore;
  constructor(inner: CacheStore) {
    this.#inner = inner;
  }
  async get(k: string) {
    const value = await this.#inner.get(k);
    await this.hold;
    return value;
  }
  set(k: string, value: Buffer, options: StoreWriteOptions) {
    return this.#inner.set(k, value, options);
  }
  add(k: string, value: Buffer, options: StoreWriteOptions) {
    return this.#inner.add(k, value, options);
  }
  delete(k: string) {
    return this.#inner.delete(k);
  }
  deleteByTag(t: string) {
    return this.#inner.deleteByTag(t);
  }
  ttl(k: string) {
    return this.#inner.ttl(k);
  }
  async close() {}
}

/** Two instances in one process over one memory L2 and one memory bus; `l1` returns each one's current L1. */
async function pair(
  options: Partial<TieredStoreOptions> = {},
  wrapB?: (bus: InvalidationBus) => InvalidationBus,
) {
  const l2 = new MemoryStore();
  const bus = new MemoryInvalidationBus({ shards: 4 });
  const l1s = { a: [] as MemoryStore[], b: [] as MemoryStore[] };
  const l1 = (list: MemoryStore[]) => () => {
    const store = new MemoryStore();
    list.push(store);
    return store;
  };
  const heldB = new HeldReads(l2);
  const a = await TieredStore.create({ l2: new HeldReads(l2), bus, l1: l1(l1s.a), ...options });
  const b = await TieredStore.create({ l2: heldB, bus: wrapB?.(bus) ?? bus, l1: l1(l1s.b), ...options });
  return {
    a,
    b,
    heldB,
    l1: { a: () => l1s.a.at(-1)!, b: () => l1s.b.at(-1)! },
    close: async () => {
      await a.close();
      await b.close();
      await l2.close();
    },
  };
}

describe('tiers: fill fences', () => {
  test('a read answered with the old value after the notice arrived does not put the old value into L1', async () => {
    const { a, b, heldB, l1, close } = await pair({ l1MaxTtlMs: 60_000, generationCheckMs: 60_000 });
    try {
      const k = key();
      await a.set(k, v('old'), { ttlMs: 60_000 });
      let release!: () => void;
      heldB.hold = new Promise((resolve) => {
        release = resolve;
      });
      const reading = b.get(k); // reads 'old' from L2, then waits
      await sleep(5);
      await a.set(k, v('new'), { ttlMs: 60_000 });
      await sleep(5); // the notice reaches B while its read is still out
      heldB.hold = undefined;
      release();
      assert.deepEqual(await reading, v('old'), 'the read began before the write: old is a fair answer');
      assert.equal(await l1.b().get(k), undefined, 'but it must not be kept');
      assert.deepEqual(await b.get(k), v('new'));
    } finally {
      await close();
    }
  });

  test('a tag purge breaks every read in flight, since a read does not know its tags', async () => {
    const { a, b, heldB, l1, close } = await pair({ l1MaxTtlMs: 60_000, generationCheckMs: 60_000 });
    try {
      const t = tag();
      const k = key();
      await a.set(k, v('tagged'), { ttlMs: 60_000, tags: [t] });
      let release!: () => void;
      heldB.hold = new Promise((resolve) => {
        release = resolve;
      });
      const reading = b.get(k);
      await sleep(5);
      await a.deleteByTag(t);
      await sleep(5);
      heldB.hold = undefined;
      release();
      await reading;
      assert.equal(await l1.b().get(k), undefined);
      assert.equal(await b.get(k), undefined);
    } finally {
      await close();
    }
  });

  test('concurrent writes of one key on one instance leave L1 empty or agreeing with L2', async () => {
    const { a, l1, close } = await pair();
    try {
      const k = key();
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          a.set(k, v(`w${i}`), { ttlMs: 60_000, tags: i % 2 ? [tag()] : [] }),
        ),
      );
      const copy = await l1.a().get(k);
      const held = await a.get(k);
      if (copy !== undefined) assert.deepEqual(copy, held);
    } finally {
      await close();
    }
  });
});

describe('tiers: generation counters', () => {
  test('GenerationWatch: complete, missing, in flight then seen, and reset', () => {
    const watch = new GenerationWatch(2);
    watch.settle([3, 0]);
    assert.equal(watch.judge([3, 0]), 'complete');
    watch.saw(0, 4);
    watch.saw(1, 1);
    assert.equal(watch.judge([4, 1]), 'complete');
    assert.equal(watch.judge([5, 1]), 'missing', 'generation 5 of shard 0 not seen');
    watch.saw(0, 5);
    assert.equal(watch.judge([5, 1]), 'complete', 'it arrived late, within the grace');
    watch.settle([5, 1]);
    watch.saw(0, 5);
    assert.equal(watch.judge([5, 1]), 'complete', 'a duplicate changes nothing');
    assert.equal(watch.judge([1_000_000, 1]), 'missing', 'a big jump is judged without walking it');
    assert.equal(watch.judge([4, 1]), 'reset');
    assert.throws(() => watch.judge([5]), RangeError);
  });

  test('a notice still in flight when the counters are read is no miss', async () => {
    const { a, b, close } = await pair({
      l1MaxTtlMs: 60_000,
      generationCheckMs: 60_000,
      deliveryGraceMs: 50,
    });
    const drops: string[] = [];
    b.on('l1-drop', ({ reason }) => drops.push(reason));
    try {
      for (let i = 0; i < 10; i++) {
        await a.set(key(), v('x'), { ttlMs: 10_000 });
        await b.checkGenerations(); // the counter moved; delivery comes on a later turn of the event loop
      }
      assert.deepEqual(drops, []);
    } finally {
      await close();
    }
  });

  test('a lost notice drops L1 at the next check', async () => {
    let lossy: LossyBus | undefined;
    const { a, b, l1, close } = await pair(
      { l1MaxTtlMs: 60_000, generationCheckMs: 60_000, deliveryGraceMs: 20 },
      (bus) => {
        lossy = new LossyBus(bus);
        return lossy;
      },
    );
    try {
      const k = key();
      const other = key();
      await a.set(k, v('old'), { ttlMs: 60_000 });
      await b.set(other, v('unrelated'), { ttlMs: 60_000 });
      assert.deepEqual(await b.get(k), v('old'));
      lossy!.lose = true;
      await a.set(k, v('new'), { ttlMs: 60_000 });
      await sleep(5);
      assert.deepEqual(await b.get(k), v('old'), 'stale until the check: the bound is the check interval');
      await b.checkGenerations();
      assert.equal(await l1.b().get(k), undefined);
      assert.equal(
        await l1.b().get(other),
        undefined,
        'the whole L1 goes: the tier cannot tell what the notice named',
      );
      assert.deepEqual(await b.get(k), v('new'));
      assert.equal(b.stats().l1Drops, 1);
    } finally {
      await close();
    }
  });

  test('counters that cannot be read: L1 is dropped and bypassed until they can', async () => {
    let failing = false;
    const { a, b, l1, close } = await pair({ l1MaxTtlMs: 60_000, generationCheckMs: 60_000 }, (bus) => ({
      name: bus.name,
      shards: bus.shards,
      publish: (from, invalidation) => bus.publish(from, invalidation),
      subscribe: (listener) => bus.subscribe(listener),
      generations: async () => {
        if (failing) throw new Error('injected outage');
        return bus.generations();
      },
    }));
    const events: string[] = [];
    b.on('l1-drop', ({ reason }) => events.push(`drop ${reason}`));
    b.on('bus-error', ({ operation }) => events.push(`error ${operation}`));
    try {
      const k = key();
      await a.set(k, v('value'), { ttlMs: 60_000 });
      assert.deepEqual(await b.get(k), v('value'));
      failing = true;
      await b.checkGenerations();
      assert.deepEqual(events, ['error generations', 'drop unverified']);
      assert.deepEqual(await b.get(k), v('value'), 'served from L2');
      assert.equal(await l1.b().get(k), undefined, 'and not copied into L1');
      failing = false;
      await b.checkGenerations();
      assert.deepEqual(await b.get(k), v('value'));
      assert.deepEqual(await l1.b().get(k), v('value'), 'trusted again');
    } finally {
      await close();
    }
  });
});

describe('tiers: contract and options', () => {
  const make = (options: Partial<TieredStoreOptions>) =>
    TieredStore.create({ l2: new MemoryStore(), bus: new MemoryInvalidationBus(), ...options });

  test('options are checked once, at creation', async () => {
    for (const l1MaxTtlMs of [0, -1, 1.5, Number.NaN, 60_001]) {
      await assert.rejects(make({ l1MaxTtlMs }), RangeError, `l1MaxTtlMs ${l1MaxTtlMs}`);
    }
    await assert.rejects(make({ l1MaxTtlMs: 1_000, generationCheckMs: 2_000 }), RangeError);
    await assert.rejects(make({ generationCheckMs: 500, deliveryGraceMs: 501 }), RangeError);
    await assert.rejects(make({ l2: undefined as never }), TypeError);
    const store = await make({ l1MaxTtlMs: 500 });
    assert.deepEqual(store.options, { l1MaxTtlMs: 500, generationCheckMs: 500, deliveryGraceMs: 100 });
    await store.close();
  });

  test('PHI-LEAK-01 a key or tag that is not a store name is refused before it reaches a store or a notice', async () => {
    const bus = new MemoryInvalidationBus();
    const published: string[] = [];
    await bus.subscribe((notice) => published.push(notice.name));
    const store = await make({ bus });
    try {
      await assert.rejects(store.set('MRN00482913', v('x'), { ttlMs: 1_000 }), TypeError);
      await assert.rejects(
        store.set(key(), v('x'), { ttlMs: 1_000, tags: ['patient:MRN00482913'] }),
        TypeError,
      );
      await assert.rejects(store.get('MRN00482913'), TypeError);
      await assert.rejects(store.delete('MRN00482913'), TypeError);
      await assert.rejects(store.deleteByTag('MRN00482913'), TypeError);
      await sleep(5);
      assert.deepEqual(published, []);
    } finally {
      await store.close();
    }
  });

  test('a failed publish does not fail the write: the write is in L2, and an event says what happened', async () => {
    const inner = new MemoryInvalidationBus();
    const bus: InvalidationBus = {
      name: 'failing',
      shards: 1,
      publish: async () => {
        throw new Error('injected outage');
      },
      subscribe: (listener) => inner.subscribe(listener),
      generations: () => inner.generations(),
    };
    const l2 = new MemoryStore();
    const store = await TieredStore.create({ l2, bus });
    const errors: string[] = [];
    store.on('bus-error', ({ operation }) => errors.push(operation));
    try {
      const k = key();
      await store.set(k, v('kept'), { ttlMs: 10_000 });
      assert.deepEqual(await l2.get(k), v('kept'));
      assert.deepEqual(errors, ['publish']);
    } finally {
      await store.close();
    }
  });

  test('an L2 failure propagates, and the local copy of the key goes', async () => {
    const l2 = new MemoryStore();
    let down = false;
    const flaky: CacheStore = {
      name: 'flaky',
      get: async (k) => (down ? Promise.reject(new Error('down')) : l2.get(k)),
      set: async (k, value, options) =>
        down ? Promise.reject(new Error('down')) : l2.set(k, value, options),
      add: (k, value, options) => l2.add(k, value, options),
      delete: (k) => l2.delete(k),
      deleteByTag: (t) => l2.deleteByTag(t),
      ttl: (k) => l2.ttl(k),
      close: () => l2.close(),
    };
    const l1s: MemoryStore[] = [];
    const store = await TieredStore.create({
      l2: flaky,
      bus: new MemoryInvalidationBus(),
      l1: () => {
        l1s.push(new MemoryStore());
        return l1s.at(-1)!;
      },
    });
    try {
      const k = key();
      await store.set(k, v('one'), { ttlMs: 10_000 });
      down = true;
      await assert.rejects(store.set(k, v('two'), { ttlMs: 10_000 }), /down/);
      assert.equal(await l1s.at(-1)!.get(k), undefined);
      await assert.rejects(store.get(k), /down/);
    } finally {
      await store.close();
    }
  });

  test('create fails when the bus cannot subscribe, and leaves l2 open', async () => {
    const l2 = new MemoryStore();
    const bus = new MemoryInvalidationBus();
    bus.subscribe = async () => {
      throw new Error('no subscription');
    };
    await assert.rejects(TieredStore.create({ l2, bus }), /no subscription/);
    await l2.set(key(), v('still open'), { ttlMs: 1_000 });
    await l2.close();
  });
});
