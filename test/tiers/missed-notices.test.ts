import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { RedisInvalidationBus } from '../../src/tiers/redis-bus.js';
import { TieredStore } from '../../src/tiers/tiered-store.js';
import { connectOptions, respCall, startRedis } from '../harness/redis.js';
import { BINDING_NAMES, BINDINGS, connectionOptions } from '../store/redis/bindings.js';
import { channel, type Instance, instances, key, LossyBus, noticed, sleep, within } from './helpers.js';

const v = (text: string) => Buffer.from(text);

for (const topology of ['plain', 'cluster'] as const) {
  for (const binding of BINDING_NAMES) {
    describe(`tiers: missed notices over redis ${topology} ${binding}`, () => {
      test('a notice B never gets is caught by the generation counter within the check interval', async (t) => {
        const shared = channel();
        let lossy: LossyBus | undefined;
        const [a, b] = (await instances(
          topology,
          binding,
          { channel: shared, l1MaxTtlMs: 60_000, generationCheckMs: 60_000 },
          {
            channel: shared,
            l1MaxTtlMs: 60_000,
            generationCheckMs: 200,
            deliveryGraceMs: 50,
            wrapBus: (bus) => {
              lossy = new LossyBus(bus);
              return lossy;
            },
          },
        )) as [Instance, Instance];
        const drops: string[] = [];
        b.store.on('l1-drop', ({ reason }) => drops.push(reason));
        try {
          const k = key();
          await noticed(b.store, () => a.store.set(k, v('old'), { ttlMs: 60_000 }));
          assert.deepEqual(await b.store.get(k), v('old'));
          assert.deepEqual(await b.l1().get(k), v('old'));

          lossy!.lose = true;
          await a.store.set(k, v('new'), { ttlMs: 60_000 });
          // One check interval, the grace, and slack for the check's own round trip and a loaded machine.
          const ms = await within(200 + 50 + 400, 'B serves the new value', async () => {
            const got = await b.store.get(k);
            return got?.equals(v('new')) === true;
          });
          t.diagnostic(
            `B dropped its stale copy ${ms.toFixed(0)} ms after A's set (check every 200 ms, grace 50 ms)`,
          );
          assert.ok(lossy!.lost >= 1, 'the notice was lost');
          assert.ok(drops.includes('missed'), `drops: ${drops.join(', ')}`);

          // Once the counters are accounted for, L1 is trusted again: no drop without a new loss.
          lossy!.lose = false;
          await b.store.checkGenerations();
          const count = drops.length;
          assert.deepEqual(await b.store.get(k), v('new'));
          await b.store.checkGenerations();
          await b.store.checkGenerations();
          assert.equal(drops.length, count);
          assert.deepEqual(await b.l1().get(k), v('new'));
        } finally {
          await a.store.close();
          await b.store.close();
        }
      });

      test('counters that went back (expired, or lost in a failover) drop L1', async () => {
        const shared = channel();
        const options = { channel: shared, l1MaxTtlMs: 60_000, generationCheckMs: 60_000 };
        const [a, b] = (await instances(topology, binding, options, options)) as [Instance, Instance];
        const drops: string[] = [];
        b.store.on('l1-drop', ({ reason }) => drops.push(reason));
        try {
          for (let i = 0; i < 20; i++) await a.store.set(key(), v('x'), { ttlMs: 60_000 });
          await within(1_000, 'B has every notice', async () => b.store.stats().noticesReceived >= 20);
          await b.store.checkGenerations();
          assert.deepEqual(drops, []);
          const k = key();
          await noticed(b.store, () => a.store.set(k, v('kept?'), { ttlMs: 60_000 }));
          assert.deepEqual(await b.store.get(k), v('kept?'));
          assert.deepEqual(await b.l1().get(k), v('kept?'));
          const scope = shared.slice('phc:'.length);
          for (let shard = 0; shard < 8; shard++) await a.commands.del([`phc:g:${scope}:${shard}`]);
          await b.store.checkGenerations();
          assert.deepEqual(drops, ['reset']);
          assert.equal(await b.l1().get(k), undefined);
        } finally {
          await a.store.close();
          await b.store.close();
        }
      });
    });
  }
}

describe('tiers: a subscriber connection that drops', () => {
  for (const binding of BINDING_NAMES) {
    test(`${binding}: the subscription comes back after the server kills it, and notices flow again`, async (t) => {
      const server = await startRedis('plain');
      const make = async () => {
        const commands = await BINDINGS[binding](connectionOptions(server));
        return TieredStore.create({
          l2: new RedisStore(commands),
          bus: new RedisInvalidationBus(commands, { channel: 'phc:inv' }),
          // Checks a minute apart: within this test only a notice can drop B's copy.
          l1MaxTtlMs: 60_000,
          generationCheckMs: 60_000,
        });
      };
      const a = await make();
      const b = await make().catch(async (error) => {
        await a.close();
        throw error;
      });
      try {
        const k = key();
        await noticed(b, () => a.set(k, v('before'), { ttlMs: 60_000 }));
        assert.deepEqual(await b.get(k), v('before'));
        const killed = await respCall(connectOptions(server), 'CLIENT', 'KILL', 'TYPE', 'pubsub');
        assert.ok(Number(killed) >= 2, `killed ${killed} subscriber connections`);

        // Each round writes a new value and gives B 100 ms: the round that lands after the resubscribe shows it.
        let round = 0;
        const ms = await within(5_000, "B's subscription back", async () => {
          round += 1;
          await a.set(k, v(`round ${round}`), { ttlMs: 60_000 });
          await sleep(100);
          return (await b.get(k))?.equals(v(`round ${round}`)) === true;
        });
        t.diagnostic(`notices flowed again after ${ms.toFixed(0)} ms (${round} rounds)`);
        // Whatever B missed meanwhile, the counters tell: one check drops a copy it cannot vouch for.
        await b.checkGenerations();
        assert.deepEqual(await b.get(k), v(`round ${round}`));
      } finally {
        await a.close();
        await b.close();
        await server.stop();
      }
    });
  }
});
