import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { RedisCommands } from '../../src/store/redis/commands.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { sharedRedis } from '../harness/redis.js';
import { BINDING_NAMES, BINDINGS, connectionOptions } from './redis/bindings.js';

const key = () => `phc:e:${randomBytes(32).toString('base64url')}`;
const tag = () => `phc:t:${randomBytes(32).toString('base64url')}`;
const TTL = { ttlMs: 60_000 };

/** Runs `fn` with Date.now() frozen, so the index updates of the writes inside get the same scores. */
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

for (const binding of BINDING_NAMES) {
  describe(`redis plain ${binding}: a tagged write on one server is one script`, () => {
    let commands: RedisCommands;
    let store: RedisStore;
    /** Commands sent through `commands`, by method: counted on the object itself, so it stays its own master. */
    const sent = new Map<string, number>();

    before(async () => {
      commands = await BINDINGS[binding](connectionOptions(await sharedRedis('plain')));
      for (const method of ['get', 'set', 'evalsha', 'eval'] as const) {
        const original = commands[method].bind(commands) as (...args: unknown[]) => Promise<unknown>;
        (commands as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          sent.set(method, (sent.get(method) ?? 0) + 1);
          return original(...args);
        };
      }
      store = new RedisStore(commands, { commandTimeoutMs: 5_000 });
    });
    after(async () => {
      await store.close();
    });

    test('two tags and the entry go out as one EVALSHA, and a purge of either tag reaches the entry', async () => {
      const k = key();
      const [first, second] = [tag(), tag()];
      await store.set(k, Buffer.from('warm the script cache'), { ...TTL, tags: [first, second] });
      sent.clear();
      await store.set(k, Buffer.from('v'), { ...TTL, tags: [first, second] });
      assert.deepEqual(Object.fromEntries(sent), { evalsha: 1 });
      const entry = await store.getEntry(k);
      assert.equal(entry?.value.toString(), 'v');
      assert.equal(entry?.carries([first, second]), true);
      assert.equal(entry?.carries([first]), false);
      assert.ok((await store.ttl(k))! > 0, 'PHI-TTL-01 the entry has its PX');
      assert.equal(await store.deleteByTag(second), 1);
      assert.equal(await store.get(k), undefined);
    });

    test('the frame is byte for byte the one the step by step write makes', async () => {
      // A wrapper is not its own master, so this store takes the index scripts and then the SET.
      const stepwise = new RedisStore({ ...commands, close: async () => {} }, { commandTimeoutMs: 5_000 });
      try {
        const tags = [tag(), tag(), tag()];
        const [oneScript, stepByStep] = [key(), key()];
        await atFrozenClock(async () => {
          sent.clear();
          await stepwise.set(stepByStep, Buffer.from('same value'), { ...TTL, tags });
          assert.equal(sent.get('set'), 1, 'the wrapper wrote step by step');
          await store.set(oneScript, Buffer.from('same value'), { ...TTL, tags });
        });
        const [a, b] = [await commands.get(oneScript), await commands.get(stepByStep)];
        assert.ok(a !== null && b !== null);
        assert.deepEqual(a, b);
      } finally {
        await stepwise.close();
      }
    });

    test('add writes only an absent key, and an overwrite is indexed again', async () => {
      const k = key();
      const t = tag();
      assert.equal(await store.add(k, Buffer.from('first'), { ...TTL, tags: [t] }), true);
      assert.equal(await store.add(k, Buffer.from('second'), { ...TTL, tags: [t] }), false);
      assert.equal((await store.get(k))?.toString(), 'first');
      await store.set(k, Buffer.from('third'), { ...TTL, tags: [t] });
      assert.equal(await store.deleteByTag(t), 1);
      assert.equal(await store.get(k), undefined);
    });
  });
}
