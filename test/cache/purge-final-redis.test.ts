import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessContext, EntryRef, PhiCache } from '../../src/cache.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { type RedisTopology, sharedRedis } from '../harness/redis.js';
import { makeFleet } from '../helpers/fleet.js';
import { RecordingStore } from '../helpers/recording-store.js';
import { BINDING_NAMES, BINDINGS, connectionOptions } from '../store/redis/bindings.js';

const ref: EntryRef = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };
const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const REFRESH_MS = 1000;

for (const topology of ['plain', 'cluster'] as RedisTopology[]) {
  for (const binding of BINDING_NAMES) {
    describe(`PHI-PURGE-01 two instances on one Redis (${topology}, ${binding})`, () => {
      test('PHI-PURGE-01 a ciphertext written back into Redis after a logout is refused by both instances; a slow fill does not land', async () => {
        const commands = await BINDINGS[binding](connectionOptions(await sharedRedis(topology)));
        const store = new RecordingStore(new RedisStore(commands, { commandTimeoutMs: 2_000 }));
        const fleet = await makeFleet(2, { store, purgeRefreshMs: REFRESH_MS });
        const [a, b] = fleet.instances as [PhiCache, PhiCache];
        try {
          await a.set(ref, { hba1c: 7.9 }, ada, { tags: { patient: 'MRN00482913' } });
          assert.deepEqual(await b.get(ref, ada), { hba1c: 7.9 });
          const [entryKey] = [
            ...new Set(store.writes.map((w) => w.key).filter((k) => k.startsWith('phc:e:'))),
          ];
          const saved = await store.get(entryKey!);
          assert.ok(saved);

          // B starts a fill of the same entry, slowed by its source, while A logs the user out.
          await a.delete(ref, ada);
          let release!: () => void;
          const slow = new Promise<void>((resolve) => {
            release = resolve;
          });
          let entered!: () => void;
          const called = new Promise<void>((resolve) => {
            entered = resolve;
          });
          const fill = b.getOrSet(ref, ada, async () => {
            entered();
            await slow;
            return { hba1c: 7.9 };
          });
          await called; // the fill read the store, missed, and is waiting on its source
          fleet.clock.now += 10;
          await a.purgeScope(ada, { user: 'dr.ada' });
          fleet.clock.now += REFRESH_MS;
          release();
          await fill;
          assert.equal(await a.get(ref, ada), undefined, 'the slow fill did not land after the logout');

          await store.set(entryKey!, saved, { ttlMs: 300_000 });
          assert.equal(await a.get(ref, ada), undefined, 'A refuses the written-back ciphertext');
          await store.set(entryKey!, saved, { ttlMs: 300_000 });
          assert.equal(await b.get(ref, ada), undefined, 'B refuses it too');
        } finally {
          await fleet.close();
        }
      });

      test('PHI-PURGE-01 a frame whose tag fingerprints were edited (to steer a purge past the entry) is tamper', async () => {
        const commands = await BINDINGS[binding](connectionOptions(await sharedRedis(topology)));
        const store = new RecordingStore(new RedisStore(commands, { commandTimeoutMs: 2_000 }));
        const fleet = await makeFleet(1, { store });
        const [cache] = fleet.instances as [PhiCache];
        try {
          const tampered: string[] = [];
          cache.on('tamper', ({ code }) => tampered.push(code));
          await cache.set(ref, { hba1c: 7.9 }, ada, { tags: { patient: 'MRN00482913' } });
          const [entryKey] = [
            ...new Set(store.writes.map((w) => w.key).filter((k) => k.startsWith('phc:e:'))),
          ];
          const framed = (await commands.get(entryKey!))!;
          const edited = Buffer.from(framed);
          edited[3]! ^= 0xff; // the first tag fingerprint
          await commands.set(entryKey!, edited, 300_000, false);
          assert.equal(await cache.get(ref, ada), undefined);
          assert.deepEqual(tampered, ['ERR_ENVELOPE_AUTH']);
        } finally {
          await fleet.close();
        }
      });
    });
  }
}
