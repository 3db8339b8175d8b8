import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessContext, EntryRef, PhiCache } from '../../src/cache.js';
import type { CacheStore } from '../../src/store/cache-store.js';
import { makeFleet } from '../helpers/fleet.js';
import type { RecordingStore } from '../helpers/recording-store.js';

const ref: EntryRef = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };
const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const tags = { patient: 'MRN00482913' };
const REFRESH_MS = 1000;

/** The purges a caller can make, each of which must reach `ref` as written by `ada` with `tags`. */
const purges: Record<string, (cache: PhiCache) => Promise<unknown>> = {
  purgeTag: (cache) => cache.purgeTag(ada, 'patient', 'MRN00482913'),
  purgeScope: (cache) => cache.purgeScope(ada, { user: 'dr.ada' }),
  purgeTenant: (cache) => cache.purgeTenant(ada),
  delete: (cache) => cache.delete(ref, ada),
};

/** A gate a test opens by hand: a factory that waits on it is "slow" for exactly as long as the test wants. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** Every value under phicache's entry names in the store: what someone with write access to Redis could save. */
async function snapshot(store: CacheStore, keys: readonly string[]): Promise<Map<string, Buffer>> {
  const saved = new Map<string, Buffer>();
  for (const key of keys) {
    const value = await store.get(key);
    if (value !== undefined) saved.set(key, Buffer.from(value));
  }
  return saved;
}

function entryKeys(fleet: { store: CacheStore }): string[] {
  const writes = (fleet.store as unknown as { writes: { key: string }[] }).writes;
  return [...new Set(writes.map((w) => w.key).filter((key) => key.startsWith('phc:e:')))];
}

