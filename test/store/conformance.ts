import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { CacheStore } from '../../src/store/cache-store.js';

/**
 * The CacheStore contract, run against every adapter. `create` returns a fresh, empty store; keys are random
 * per test, so adapters sharing one server do not see each other's data.
 */
export function describeCacheStore(name: string, create: () => Promise<CacheStore>): void {
  describe(`CacheStore conformance: ${name}`, () => {
    let store: CacheStore;
    const key = () => `phc:e:${randomBytes(12).toString('base64url')}`;
    const tag = () => `phc:t:${randomBytes(12).toString('base64url')}`;
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

    before(async () => {
      store = await create();
    });
    after(async () => {
      await store.close();
    });

    test('set then get returns the same bytes', async () => {
      const k = key();
      const value = randomBytes(300);
      await store.set(k, value, { ttlMs: 10_000 });
      assert.deepEqual(await store.get(k), value);
    });

    test('get of an absent key is undefined', async () => {
      assert.equal(await store.get(key()), undefined);
    });

    test('set overwrites, and the ttl is the new one', async () => {
      const k = key();
      await store.set(k, Buffer.from('one'), { ttlMs: 60_000 });
      await store.set(k, Buffer.from('two'), { ttlMs: 5_000 });
      assert.deepEqual(await store.get(k), Buffer.from('two'));
      const ttl = await store.ttl(k);
      assert.ok(ttl !== undefined && ttl > 0 && ttl <= 5_000, `ttl ${ttl}`);
    });

    test('PHI-TTL-01 every write carries a ttl: a write without a positive integer ttl is refused', async () => {
      for (const ttlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(store.set(key(), Buffer.from('x'), { ttlMs }), RangeError);
        await assert.rejects(store.add(key(), Buffer.from('x'), { ttlMs }), RangeError);
      }
    });

    test('PHI-TTL-01 an entry expires after its ttl', async () => {
      const k = key();
      await store.set(k, Buffer.from('short'), { ttlMs: 60 });
      assert.ok((await store.ttl(k)) !== undefined);
      await sleep(120);
      assert.equal(await store.get(k), undefined);
      assert.equal(await store.ttl(k), undefined);
    });

    test('add writes only when absent', async () => {
      const k = key();
      assert.equal(await store.add(k, Buffer.from('first'), { ttlMs: 10_000 }), true);
      assert.equal(await store.add(k, Buffer.from('second'), { ttlMs: 10_000 }), false);
      assert.deepEqual(await store.get(k), Buffer.from('first'));
    });

    test('add succeeds again once the earlier entry expired', async () => {
      const k = key();
      assert.equal(await store.add(k, Buffer.from('first'), { ttlMs: 50 }), true);
      await sleep(100);
      assert.equal(await store.add(k, Buffer.from('second'), { ttlMs: 10_000 }), true);
      assert.deepEqual(await store.get(k), Buffer.from('second'));
    });

    test('concurrent adds of one key: exactly one wins', async () => {
      const k = key();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.add(k, Buffer.from(String(i)), { ttlMs: 10_000 })),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    test('delete removes and reports whether something was there', async () => {
      const k = key();
      await store.set(k, Buffer.from('x'), { ttlMs: 10_000 });
      assert.equal(await store.delete(k), true);
      assert.equal(await store.get(k), undefined);
      assert.equal(await store.delete(k), false);
    });

    test('deleteIfSame deletes only the value that was read, never a newer write', async () => {
      const k = key();
      const tagged = tag();
      await store.set(k, Buffer.from('old value'), { ttlMs: 10_000, tags: [tagged] });
      const read = (await store.get(k))!;
      await store.set(k, Buffer.from('new value'), { ttlMs: 10_000, tags: [tagged] });
      assert.equal(await store.deleteIfSame?.(k, read), false);
      assert.deepEqual(await store.get(k), Buffer.from('new value'));
      const again = (await store.get(k))!;
      assert.equal(await store.deleteIfSame?.(k, again), true);
      assert.equal(await store.get(k), undefined);
      assert.equal(await store.deleteIfSame?.(k, again), false, 'an absent key');
    });

    test('replaceIfSame replaces only the value that was read, keeping its tags and expiry', async () => {
      const k = key();
      const tagged = tag();
      await store.set(k, Buffer.from('sealed under the old key'), { ttlMs: 10_000, tags: [tagged] });
      const read = (await store.get(k))!;
      const ttlBefore = (await store.ttl(k))!;
      assert.equal(await store.replaceIfSame?.(k, read, Buffer.from('sealed under the new key')), true);
      assert.deepEqual(await store.get(k), Buffer.from('sealed under the new key'));
      const ttlAfter = (await store.ttl(k))!;
      assert.ok(ttlAfter <= ttlBefore && ttlAfter > 0, 'the expiry is kept, not extended');
      assert.equal(await store.deleteByTag(tagged), 1, 'the replaced entry is still reached by its tag');
      assert.equal(await store.get(k), undefined);
      await store.set(k, Buffer.from('a newer write'), { ttlMs: 10_000 });
      assert.equal(await store.replaceIfSame?.(k, read, Buffer.from('stale')), false, 'a newer write wins');
      assert.deepEqual(await store.get(k), Buffer.from('a newer write'));
      await store.delete(k);
      assert.equal(
        await store.replaceIfSame?.(k, read, Buffer.from('stale')),
        false,
        'a deleted key stays deleted',
      );
      assert.equal(await store.get(k), undefined);
    });

    test('scan lists every live key with the prefix, once', async () => {
      const prefix = `${key()}:`;
      const keys = [`${prefix}a`, `${prefix}b`, `${prefix}c`];
      for (const k of keys) await store.set(k, Buffer.from('x'), { ttlMs: 10_000 });
      await store.set(`${key()}:other`, Buffer.from('x'), { ttlMs: 10_000 });
      assert.ok(store.scan !== undefined, 'the store can be scanned');
      const found: string[] = [];
      for await (const k of store.scan(prefix)) found.push(k);
      assert.deepEqual(found.sort(), keys);
    });

    test('keysByTag lists the live keys written with the tag, and no other', async () => {
      const wanted = tag();
      const other = tag();
      const keys = [key(), key(), key()];
      for (const k of keys) await store.set(k, Buffer.from('x'), { ttlMs: 10_000, tags: [wanted] });
      await store.set(key(), Buffer.from('x'), { ttlMs: 10_000, tags: [other] });
      await store.delete(keys[2]!);
      assert.ok(store.keysByTag !== undefined, 'the store can list a tag');
      const found = new Set<string>();
      for await (const k of store.keysByTag(wanted)) {
        if ((await store.get(k)) !== undefined) found.add(k);
      }
      assert.deepEqual([...found].sort(), keys.slice(0, 2).sort());
    });

    test('deleteByTag deletes every entry with the tag and no other', async () => {
      const t1 = tag();
      const t2 = tag();
      const a = key();
      const b = key();
      const c = key();
      await store.set(a, Buffer.from('a'), { ttlMs: 10_000, tags: [t1] });
      await store.set(b, Buffer.from('b'), { ttlMs: 10_000, tags: [t1, t2] });
      await store.set(c, Buffer.from('c'), { ttlMs: 10_000, tags: [t2] });
      assert.equal(await store.deleteByTag(t1), 2);
      assert.equal(await store.get(a), undefined);
      assert.equal(await store.get(b), undefined);
      assert.deepEqual(await store.get(c), Buffer.from('c'));
      assert.equal(await store.deleteByTag(t1), 0);
      assert.equal(await store.deleteByTag(t2), 1);
    });

    test('an overwrite without a tag leaves the tag index', async () => {
      const t = tag();
      const k = key();
      await store.set(k, Buffer.from('tagged'), { ttlMs: 10_000, tags: [t] });
      await store.set(k, Buffer.from('untagged'), { ttlMs: 10_000 });
      assert.equal(await store.deleteByTag(t), 0);
      assert.deepEqual(await store.get(k), Buffer.from('untagged'));
    });

    test('keys with braces, colons and any bytes stay distinct', async () => {
      const keys = ['phc:e:{a}b', 'phc:e:{a}c', 'phc:e:a:b', 'phc:e:a\u0000b', 'phc:e:ä'];
      for (const [i, k] of keys.entries()) await store.set(k, Buffer.from([i]), { ttlMs: 10_000 });
      for (const [i, k] of keys.entries()) assert.deepEqual(await store.get(k), Buffer.from([i]));
    });

    test('a key record (keyRecord: true) reads back, expires and is deleted by tag like any entry', async () => {
      const t = tag();
      const k = key();
      const value = randomBytes(120);
      await store.set(k, value, { ttlMs: 10_000, tags: [t], keyRecord: true });
      assert.deepEqual(await store.get(k), value);
      const ttl = await store.ttl(k);
      assert.ok(ttl !== undefined && ttl > 0 && ttl <= 10_000, `ttl ${ttl}`);
      const added = key();
      assert.equal(await store.add(added, value, { ttlMs: 10_000, tags: [t], keyRecord: true }), true);
      assert.equal(await store.add(added, value, { ttlMs: 10_000, keyRecord: true }), false);
      assert.equal(await store.deleteByTag(t), 2);
      assert.equal(await store.get(k), undefined);
      assert.equal(await store.get(added), undefined);
    });

    test('an empty value round-trips', async () => {
      const k = key();
      await store.set(k, Buffer.alloc(0), { ttlMs: 10_000 });
      assert.deepEqual(await store.get(k), Buffer.alloc(0));
    });
  });
}
