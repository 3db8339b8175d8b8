import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { InvalidationNotice } from '../../src/tiers/invalidation-bus.js';
import { RedisInvalidationBus } from '../../src/tiers/redis-bus.js';
import { BINDING_NAMES } from '../store/redis/bindings.js';
import { channel, instance, key, sleep, tag, within } from './helpers.js';

for (const topology of ['plain', 'cluster', 'acl'] as const) {
  for (const binding of BINDING_NAMES) {
    describe(`tiers: redis invalidation bus on ${topology} ${binding}`, () => {
      test('a notice reaches every subscriber with its generation, and the counters account for it', async () => {
        const shared = channel();
        const { commands, store } = await instance(topology, binding, { channel: channel() });
        const bus = new RedisInvalidationBus(commands, { channel: shared });
        const got: InvalidationNotice[][] = [[], []];
        const stops = [
          await bus.subscribe((notice) => got[0]!.push(notice)),
          await bus.subscribe((notice) => got[1]!.push(notice)),
        ];
        try {
          const before = await bus.generations();
          assert.equal(before.length, 8);
          const names = Array.from({ length: 24 }, (_, i) => (i % 3 ? key() : tag()));
          const sent = [];
          for (const name of names) {
            sent.push(await bus.publish('abc', { kind: name.startsWith('phc:t:') ? 'tag' : 'key', name }));
          }
          await within(2_000, 'both subscribers have every notice', async () =>
            got.every((list) => list.length === names.length),
          );
          // Notices of different counters come from different masters on a Cluster, so their order may differ.
          const order = (list: readonly InvalidationNotice[]) =>
            [...list].sort((x, y) => x.name.localeCompare(y.name));
          assert.deepEqual(order(got[0]!), order(sent));
          assert.deepEqual(order(got[1]!), order(sent));
          const after = await bus.generations();
          const advanced = after.reduce((sum, n, shard) => sum + n - before[shard]!, 0);
          assert.equal(advanced, names.length, 'each notice advanced exactly one counter by one');
          assert.ok(new Set(sent.map((n) => n.shard)).size > 1, 'notices spread over the counters');
        } finally {
          for (const stop of stops) await stop();
          await store.close();
        }
      });

      test('what is not a notice is dropped: foreign, malformed, oversized, or naming no store name', async () => {
        const shared = channel();
        const { commands, store } = await instance(topology, binding, { channel: channel() });
        const bus = new RedisInvalidationBus(commands, { channel: shared });
        const got: InvalidationNotice[] = [];
        const stop = await bus.subscribe((notice) => got.push(notice));
        try {
          const good = { v: 1, from: 'x', kind: 'key', name: key(), shard: 0, gen: 1 };
          for (const junk of [
            'hello',
            '{"v":1}',
            JSON.stringify({ ...good, name: 'MRN00482913' }),
            JSON.stringify({ ...good, kind: 'value' }),
            JSON.stringify({ ...good, shard: 8 }),
            JSON.stringify({ ...good, gen: 0 }),
            JSON.stringify({ ...good, from: 'has space' }),
            JSON.stringify({ ...good, extra: 'field' }),
            JSON.stringify({ ...good, name: `phc:e:${'x'.repeat(5_000)}` }),
          ]) {
            await commands.publish!(shared, Buffer.from(junk));
          }
          await commands.publish!(shared, Buffer.from(JSON.stringify(good)));
          await within(2_000, 'the good one arrives', async () => got.length > 0);
          await sleep(20);
          assert.deepEqual(got, [{ from: 'x', kind: 'key', name: good.name, shard: 0, generation: 1 }]);
        } finally {
          await stop();
          await store.close();
        }
      });
    });
  }
}

describe('tiers: redis invalidation bus options', () => {
  test('a channel is phc: and safe characters only (no hash tag can pin the counters)', async () => {
    const { commands, store } = await instance('plain', 'node-redis', { channel: channel() });
    try {
      for (const bad of ['inv', 'phc:', 'phc:{tenant}', 'phc:a b', `phc:${'x'.repeat(201)}`]) {
        assert.throws(() => new RedisInvalidationBus(commands, { channel: bad }), TypeError, bad);
      }
      assert.throws(() => new RedisInvalidationBus(commands, { commandTimeoutMs: 0 }), RangeError);
      assert.equal(new RedisInvalidationBus(commands).channel, 'phc:inv');
      const bus = new RedisInvalidationBus(commands);
      await assert.rejects(bus.publish('abc', { kind: 'key', name: 'MRN00482913' }), TypeError);
      await assert.rejects(bus.publish('not an id', { kind: 'key', name: key() }), TypeError);
    } finally {
      await store.close();
    }
  });

  test('RedisCommands without subscribe are refused', () => {
    assert.throws(() => new RedisInvalidationBus({} as never), TypeError);
  });
});