describe('PHI-PURGE-01 purged means gone', () => {
  for (const [name, purge] of Object.entries(purges)) {
    test(`PHI-PURGE-01 a getOrSet fill that started before ${name} does not write the old value back`, async () => {
      const fleet = await makeFleet(1);
      const [cache] = fleet.instances as [PhiCache];
      const slow = gate();
      const called = gate();
      const filling = cache.getOrSet(
        ref,
        ada,
        async () => {
          called.open();
          await slow.wait;
          return { hba1c: 7.9 };
        },
        { tags },
      );
      await called.wait; // the fill read the store, missed, and is waiting on its source
      fleet.clock.now += 5;
      await purge(cache);
      fleet.clock.now += 5;
      slow.open();
      assert.deepEqual(await filling, { hba1c: 7.9 }, 'the caller still gets what its source said');
      assert.equal(await cache.get(ref, ada), undefined, 'but the value read before the purge is not cached');
      const dropped = fleet.audits[0]!.events.filter((e) => e.action === 'set');
      assert.deepEqual(
        dropped.map((e) => e.outcome),
        [{ result: 'dropped', code: 'ERR_ENTRY_PURGED' }],
      );
      await fleet.close();
    });

    test(`PHI-PURGE-01 a ciphertext saved before ${name} and written back into the store is refused, here and on another instance`, async () => {
      const fleet = await makeFleet(2, { purgeRefreshMs: REFRESH_MS });
      const [a, b] = fleet.instances as [PhiCache, PhiCache];
      await a.set(ref, { hba1c: 7.9 }, ada, { tags });
      assert.deepEqual(await b.get(ref, ada), { hba1c: 7.9 }, 'B reads it (and looks up its purges)');
      const saved = await snapshot(fleet.store, entryKeys(fleet));
      assert.equal(saved.size, 1);

      fleet.clock.now += 10;
      await purge(a);
      for (const [key, value] of saved) await fleet.store.set(key, value, { ttlMs: 300_000 });

      assert.equal(await a.get(ref, ada), undefined, 'the instance that purged refuses the replay at once');
      fleet.clock.now += REFRESH_MS;
      for (const [key, value] of saved) await fleet.store.set(key, value, { ttlMs: 300_000 });
      assert.equal(await b.get(ref, ada), undefined, `another instance refuses it within ${REFRESH_MS} ms`);
      const refusals = fleet.audits
        .flatMap((audit) => audit.events)
        .filter((e) => e.action === 'get' && e.outcome.code === 'ERR_ENTRY_PURGED');
      // After purgeTenant the data key is gone as well, which also refuses the replay (ERR_KEY_NOT_FOUND).
      if (name !== 'purgeTenant') assert.equal(refusals.length, 2);

      // A fresh write after the purge is served as usual.
      fleet.clock.now += 10;
      await a.set(ref, { hba1c: 8.4 }, ada, { tags });
      assert.deepEqual(await b.get(ref, ada), { hba1c: 8.4 });
      await fleet.close();
    });
  }

  test('PHI-PURGE-01 a purge marker is authenticated, and the instance that purged does not depend on it', async () => {
    const fleet = await makeFleet(2, { purgeRefreshMs: REFRESH_MS });
    const [a, b] = fleet.instances as [PhiCache, PhiCache];
    await a.set(ref, { hba1c: 7.9 }, ada, { tags });
    const saved = await snapshot(fleet.store, entryKeys(fleet));
    fleet.clock.now += 10;
    await a.purgeTag(ada, 'patient', 'MRN00482913');
    const writes = (fleet.store as unknown as { writes: { key: string }[] }).writes;
    const markerKeys = [...new Set(writes.map((w) => w.key).filter((key) => key.startsWith('phc:m:')))];
    assert.equal(markerKeys.length, 1, 'one marker, under an HMAC name');
    const markerKey = markerKeys[0]!;
    const marker = JSON.parse((await fleet.store.get(markerKey))!.toString()) as { at: number; mac: string };
    assert.deepEqual(Object.keys(marker).sort(), ['at', 'mac']);
    // Remembered for at least the longest class cap of the default policy (rate-limit-counter, 3,600 s).
    assert.ok(
      (await fleet.store.ttl(markerKey))! >= 3_600_000,
      'the marker outlives every entry it can refuse',
    );

    // Deleted outright: the instance that purged still refuses the replay.
    await fleet.store.delete(markerKey);
    for (const [key, value] of saved) await fleet.store.set(key, value, { ttlMs: 300_000 });
    assert.equal(await a.get(ref, ada), undefined, 'A remembers its own purge whatever the store says');

    // Moved forward without the name key, the marker would make every instance refuse fresh entries: not believed.
    fleet.clock.now += 10;
    await a.set(ref, { hba1c: 8.4 }, ada, { tags });
    const forged = { at: fleet.clock.now + 3_600_000, mac: marker.mac };
    await fleet.store.set(markerKey, Buffer.from(JSON.stringify(forged)), { ttlMs: 600_000 });
    fleet.clock.now += REFRESH_MS;
    assert.deepEqual(await b.get(ref, ada), { hba1c: 8.4 }, 'a marker whose MAC does not match is ignored');

    // The genuine marker, put back, is believed again: B refuses the old ciphertext.
    await fleet.store.set(markerKey, Buffer.from(JSON.stringify(marker)), { ttlMs: 600_000 });
    for (const [key, value] of saved) await fleet.store.set(key, value, { ttlMs: 300_000 });
    fleet.clock.now += REFRESH_MS;
    assert.equal(await b.get(ref, ada), undefined);
    await fleet.close();
  });

  test('PHI-PURGE-01 an entry found damaged is deleted only if it was not overwritten in between', async () => {
    const fleet = await makeFleet(1);
    const [cache] = fleet.instances as [PhiCache];
    await cache.set(ref, { hba1c: 7.9 }, ada);
    const [key] = entryKeys(fleet) as [string];
    await fleet.store.set(key, Buffer.from('not an envelope'), { ttlMs: 300_000 });
    // A writer that lands between the damaged read and the delete that follows it (whichever read the cache uses).
    const store = fleet.store as RecordingStore;
    const reads = { get: store.get.bind(store), getEntry: store.getEntry.bind(store) };
    let raced = false;
    const race = async (k: string) => {
      if (!raced && k === key) {
        raced = true;
        fleet.clock.now += 1;
        await cache.set(ref, { hba1c: 8.4 }, ada);
      }
    };
    store.get = async (k: string) => {
      const value = await reads.get(k);
      await race(k);
      return value;
    };
    store.getEntry = async (k: string) => {
      const entry = await reads.getEntry(k);
      await race(k);
      return entry;
    };
    assert.equal(await cache.get(ref, ada), undefined, 'the damaged value is a miss');
    Object.assign(store, reads);
    assert.deepEqual(await cache.get(ref, ada), { hba1c: 8.4 }, 'the newer entry survived');
    await fleet.close();
  });
});
