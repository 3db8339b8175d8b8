import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccessContext, EntryRef, PhiCache } from '../../src/cache.js';
import { PhiCacheError } from '../../src/errors.js';
import { makeFleet } from '../helpers/fleet.js';

const ref: EntryRef = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN1' };
const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };

describe('callers are never stuck, and errors are true', () => {
  test('a factory that never settles fails every waiting caller with ERR_FACTORY_TIMEOUT, and the entry is free again', async () => {
    const fleet = await makeFleet(1, { factoryTimeoutMs: 50 });
    const [cache] = fleet.instances as [PhiCache];
    let settle!: (value: { hba1c: number }) => void;
    const stuck = () =>
      new Promise<{ hba1c: number }>((resolve) => {
        settle = resolve;
      });
    const callers = Array.from({ length: 5 }, () => cache.getOrSet(ref, ada, stuck));
    const outcomes = await Promise.allSettled(callers);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      const error = (outcome as PromiseRejectedResult).reason as PhiCacheError;
      assert.ok(error instanceof PhiCacheError);
      assert.equal(error.code, 'ERR_FACTORY_TIMEOUT');
    }
    const failed = fleet.audits[0]!.events.filter(
      (e) => e.action === 'get' && e.outcome.code === 'ERR_FACTORY_TIMEOUT',
    );
    assert.equal(failed.length, 5, 'every caller is audited with the timeout');

    // The key is free: the next caller runs its own factory.
    assert.deepEqual(await cache.getOrSet(ref, ada, () => ({ hba1c: 8.1 })), { hba1c: 8.1 });
    // The stuck factory's late answer is not cached over the newer one.
    settle({ hba1c: 7.9 });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(await cache.get(ref, ada), { hba1c: 8.1 });
    await fleet.close();
  });

  test('callers that shared a factory that threw are audited with ERR_FACTORY_FAILED and get its error', async () => {
    const fleet = await makeFleet(1);
    const [cache] = fleet.instances as [PhiCache];
    const failure = new Error('EHR timeout');
    const failing = async () => {
      await new Promise((resolve) => setImmediate(resolve));
      throw failure;
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 3 }, () => cache.getOrSet(ref, ada, failing)),
    );
    for (const outcome of outcomes) assert.equal((outcome as PromiseRejectedResult).reason, failure);
    const codes = fleet.audits[0]!.events.filter((e) => e.action === 'get').map((e) => e.outcome.code);
    assert.deepEqual(codes, [undefined, 'ERR_FACTORY_FAILED', 'ERR_FACTORY_FAILED']);
    assert.ok(!codes.includes('ERR_STORE_UNAVAILABLE'));
    await fleet.close();
  });

  test('referenceHash after close throws like every other method', async () => {
    const fleet = await makeFleet(1);
    const [cache] = fleet.instances as [PhiCache];
    assert.match(cache.referenceHash(ref, 'st-marys'), /^hmac-sha256:/);
    await cache.close();
    assert.throws(() => cache.referenceHash(ref, 'st-marys'), TypeError);
    await fleet.close();
  });
});
