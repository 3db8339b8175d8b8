import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AccessContext, EntryRef, PhiCache } from '../../src/cache.js';
import type { EncryptionContext, KeyProvider } from '../../src/keys/key-provider.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { makeFleet } from '../helpers/fleet.js';

const ref = (id: string): EntryRef => ({ class: 'encrypted-phi', resource: 'lab-summary', id });
const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const REFRESH_MS = 1000;

function dekRecords(store: unknown): string[] {
  const writes = (store as { writes: { key: string }[] }).writes;
  return [...new Set(writes.map((w) => w.key).filter((key) => key.startsWith('phc:k:')))];
}

describe('PHI-PURGE-01 crypto-shredding reaches every instance', () => {
  test('PHI-PURGE-01 after purgeTenant on A, B stops sealing under the shredded key within purgeRefreshMs', async () => {
    const fleet = await makeFleet(2, { purgeRefreshMs: REFRESH_MS });
    const [a, b] = fleet.instances as [PhiCache, PhiCache];
    await b.set(ref('MRN1'), { hba1c: 7.9 }, ada);
    const shreddedKey = fleet.audits[1]!.events.find((e) => e.action === 'set')!.dek;
    assert.ok(shreddedKey);

    await a.purgeTenant(ada);
    fleet.clock.now += REFRESH_MS;
    await b.set(ref('MRN2'), { hba1c: 8.1 }, ada);
    const sets = fleet.audits[1]!.events.filter((e) => e.action === 'set');
    assert.notEqual(sets.at(-1)!.dek, shreddedKey, 'B sealed under a new data key');
    // Every instance can read what B wrote after the shred: its key record exists (it was not a shredded one).
    assert.deepEqual(await a.get(ref('MRN2'), ada), { hba1c: 8.1 });
    assert.equal(await b.get(ref('MRN1'), ada), undefined, 'what was written before the shred is gone');
    await fleet.close();
  });

  test('PHI-PURGE-01 a data key being made while its tenant is shredded is discarded, and its record does not survive', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let hold = false;
    let entered!: () => void;
    const generating = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const slowKeys = (inner: KeyProvider): KeyProvider => ({
      name: inner.name,
      currentKid: () => inner.currentKid(),
      nameSecret: () => inner.nameSecret(),
      unwrapDataKey: (key, context) => inner.unwrapDataKey(key, context),
      rewrapDataKey: (key, context) => inner.rewrapDataKey(key, context),
      describeKek: () => inner.describeKek(),
      generateDataKey: async (context: EncryptionContext) => {
        if (hold) {
          entered();
          await held;
        }
        return inner.generateDataKey(context);
      },
    });
    const home = await mkdtemp(join(tmpdir(), 'phicache-shred-'));
    const fleet = await makeFleet(1, { keys: slowKeys(await LocalKeyring.open({ home, env: {} })) });
    const [cache] = fleet.instances as [PhiCache];
    hold = true;
    const writing = cache.set(ref('MRN1'), { hba1c: 7.9 }, ada);
    await generating; // the write is making the tenant's data key
    await cache.purgeTenant(ada);
    release();
    const receipt = await writing;
    assert.equal(receipt.stored, false, 'the write lost to the shred');
    const store = fleet.store;
    for (const key of dekRecords(store))
      assert.equal(await store.get(key), undefined, 'no data key record survives');
    hold = false;
    assert.equal(await cache.get(ref('MRN1'), ada), undefined);
    await cache.set(ref('MRN1'), { hba1c: 8.0 }, ada);
    assert.deepEqual(
      await cache.get(ref('MRN1'), ada),
      { hba1c: 8.0 },
      'the tenant works again with a new key',
    );
    await fleet.close();
  });
});
