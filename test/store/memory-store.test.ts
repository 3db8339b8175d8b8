import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { describeCacheStore } from './conformance.js';

describeCacheStore('memory', async () => new MemoryStore({ sweepIntervalMs: 20 }));

describe('MemoryStore', () => {
  test('PHI-TTL-01 expired entries are freed by the sweep, not only hidden on read', {
    timeout: 10_000,
  }, async () => {
    const store = new MemoryStore({ sweepIntervalMs: 10 });
    for (let i = 0; i < 100; i++) await store.set(`k${i}`, Buffer.alloc(100), { ttlMs: 30 });
    assert.equal(store.stats().entries, 100);
    // Nothing reads the entries: only the sweep timer can free them. Wait for that, not for a time it should take.
    while (store.stats().entries > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(store.stats(), { entries: 0, bytes: 0 });
    await store.close();
  });

  test('a fake clock: sweep frees exactly the expired entries', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, sweepIntervalMs: 60_000 });
    await store.set('short', Buffer.from('s'), { ttlMs: 1000 });
    await store.set('long', Buffer.from('l'), { ttlMs: 5000 });
    now += 1000;
    assert.equal(store.sweep(), 1);
    assert.equal(store.stats().entries, 1);
    assert.deepEqual(await store.get('long'), Buffer.from('l'));
    await store.close();
  });

  test('bounded by entries: the least recently used entry goes first', async () => {
    const store = new MemoryStore({ maxEntries: 3 });
    await store.set('a', Buffer.from('a'), { ttlMs: 10_000 });
    await store.set('b', Buffer.from('b'), { ttlMs: 10_000 });
    await store.set('c', Buffer.from('c'), { ttlMs: 10_000 });
    await store.get('a');
    await store.set('d', Buffer.from('d'), { ttlMs: 10_000 });
    assert.equal(await store.get('b'), undefined);
    assert.deepEqual(await store.get('a'), Buffer.from('a'));
    assert.equal(store.stats().entries, 3);
    await store.close();
  });

  test('bounded by bytes', async () => {
    const store = new MemoryStore({ maxBytes: 10_000, maxEntryBytes: 2_000 });
    for (let i = 0; i < 50; i++) await store.set(`k${i}`, Buffer.alloc(1000), { ttlMs: 10_000 });
    assert.ok(store.stats().bytes <= 10_000, `bytes ${store.stats().bytes}`);
    assert.ok(store.stats().entries < 10);
    assert.deepEqual(await store.get('k49'), Buffer.alloc(1000));
    await store.close();
  });

  test('a value over maxEntryBytes is refused with a typed error and stores nothing', async () => {
    const store = new MemoryStore({ maxEntryBytes: 100 });
    await assert.rejects(store.set('big', Buffer.alloc(101), { ttlMs: 1000 }), (error: unknown) => {
      return error instanceof PhiCacheError && error.code === 'ERR_VALUE_TOO_LARGE';
    });
    assert.equal(store.stats().entries, 0);
    await store.close();
  });

  test('options are validated at construction', () => {
    assert.throws(() => new MemoryStore({ maxBytes: 0 }), RangeError);
    assert.throws(() => new MemoryStore({ maxEntries: Number.NaN }), RangeError);
    assert.throws(() => new MemoryStore({ maxBytes: 100, maxEntryBytes: 200 }), RangeError);
    assert.throws(() => new MemoryStore({ sweepIntervalMs: -5 }), RangeError);
  });

  test('the stored bytes are a copy: mutating the caller buffer changes nothing', async () => {
    const store = new MemoryStore();
    const value = Buffer.from('original');
    await store.set('k', value, { ttlMs: 10_000 });
    value.fill(0);
    assert.deepEqual(await store.get('k'), Buffer.from('original'));
    await store.close();
  });
});
