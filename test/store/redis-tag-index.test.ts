import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { RedisCommands } from '../../src/store/redis/commands.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { type RedisTopology, sharedRedis } from '../harness/redis.js';
import { BINDING_NAMES, BINDINGS, connectionOptions } from './redis/bindings.js';

const key = () => `phc:e:${randomBytes(32).toString('base64url')}`;
const tag = () => `phc:t:${randomBytes(32).toString('base64url')}`;
const TTL = { ttlMs: 60_000 };

/** Members of every shard of `t`: what the tag index holds. */
async function indexSize(commands: RedisCommands, store: RedisStore, t: string): Promise<number> {
  const shards = store.options.tagIndexShards;
  let size = 0;
  for (let n = 0; n < shards; n++) {
    size += (await commands.zrange(`${t}:${n}`, 0, -1)).length;
  }
  return size;
}

/** Runs `fn` with Date.now() frozen, so every index update of the writes inside gets the same score. */
async function atFrozenClock<T>(fn: () => Promise<T>): Promise<T> {
  const real = Date.now;
  const frozen = real();
  Date.now = () => frozen;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}

const topologies: RedisTopology[] = ['plain', 'cluster'];

for (const topology of topologies) {
  for (const binding of BINDING_NAMES) {
    describe(`redis ${topology} ${binding}: the tag index holds one member per live key`, () => {
      let commands: RedisCommands;
      /** The SET that `holdNextSet` stops: resolves when it is reached; `release` lets it go on. */
      let hold: { reached: () => void; released: Promise<void> } | undefined;
      let store: RedisStore;
      const stores: RedisStore[] = [];

      before(async () => {
        commands = await BINDINGS[binding](connectionOptions(await sharedRedis(topology)));
        const gated: RedisCommands = {
          ...commands,
          set: async (k, value, ttlMs, onlyIfAbsent) => {
            const held = hold;
            hold = undefined;
            if (held !== undefined) {
              held.reached();
              await held.released;
            }
            return commands.set(k, value, ttlMs, onlyIfAbsent);
          },
          close: async () => {},
        };
        store = new RedisStore(gated, { commandTimeoutMs: 5_000 });
        stores.push(store);
      });
      after(async () => {
        for (const s of stores) await s.close();
        await commands.close();
      });

      const holdNextSet = () => {
        let reached!: () => void;
        let release!: () => void;
        const atSet = new Promise<void>((resolve) => {
          reached = resolve;
        });
        hold = {
          reached,
          released: new Promise<void>((resolve) => {
            release = resolve;
          }),
        };
        return { atSet, release };
      };

      test('40 overwrites of 25 keys under two tags leave 25 members per tag, and a purge empties it', async () => {
        const shared = tag();
        const keys = Array.from({ length: 25 }, key);
        const own = keys.map(() => tag());
        for (let round = 0; round < 40; round++) {
          await Promise.all(
            keys.map((k, i) => store.set(k, Buffer.from(`v${round}`), { ...TTL, tags: [shared, own[i]!] })),
          );
        }
        assert.equal(await indexSize(commands, store, shared), 25);
        assert.equal(await indexSize(commands, store, own[0]!), 1);
        assert.equal(await store.deleteByTag(shared), 25);
        assert.equal(await indexSize(commands, store, shared), 0);
        for (const k of keys) assert.equal(await store.get(k), undefined);
        // The other tag's members now point at deleted entries: its purge counts nothing.
        assert.equal(await store.deleteByTag(own[0]!), 0);
      });

      test('a tag given twice is indexed once, and the entry is deleted once', async () => {
        const t = tag();
        const k = key();
        await store.set(k, Buffer.from('x'), { ...TTL, tags: [t, t] });
        assert.equal(await indexSize(commands, store, t), 1);
        assert.equal(await store.deleteByTag(t), 1);
      });

      test("an overwrite under another tag: the old tag's purge leaves it, the new tag's deletes it", async () => {
        const before = tag();
        const now = tag();
        const k = key();
        await store.set(k, Buffer.from('one'), { ...TTL, tags: [before] });
        await store.set(k, Buffer.from('two'), { ...TTL, tags: [now] });
        assert.equal(await store.deleteByTag(before), 0);
        assert.deepEqual(await store.get(k), Buffer.from('two'));
        assert.equal(await store.deleteByTag(now), 1);
        assert.equal(await store.get(k), undefined);
      });

      test('an add refused because the key exists leaves the entry purgeable by its own tags', async () => {
        const t = tag();
        const other = tag();
        const k = key();
        await store.set(k, Buffer.from('first'), { ...TTL, tags: [t] });
        assert.equal(await store.add(k, Buffer.from('second'), { ...TTL, tags: [other] }), false);
        assert.equal(await store.deleteByTag(other), 0);
        assert.equal(await store.deleteByTag(t), 1);
      });

      test('a write whose SET lands after a purge read its index update stays reachable by the next purge', async () => {
        const t = tag();
        const k = key();
        await store.set(k, Buffer.from('one'), { ...TTL, tags: [t] });
        const { atSet, release } = holdNextSet();
        const late = store.set(k, Buffer.from('two'), { ...TTL, tags: [t] });
        await atSet; // 'two' is in the index; its SET has not been sent
        assert.equal(await store.deleteByTag(t), 1, "the purge deletes 'one'");
        release();
        await late;
        assert.deepEqual(await store.get(k), Buffer.from('two'));
        assert.equal(await store.deleteByTag(t), 1, "'two' was left indexed");
        assert.equal(await store.get(k), undefined);
      });

      test('two purges of one tag at once delete each entry once and empty the index', async () => {
        const t = tag();
        const keys = Array.from({ length: 120 }, key);
        await Promise.all(keys.map((k) => store.set(k, Buffer.from(k), { ...TTL, tags: [t] })));
        const [a, b] = await Promise.all([store.deleteByTag(t), store.deleteByTag(t)]);
        assert.equal(a + b, 120);
        assert.equal(await indexSize(commands, store, t), 0);
      });

      test('a purge pages past members it keeps, and past 1,100 members sharing one score', async () => {
        const single = new RedisStore({ ...commands, close: async () => {} }, { tagIndexShards: 1 });
        stores.push(single);
        const t = tag();
        const write = async (keys: string[], value: string, tags: string[]) => {
          for (let i = 0; i < keys.length; i += 100) {
            await Promise.all(
              keys.slice(i, i + 100).map((k) => single.set(k, Buffer.from(value), { ...TTL, tags })),
            );
          }
        };
        const tied = Array.from({ length: 1_100 }, key);
        const spread = Array.from({ length: 700 }, key);
        await atFrozenClock(() => write(tied, 'tagged', [t]));
        await write(spread, 'tagged', [t]);
        // Most of them rewritten without the tag: members the purge reads, leaves alone and keeps.
        const kept = [...tied.slice(0, 1_000), ...spread.slice(0, 650)];
        await write(kept, 'untagged', []);
        assert.equal(await single.deleteByTag(t), 150);
        assert.equal(await indexSize(commands, single, t), kept.length);
        for (const k of kept) assert.deepEqual(await single.get(k), Buffer.from('untagged'));
        assert.equal(await single.deleteByTag(t), 0);
      });
    });
  }
}
