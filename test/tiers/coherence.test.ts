import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RedisTopology } from '../harness/redis.js';
import { BINDING_NAMES } from '../store/redis/bindings.js';
import { channel, type Instance, instance, instances, key, noticed, sleep, tag, within } from './helpers.js';

/**
 * Two instances over one Redis. L1 TTLs and generation checks are set to a minute here, so that when B's copy
 * goes within a fraction of a second, only the notice can have taken it.
 */
const NOTICE_ONLY = { l1MaxTtlMs: 60_000, generationCheckMs: 60_000 } as const;
const TOPOLOGIES: readonly RedisTopology[] = ['plain', 'cluster'];
const v = (text: string) => Buffer.from(text);

for (const topology of TOPOLOGIES) {
  for (const binding of BINDING_NAMES) {
    describe(`tiers: two instances over redis ${topology} ${binding}`, () => {
      let a: Instance;
      let b: Instance;
      before(async () => {
        const shared = channel();
        a = await instance(topology, binding, { channel: shared, ...NOTICE_ONLY });
        b = await instance(topology, binding, { channel: shared, ...NOTICE_ONLY });
      });
      after(async () => {
        await a?.store.close();
        await b?.store.close();
      });

      /** Polls B until it serves `expected`; every answer on the way must be `expected`, a miss, or `stale`. */
      async function bConverges(k: string, expected: Buffer | undefined, stale: Buffer): Promise<number> {
        return within(1_000, `B serves ${expected?.toString() ?? 'a miss'}`, async () => {
          const got = await b.store.get(k);
          if (got !== undefined && !got.equals(stale)) assert.deepEqual(got, expected);
          return expected === undefined ? got === undefined : got?.equals(expected) === true;
        });
      }

      test("a set on A replaces B's L1 copy: B then serves the new value, never the old", async (t) => {
        const k = key();
        await noticed(b.store, () => a.store.set(k, v('one'), { ttlMs: 60_000 }));
        assert.deepEqual(await b.store.get(k), v('one'));
        assert.deepEqual(await b.l1().get(k), v('one'), 'B holds an L1 copy');
        const hits = b.store.stats().l1Hits;
        assert.deepEqual(await b.store.get(k), v('one'));
        assert.equal(b.store.stats().l1Hits, hits + 1, 'and serves it from L1');

        await a.store.set(k, v('two'), { ttlMs: 60_000 });
        const ms = await bConverges(k, v('two'), v('one'));
        t.diagnostic(`B served the new value ${ms.toFixed(1)} ms after A's set resolved`);
        await sleep(50);
        for (let i = 0; i < 5; i++) assert.deepEqual(await b.store.get(k), v('two'));
      });

      test("a delete on A removes B's L1 copy", async () => {
        const k = key();
        await noticed(b.store, () => a.store.set(k, v('doomed'), { ttlMs: 60_000 }));
        assert.deepEqual(await b.store.get(k), v('doomed'));
        assert.deepEqual(await b.l1().get(k), v('doomed'));
        assert.equal(await a.store.delete(k), true);
        await bConverges(k, undefined, v('doomed'));
        assert.equal(await b.l1().get(k), undefined);
      });

      test("a deleteByTag on A removes B's copies carrying the tag, even those B filled without knowing their tags", async () => {
        const t = tag();
        const filled = key();
        const written = key();
        const untagged = key();
        await noticed(b.store, () => a.store.set(filled, v('filled'), { ttlMs: 60_000, tags: [t] }));
        assert.deepEqual(await b.store.get(filled), v('filled'));
        assert.deepEqual(await b.l1().get(filled), v('filled'), 'B copied it from L2, its tags unknown to B');
        await noticed(a.store, () => b.store.set(written, v('written'), { ttlMs: 60_000, tags: [t] }));
        await noticed(a.store, () => b.store.set(untagged, v('untagged'), { ttlMs: 60_000 }));

        assert.equal(await a.store.deleteByTag(t), 2);
        await bConverges(filled, undefined, v('filled'));
        await bConverges(written, undefined, v('written'));
        assert.equal(await b.l1().get(filled), undefined);
        assert.equal(await b.l1().get(written), undefined);
        assert.deepEqual(await b.l1().get(untagged), v('untagged'), 'an entry B wrote without the tag stays');
      });

      test("an instance skips its own notices: A's own write stays in A's L1", async () => {
        const k = key();
        const before = { a: a.store.stats().noticesReceived, b: b.store.stats().noticesReceived };
        await a.store.set(k, v('mine'), { ttlMs: 60_000 });
        await within(1_000, 'B receives the notice', async () => b.store.stats().noticesReceived > before.b);
        await sleep(20);
        assert.equal(a.store.stats().noticesReceived, before.a);
        assert.deepEqual(await a.l1().get(k), v('mine'));
      });

      test('no L1 entry outlives l1MaxTtlMs or the L2 entry it copies', async () => {
        const shared = channel();
        const options = { channel: shared, l1MaxTtlMs: 1_000 };
        const [c, d] = (await instances(topology, binding, options, options)) as [Instance, Instance];
        try {
          const long = key();
          const short = key();
          await noticed(d.store, () => c.store.set(long, v('long'), { ttlMs: 60_000 }));
          const written = await c.l1().ttl(long);
          assert.ok(written !== undefined && written <= 1_000, `L1 ttl after a write: ${written}`);
          assert.deepEqual(await d.store.get(long), v('long'));
          const filled = await d.l1().ttl(long);
          assert.ok(filled !== undefined && filled <= 1_000, `L1 ttl after a fill: ${filled}`);

          await noticed(d.store, () => c.store.set(short, v('short'), { ttlMs: 400 }));
          assert.deepEqual(await d.store.get(short), v('short'));
          const copied = await d.l1().ttl(short);
          assert.ok(
            copied !== undefined && copied <= 400,
            `L1 ttl of a copy of an entry with 400 ms left: ${copied}`,
          );

          await sleep(1_050);
          assert.equal(await c.l1().get(long), undefined, 'gone from L1 after l1MaxTtlMs');
          assert.equal(await d.l1().get(long), undefined);
          assert.deepEqual(await d.store.get(long), v('long'), 'still in L2, and served from there');
          assert.equal(await d.store.get(short), undefined);
        } finally {
          await c.store.close();
          await d.store.close();
        }
      });
    });
  }
}
