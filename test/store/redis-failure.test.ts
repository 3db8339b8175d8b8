import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { RedisStore, type RedisStoreOptions } from '../../src/store/redis/redis-store.js';
import { kill, type PrivateRedis, pause, resume, startRedis, waitFor } from '../harness/redis.js';
import { BINDING_NAMES, BINDINGS, type BindingName, keysWithoutTtl } from './redis/bindings.js';

const key = () => `phc:e:${randomBytes(32).toString('base64url')}`;
const tag = () => `phc:t:${randomBytes(32).toString('base64url')}`;
const isUnavailable = (error: unknown) =>
  error instanceof PhiCacheError && error.code === 'ERR_STORE_UNAVAILABLE';

/** Resolves with how long `call` took to reject, and fails the test if it resolved. */
async function rejectionTime(call: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await assert.rejects(call(), isUnavailable);
  return performance.now() - start;
}

/** Rejects with the breaker's own refusal: the call never reached the connection, so it cost no round trip. */
async function refusedByBreaker(call: () => Promise<unknown>): Promise<void> {
  await assert.rejects(
    call(),
    (error: unknown) => isUnavailable(error) && /circuit breaker is open/.test((error as Error).message),
  );
}

/** Every CacheStore operation once, each with fresh keys. */
function everyOperation(store: RedisStore): Record<string, () => Promise<unknown>> {
  return {
    get: () => store.get(key()),
    set: () => store.set(key(), Buffer.from('v'), { ttlMs: 10_000 }),
    'set with tags': () => store.set(key(), Buffer.from('v'), { ttlMs: 10_000, tags: [tag()] }),
    add: () => store.add(key(), Buffer.from('v'), { ttlMs: 10_000 }),
    delete: () => store.delete(key()),
    deleteByTag: () => store.deleteByTag(tag()),
    ttl: () => store.ttl(key()),
  };
}

