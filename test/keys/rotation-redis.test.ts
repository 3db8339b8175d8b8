import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessContext, EntryRef, PhiCache } from '../../src/cache.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { type RedisTopology, sharedRedis } from '../harness/redis.js';
import { makeFleet } from '../helpers/fleet.js';
import { BINDING_NAMES, BINDINGS, connectionOptions } from '../store/redis/bindings.js';

const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const bob: AccessContext = {
  tenant: 'mercy-west',
  user: 'dr.bob',
  principal: 'dr.bob',
  purpose: 'treatment',
};
const ref = (id: string): EntryRef => ({ class: 'encrypted-phi', resource: 'lab-summary', id });
const admin = { principal: 'ops:key-rotation' };
const REFRESH_MS = 1000;

for (const topology of ['plain', 'cluster'] as RedisTopology[]) {
  for (const binding of BINDING_NAMES) {
    describe(`PHI-ROTATE-01 KEK rotation on Redis (${topology}, ${binding})`, () => {
      test('one instance rotates, the other follows within the bound; old entries read on both, new writes audit the new version, and after rewrap the old version is needed by nothing', async () => {
        const commands = await BINDINGS[binding](connectionOptions(await sharedRedis(topology)));
        const fleet = await makeFleet(2, {
          store: new RedisStore(commands, { commandTimeoutMs: 2_000 }),
          keyStateRefreshMs: REFRESH_MS,
        });
        const [a, b] = fleet.instances as [PhiCache, PhiCache];
        const [auditA, auditB] = fleet.audits;
        const { clock } = fleet;
        try {
          for (let i = 0; i < 6; i += 1) {
            await a.set(ref(`before-${i}`), { i }, i % 2 === 0 ? ada : bob);
          }
          const v1 = auditA!.events.find((e) => e.action === 'set')!.kid!;

          const { from, to } = await a.rotation.rotate(admin, async (ms) => {
            // While the new version is pending, the other instance keeps reading and writing under v1.
            clock.now += ms;
            await b.set(ref('during'), { during: true }, ada);
            assert.equal(auditB!.events.at(-1)!.kid, v1, 'a pending version seals nothing');
          });
          assert.equal(from, v1);

          // Dual-read: entries sealed before the rotation open on both instances.
          for (let i = 0; i < 6; i += 1) {
            const ctx = i % 2 === 0 ? ada : bob;
            assert.deepEqual(await a.get(ref(`before-${i}`), ctx), { i });
            assert.deepEqual(await b.get(ref(`before-${i}`), ctx), { i });
          }

          // A writes under the new version at once; B within the bound (its next write after refreshMs).
          await a.set(ref('after-a'), { a: 1 }, ada);
          assert.equal(auditA!.events.filter((e) => e.action === 'set').at(-1)!.kid, to);
          clock.now += REFRESH_MS;
          await b.set(ref('after-b'), { b: 1 }, bob);
          assert.equal(auditB!.events.filter((e) => e.action === 'set').at(-1)!.kid, to);
          assert.deepEqual(await a.get(ref('after-b'), bob), { b: 1 });
          assert.deepEqual(await b.get(ref('after-a'), ada), { a: 1 });

          // Rewrap: every data key record moves to the new version; no entry is rewritten.
          const rewrap = await b.rotation.rewrap(admin);
          assert.equal(rewrap.failed, 0);
          assert.ok(rewrap.rewrapped >= 2, 'the records of both tenants were rewrapped');
          const listing = await a.rotation.list();
          assert.equal(listing.dekRecords[from] ?? 0, 0);

          // Retire v1: from then on neither instance unwraps anything under it, and everything still reads.
          clock.now += a.rotation.boundMs;
          await a.rotation.retire(admin, from);
          clock.now += REFRESH_MS;
          assert.equal((await b.rotation.states()).keks.find((k) => k.kid === from)!.state, 'retired');
          for (const instance of [a, b]) {
            for (let i = 0; i < 6; i += 1) {
              const ctx = i % 2 === 0 ? ada : bob;
              assert.deepEqual(
                await instance.get(ref(`before-${i}`), ctx),
                { i },
                'read without the old version',
              );
            }
            assert.deepEqual(await instance.get(ref('during'), ada), { during: true });
          }
          const misses = [...auditA!.events, ...auditB!.events].filter((e) => e.outcome.result === 'miss');
          assert.deepEqual(misses, [], 'no read failed at any point of the rotation');
        } finally {
          await fleet.close();
        }
      });
    });
  }
}

for (const topology of ['plain', 'cluster'] as RedisTopology[]) {
  describe(`PHI-ROTATE-02 two instances under load during a rotation (${topology})`, () => {
    test('readers on both instances never miss an entry that exists while one rotates, rewraps, re-encrypts and retires', async () => {
      const commands = await BINDINGS['node-redis'](connectionOptions(await sharedRedis(topology)));
      const fleet = await makeFleet(2, {
        store: new RedisStore(commands, { commandTimeoutMs: 2_000 }),
        keyStateRefreshMs: 50,
        // Real time: the rotation sleeps for the fleet bound, and a clock moved only by the readers could lag it.
        clock: Date.now,
      });
      const [a, b] = fleet.instances as [PhiCache, PhiCache];
      let stop = false;
      let workers: Promise<void>[] = [];
      try {
        const ids = Array.from({ length: 40 }, (_, i) => `load-${i}`);
        for (const id of ids) await a.set(ref(id), { id, version: 0 }, ada);
        const versions = new Map(ids.map((id) => [id, 0]));
        const failures: string[] = [];
        let reads = 0;
        const worker = async (instance: PhiCache, n: number) => {
          let i = n;
          while (!stop) {
            const id = ids[i % ids.length]!;
            i += 7;
            if (i % 5 === 0) {
              const version = versions.get(id)! + 1;
              await instance.set(ref(id), { id, version }, ada);
              versions.set(id, version);
            } else {
              const expected = versions.get(id)!;
              const value = await instance.get<{ id: string; version: number }>(ref(id), ada);
              reads += 1;
              if (value?.id !== id || value.version < expected - 1) {
                failures.push(`${id}: ${JSON.stringify(value)} (expected version ${expected})`);
              }
            }
          }
        };
        workers = [worker(a, 0), worker(a, 3), worker(b, 1), worker(b, 5)];
        const { from } = await a.rotation.rotate(admin);
        await a.rotation.rewrap(admin);
        await a.rotation.reencrypt(admin);
        await new Promise((resolve) => setTimeout(resolve, a.rotation.boundMs));
        await a.rotation.retire(admin, from);
        await new Promise((resolve) => setTimeout(resolve, 200));
        stop = true;
        await Promise.all(workers);
        assert.ok(reads > 100, `the readers ran throughout (${reads} reads)`);
        assert.deepEqual(failures, [], 'no reader missed or saw a wrong value');
      } finally {
        // The readers stop before the instances close, so a failure of the rotation is the error reported.
        stop = true;
        await Promise.allSettled(workers);
        await fleet.close();
      }
    });
  });
}
