import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EntryRef } from '../../src/cache.js';
import { PhiCacheError } from '../../src/errors.js';
import { type DrillCache, Workload } from './workload.js';

/** A stand-in cache that answers every read with what `read` makes of the last value written there. */
function fakeCache(read: (id: string, last: unknown) => unknown, delayMs = 0): DrillCache {
  const values = new Map<string, unknown>();
  const receipt = { stored: true, rule: 'r', ttlMs: 1, key: 'k', strippedFields: 0 };
  return {
    set: (async (ref: EntryRef, value: unknown) => {
      values.set(ref.id, value);
      return receipt;
    }) as DrillCache['set'],
    get: (async (ref: EntryRef) => {
      if (delayMs > 0) await sleep(delayMs);
      return read(ref.id, values.get(ref.id));
    }) as DrillCache['get'],
  };
}

const run = async (cache: DrillCache, bounds = { get: 1_000, set: 1_000 }) => {
  const workload = new Workload(cache, bounds, { workers: 2, entriesPerWorker: 2 });
  await sleep(60);
  return workload.stop();
};

test('the drill checks can fail: a value of another entry is reported as wrong', async () => {
  const report = await run(fakeCache((id, last) => (id === 'w1-e1' ? { entry: 'w0-e0', version: 1 } : last)));
  assert.ok(report.wrongValues.some((line) => line.startsWith('w1-e1 read {"entry":"w0-e0"')));
});

test('the drill checks can fail: a version never written, or garbage, is reported as wrong', async () => {
  const future = await run(fakeCache((_id, last) => ({ ...(last as object), version: 10_000 })));
  assert.ok(future.wrongValues.length > 0);
  const garbage = await run(fakeCache(() => 'garbage'));
  assert.ok(garbage.wrongValues.length > 0);
  const fine = await run(fakeCache((_id, last) => last));
  assert.deepEqual(fine.wrongValues, []);
  assert.ok(fine.hits > 0 && fine.misses === 0);
});

test('the drill checks can fail: a call over its bound, and a call that throws, are reported', async () => {
  const slow = await run(
    fakeCache((_id, last) => last, 30),
    { get: 10, set: 1_000 },
  );
  assert.ok(slow.overBound.some((line) => /^get w\d-e\d took \d+ ms \(bound 10 ms\)$/.test(line)));
  const throwing = await run(
    fakeCache(() => {
      throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', 'no audit');
    }),
  );
  assert.ok(throwing.errors.some((line) => line.includes('ERR_AUDIT_UNAVAILABLE')));
});