for (const binding of BINDING_NAMES) {
  describe(`redis ${binding}: failure modes on a private server`, () => {
    let redis: PrivateRedis;
    const stores: RedisStore[] = [];
    const open = async (options: RedisStoreOptions): Promise<RedisStore> => {
      const store = new RedisStore(await BINDINGS[binding as BindingName]({ url: redis.url }), options);
      stores.push(store);
      return store;
    };

    before(async () => {
      redis = await startRedis('plain');
    });
    after(async () => {
      for (const store of stores) await store.close();
      await redis.stop();
    });

    test('a paused server: every call rejects with ERR_STORE_UNAVAILABLE within its deadline, and works after resume', async () => {
      const deadlineMs = 200;
      const store = await open({ commandTimeoutMs: deadlineMs, breaker: { failureThreshold: 10_000 } });
      const timeouts: { command: string; elapsedMs: number; deadlineMs: number }[] = [];
      store.on('command-timeout', (event) => timeouts.push(event));
      const k = key();
      await store.set(k, Buffer.from('before'), { ttlMs: 60_000 });

      pause(redis.nodes[0]!);
      try {
        const operations = everyOperation(store);
        const times = await Promise.all(Object.values(operations).map((call) => rejectionTime(call)));
        // The server stays paused until `resume` below, so each rejection is the deadline's, never an answer. The
        // sweep that rejects may run late on a loaded machine; only a call that waited for the server (a hang)
        // would take as long as the bound here.
        for (const [i, name] of Object.keys(operations).entries()) {
          const ms = times[i]!;
          assert.ok(ms >= deadlineMs && ms < 10 * deadlineMs, `${name} rejected after ${Math.round(ms)} ms`);
        }
        assert.ok(timeouts.length >= Object.keys(operations).length);
        for (const event of timeouts) {
          assert.match(event.command, /^[A-Z]+$/, 'events name the command, never a key');
          assert.deepEqual(Object.keys(event).sort(), ['command', 'deadlineMs', 'elapsedMs']);
          assert.equal(event.deadlineMs, deadlineMs);
          assert.ok(event.elapsedMs >= deadlineMs, `${event.command} timed out after ${event.elapsedMs} ms`);
        }
      } finally {
        resume(redis.nodes[0]!);
      }
      await waitFor(async () => (await store.get(k))?.toString() === 'before', 5_000, 'reads after resume');
      await store.set(k, Buffer.from('after'), { ttlMs: 60_000 });
      assert.deepEqual(await store.get(k), Buffer.from('after'));
      assert.equal(store.inFlight, 0);
    });

    test('the circuit breaker opens after consecutive failures, fails calls at once, and closes after a good probe', async () => {
      const store = await open({ commandTimeoutMs: 100, breaker: { failureThreshold: 3, cooldownMs: 300 } });
      const events: string[] = [];
      store.on('breaker-open', ({ failures, cooldownMs }) => {
        assert.equal(failures, 3);
        assert.equal(cooldownMs, 300);
        events.push('open');
      });
      store.on('breaker-close', ({ openMs }) => {
        assert.ok(openMs >= 300, `open for ${openMs} ms`);
        events.push('close');
      });
      const k = key();
      await store.set(k, Buffer.from('v'), { ttlMs: 60_000 });

      pause(redis.nodes[0]!);
      try {
        for (let i = 0; i < 3; i++) await rejectionTime(() => store.get(k));
        assert.equal(store.breakerState, 'open');
        assert.deepEqual(events, ['open']);
        // Open: every operation is refused by the breaker itself, without a round trip.
        for (const call of Object.values(everyOperation(store))) await refusedByBreaker(call);
        // After the cool-down (a timer never fires early; a late one only waits longer) one probe goes out; the
        // server is still paused, so it fails and the breaker reopens.
        await new Promise((resolve) => setTimeout(resolve, 320));
        const probe = store.get(k);
        assert.equal(store.breakerState, 'half-open');
        await refusedByBreaker(() => store.get(k)); // only one probe while half-open
        await assert.rejects(probe, isUnavailable);
        assert.equal(store.breakerState, 'open');
      } finally {
        resume(redis.nodes[0]!);
      }
      await new Promise((resolve) => setTimeout(resolve, 320));
      assert.deepEqual(await store.get(k), Buffer.from('v'));
      assert.equal(store.breakerState, 'closed');
      assert.deepEqual(events, ['open', 'close']);
    });

    test('a server error reply is not an outage: it does not count towards the breaker', async () => {
      const store = await open({ breaker: { failureThreshold: 1 } });
      const admin = await BINDINGS[binding as BindingName]({ url: redis.url });
      try {
        // Plain strings where the tag index shards should be: the index script fails with WRONGTYPE.
        const t = tag();
        for (let shard = 0; shard < store.options.tagIndexShards; shard++) {
          await admin.set(`${t}:${shard}`, Buffer.from('not a sorted set'), 60_000, false);
        }
        for (let i = 0; i < 3; i++) {
          await assert.rejects(
            store.set(key(), Buffer.from('v'), { ttlMs: 1000, tags: [t] }),
            (error: unknown) => {
              return isUnavailable(error) && /WRONGTYPE/.test(String((error as Error).cause));
            },
          );
          await assert.rejects(store.deleteByTag(t), isUnavailable);
        }
        assert.equal(store.breakerState, 'closed');
        assert.equal(await store.get(key()), undefined);
      } finally {
        await admin.close();
      }
    });

    test('PHI-TTL-01 a SCAN over the whole server finds no key without a TTL', async () => {
      const commands = await BINDINGS[binding as BindingName]({ url: redis.url });
      try {
        assert.deepEqual(await keysWithoutTtl(commands), []);
      } finally {
        await commands.close();
      }
    });

    test('the offline queue is off: with the server gone, calls fail at once instead of waiting in a queue', async () => {
      const deadlineMs = 5_000;
      const store = await open({ commandTimeoutMs: deadlineMs, breaker: { failureThreshold: 10_000 } });
      await store.set(key(), Buffer.from('v'), { ttlMs: 60_000 });
      kill(redis.nodes[0]!);
      // The client notices the closed connection: a call fails with the connection's error.
      await waitFor(
        () => store.get(key()).then(() => false, isUnavailable),
        2 * deadlineMs,
        'a call to fail on the closed connection',
      );
      const timeouts: string[] = [];
      store.on('command-timeout', (event) => timeouts.push(event.command));
      // Queued calls would wait for a reconnect that never comes, and reject only at the deadline, with a
      // command-timeout event: with no offline queue, each is refused by the connection instead.
      for (const [name, call] of Object.entries(everyOperation(store))) {
        const ms = await rejectionTime(call);
        assert.ok(ms < deadlineMs, `${name} rejected after ${Math.round(ms)} ms, at the 5 s deadline`);
      }
      assert.deepEqual(timeouts, [], 'no call waited for its deadline');
    });
  });
}
