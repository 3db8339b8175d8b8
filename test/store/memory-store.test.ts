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
    // The entries expire when the test moves the clock, not while a loaded machine is still writing them.
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, sweepIntervalMs: 10 });
    for (let i = 0; i < 100; i++) await store.set(`k${i}`, Buffer.alloc(100), { ttlMs: 30 });
    assert.equal(store.stats().entries, 100);
    now += 30;
    // Nothing reads the entries: only the sweep timer can free them. Wait for that, not for a time it should take.
    while (store.stats().entries > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(store.stats(), { entries: 0, keyRecords: 0, bytes: 0, heapSlots: 0 });
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

  test('the expiry heap holds one slot per live key, however many overwrites', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, maxEntries: 100, sweepIntervalMs: 60_000 });
    const value = Buffer.alloc(16);
    for (let i = 0; i < 300_000; i++) {
      now += 1;
      await store.set(`k${i % 10}`, value, { ttlMs: 3_600_000 });
    }
    // The old heap kept a slot per write until its TTL passed: 300,000 here.
    assert.equal(store.stats().entries, 10);
    assert.equal(store.stats().heapSlots, 10);
    await store.close();
  });

  test('the expiry heap drops the slots of deleted, evicted and purged keys', async () => {
    const store = new MemoryStore({ maxEntries: 50, sweepIntervalMs: 60_000 });
    for (let i = 0; i < 10_000; i++) {
      await store.set(`k${i}`, Buffer.alloc(8), { ttlMs: 3_600_000, tags: i % 2 === 0 ? ['even'] : [] });
    }
    assert.equal(store.stats().heapSlots, 50, 'evicted keys leave the heap');
    await store.delete('k9999');
    assert.equal(store.stats().heapSlots, 49, 'a deleted key leaves the heap');
    assert.equal(await store.deleteByTag('even'), 25);
    assert.equal(store.stats().heapSlots, 24, 'purged keys leave the heap');
    await store.close();
  });

  test('an overwrite with a shorter ttl expires at the new time, one with a longer ttl at the new time too', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, sweepIntervalMs: 60_000 });
    await store.set('shorter', Buffer.from('a'), { ttlMs: 10_000 });
    await store.set('longer', Buffer.from('b'), { ttlMs: 1_000 });
    await store.set('shorter', Buffer.from('a2'), { ttlMs: 1_000 });
    await store.set('longer', Buffer.from('b2'), { ttlMs: 10_000 });
    now += 1_000;
    assert.equal(store.sweep(), 1);
    assert.equal(await store.get('shorter'), undefined);
    assert.deepEqual(await store.get('longer'), Buffer.from('b2'));
    now += 9_000;
    assert.equal(store.sweep(), 1);
    assert.deepEqual(store.stats(), { entries: 0, keyRecords: 0, bytes: 0, heapSlots: 0 });
    await store.close();
  });

  test('the sweep frees entries in expiry order under random overwrites and deletes', async () => {
    let now = 0;
    const store = new MemoryStore({ clock: () => now, sweepIntervalMs: 60_000 });
    const expected = new Map<string, number>();
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 5_000; i++) {
      const key = `k${random(300)}`;
      if (random(5) === 0) {
        await store.delete(key);
        expected.delete(key);
      } else {
        const ttlMs = 1 + random(10_000);
        await store.set(key, Buffer.from(key), { ttlMs });
        expected.set(key, now + ttlMs);
      }
    }
    for (now = 0; now <= 10_000; now += 250) {
      store.sweep();
      const live = [...expected].filter(([, at]) => at > now).length;
      assert.equal(store.stats().entries, live, `at ${now}`);
      assert.equal(store.stats().heapSlots, live, `at ${now}`);
    }
    await store.close();
  });

  test('key records are never evicted, however far the store is filled past its capacity', async () => {
    const store = new MemoryStore({ maxEntries: 100, sweepIntervalMs: 60_000 });
    const records = Array.from({ length: 20 }, (_, i) => `phc:k:rec${i}`);
    for (const [i, key] of records.entries()) {
      await store.set(key, Buffer.from(`wrapped-${i}`), { ttlMs: 3_600_000, keyRecord: true });
    }
    for (let i = 0; i < 1_000; i++) await store.set(`phc:e:${i}`, Buffer.alloc(64), { ttlMs: 3_600_000 });
    // Entries were evicted for room, key records were not, though never read since they were written.
    assert.equal(store.stats().entries, 100);
    assert.equal(store.stats().keyRecords, 20);
    for (const [i, key] of records.entries())
      assert.deepEqual(await store.get(key), Buffer.from(`wrapped-${i}`));
    await store.close();
  });

  test('key records count against maxBytes: entries are evicted to make room for them', async () => {
    const store = new MemoryStore({ maxBytes: 10_000, maxEntryBytes: 2_000, sweepIntervalMs: 60_000 });
    for (let i = 0; i < 9; i++) await store.set(`e${i}`, Buffer.alloc(1_000), { ttlMs: 3_600_000 });
    for (let i = 0; i < 5; i++) {
      await store.set(`r${i}`, Buffer.alloc(1_000), { ttlMs: 3_600_000, keyRecord: true });
    }
    assert.ok(store.stats().bytes <= 10_000, `bytes ${store.stats().bytes}`);
    assert.equal(store.stats().keyRecords, 5);
    for (let i = 0; i < 5; i++) assert.ok((await store.get(`r${i}`)) !== undefined);
    await store.close();
  });

  test('a key record past maxKeyRecords is refused with a typed error and evicts no other', async () => {
    const store = new MemoryStore({ maxKeyRecords: 3, sweepIntervalMs: 60_000 });
    for (let i = 0; i < 3; i++)
      await store.set(`r${i}`, Buffer.from(`${i}`), { ttlMs: 60_000, keyRecord: true });
    await assert.rejects(
      store.set('r3', Buffer.from('3'), { ttlMs: 60_000, keyRecord: true }),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_STORE_UNAVAILABLE',
    );
    await assert.rejects(
      store.add('r3', Buffer.from('3'), { ttlMs: 60_000, keyRecord: true }),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_STORE_UNAVAILABLE',
    );
    assert.equal(await store.get('r3'), undefined);
    for (let i = 0; i < 3; i++) assert.deepEqual(await store.get(`r${i}`), Buffer.from(`${i}`));
    // Replacing a held record (a pointer moved to a fresh key) needs no new room.
    await store.set('r0', Buffer.from('0b'), { ttlMs: 60_000, keyRecord: true });
    assert.deepEqual(await store.get('r0'), Buffer.from('0b'));
    // Entries are still accepted.
    await store.set('entry', Buffer.from('e'), { ttlMs: 60_000 });
    assert.deepEqual(await store.get('entry'), Buffer.from('e'));
    await store.close();
  });

  test('key records leave by ttl, and make room for new ones when they do', async () => {
    let now = 1_000_000;
    const store = new MemoryStore({ clock: () => now, maxKeyRecords: 2, sweepIntervalMs: 60_000 });
    await store.set('r1', Buffer.from('1'), { ttlMs: 1_000, keyRecord: true });
    await store.set('r2', Buffer.from('2'), { ttlMs: 5_000, keyRecord: true });
    now += 1_000;
    assert.equal(await store.get('r1'), undefined);
    assert.equal(await store.ttl('r2'), 4_000);
    await store.set('r3', Buffer.from('3'), { ttlMs: 5_000, keyRecord: true });
    now += 4_000;
    assert.equal(store.sweep(), 1);
    assert.equal(await store.get('r2'), undefined);
    assert.deepEqual(store.stats().keyRecords, 1);
    await store.close();
  });

  test('deleteByTag and delete remove key records (crypto-shredding a tenant)', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 60_000 });
    await store.set('r1', Buffer.from('1'), { ttlMs: 60_000, tags: ['keys-a'], keyRecord: true });
    await store.set('p1', Buffer.from('p'), { ttlMs: 60_000, tags: ['keys-a'], keyRecord: true });
    await store.set('r2', Buffer.from('2'), { ttlMs: 60_000, tags: ['keys-b'], keyRecord: true });
    await store.set('e1', Buffer.from('e'), { ttlMs: 60_000, tags: ['keys-a'] });
    assert.equal(await store.deleteByTag('keys-a'), 3);
    assert.equal(await store.get('r1'), undefined);
    assert.equal(await store.get('p1'), undefined);
    assert.equal(await store.get('e1'), undefined);
    assert.equal(await store.delete('r2'), true);
    assert.deepEqual(store.stats(), { entries: 0, keyRecords: 0, bytes: 0, heapSlots: 0 });
    await store.close();
  });

  test('an entry overwritten as a key record (and back) moves between the two, counted once', async () => {
    const store = new MemoryStore({ maxEntries: 2, sweepIntervalMs: 60_000 });
    await store.set('k', Buffer.from('entry'), { ttlMs: 60_000 });
    await store.set('k', Buffer.from('record'), { ttlMs: 60_000, keyRecord: true });
    assert.deepEqual(store.stats().entries, 0);
    assert.deepEqual(store.stats().keyRecords, 1);
    for (let i = 0; i < 10; i++) await store.set(`e${i}`, Buffer.from('x'), { ttlMs: 60_000 });
    assert.deepEqual(await store.get('k'), Buffer.from('record'));
    await store.set('k', Buffer.from('entry again'), { ttlMs: 60_000 });
    assert.deepEqual(store.stats().keyRecords, 0);
    assert.deepEqual(store.stats().entries, 2);
    assert.equal(store.stats().heapSlots, 2);
    await store.close();
  });

  test('maxKeyRecords is validated at construction', () => {
    assert.throws(() => new MemoryStore({ maxKeyRecords: 0 }), RangeError);
    assert.throws(() => new MemoryStore({ maxKeyRecords: 1.5 }), RangeError);
  });
});
