import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { parsePolicy } from '../../src/policy/load.js';
import { clinician, makeCache } from '../helpers/make-cache.js';

const phi = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN1' };
const session = { class: 'session-token', resource: 'session', id: 's1' };
const sessionCtx = { tenant: 'st-marys', session: 's1' };
const hasCode = (code: string) => (error: unknown) => error instanceof PhiCacheError && error.code === code;

describe('failure modes: key service, store and audit sink down', () => {
  test('key service down, closed class: a write that needs a new data key throws ERR_KEY_SERVICE_UNAVAILABLE, audited', async () => {
    const t = await makeCache();
    t.faults.keys.down = true;
    await assert.rejects(t.cache.set(phi, { a: 1 }, clinician), hasCode('ERR_KEY_SERVICE_UNAVAILABLE'));
    assert.equal(t.memory.stats().entries, 0);
    assert.deepEqual(t.audit.events.at(-1)?.outcome, {
      result: 'error',
      code: 'ERR_KEY_SERVICE_UNAVAILABLE',
    });
    await t.cache.close();
  });

  test('key service down, closed class: a read that needs an unwrap throws; one with a cached key does not', async () => {
    const t = await makeCache({ dekCache: { maxAgeMs: 1000 } });
    await t.cache.set(phi, { a: 1 }, clinician);
    t.faults.keys.down = true;
    assert.deepEqual(
      await t.cache.get(phi, clinician),
      { a: 1 },
      'the unwrapped key is still within its age bound',
    );
    t.clock.now += 1000;
    await assert.rejects(t.cache.get(phi, clinician), hasCode('ERR_KEY_SERVICE_UNAVAILABLE'));
    assert.deepEqual(t.audit.events.at(-1)?.outcome, {
      result: 'error',
      code: 'ERR_KEY_SERVICE_UNAVAILABLE',
    });
    await t.cache.close();
  });

  test('key service down, miss class: writes are dropped and reads miss, with an event', async () => {
    const t = await makeCache();
    const events: string[] = [];
    t.cache.on('key-service-error', (event) => events.push(event.operation));
    t.faults.keys.down = true;
    const receipt = await t.cache.set(session, { sid: 's1' }, sessionCtx);
    assert.equal(receipt.stored, false);
    assert.equal(t.memory.stats().entries, 0);
    assert.deepEqual(t.audit.events.at(-1)?.outcome, {
      result: 'dropped',
      code: 'ERR_KEY_SERVICE_UNAVAILABLE',
    });
    assert.deepEqual(events, ['set']);
    await t.cache.close();
  });

  test('key service down: a read-only class reads with keys it holds, a miss class misses, and both drop writes', async () => {
    const policy = parsePolicy(
      `version: 1
classes:
  chart: { description: c, phi: true, cacheable: true, maxTtlSeconds: 300, scope: [tenant, user], failureMode: read-only }
  notes: { description: n, phi: true, cacheable: true, maxTtlSeconds: 300, scope: [tenant, user], failureMode: miss }
`,
      'modes.yaml',
    );
    const t = await makeCache({ policy });
    const chart = { class: 'chart', resource: 'chart', id: 'MRN1' };
    const notes = { class: 'notes', resource: 'notes', id: 'MRN1' };
    await t.cache.set(chart, { a: 1 }, clinician);
    await t.cache.set(notes, { n: 1 }, clinician);
    // The outage shows on the first call that needs the key service: a write for a tenant without a key yet.
    t.faults.keys.down = true;
    const other = { ...clinician, tenant: 'county-general' };
    assert.equal((await t.cache.set(chart, { a: 2 }, other)).stored, false);
    // Both classes hold their unwrapped keys; only read-only may use them while the key service is down.
    assert.deepEqual(await t.cache.get(chart, clinician), { a: 1 });
    assert.equal(await t.cache.get(notes, clinician), undefined);
    assert.deepEqual(t.audit.events.at(-1)?.outcome, { result: 'miss', code: 'ERR_KEY_SERVICE_UNAVAILABLE' });
    assert.equal((await t.cache.set(chart, { a: 3 }, clinician)).stored, false, 'writes are dropped');
    // After the cool-down the next call tries the key service again, and recovers when it answers.
    t.faults.keys.down = false;
    t.clock.now += 5000;
    assert.deepEqual(await t.cache.get(notes, clinician), { n: 1 });
    await t.cache.close();
  });

  test('a key service that never answers fails within keyServiceTimeoutMs', async () => {
    const t = await makeCache({ keyServiceTimeoutMs: 100 });
    t.faults.keys.hang = true;
    // The monotonic clock: the cache's own clock is a fixed test clock, and the wall clock may step.
    const started = performance.now();
    await assert.rejects(t.cache.set(phi, { a: 1 }, clinician), hasCode('ERR_KEY_SERVICE_UNAVAILABLE'));
    const elapsed = performance.now() - started;
    assert.ok(elapsed < 2000, `took ${Math.round(elapsed)} ms`);
    await t.cache.close();
  });

  test('store down: reads miss and writes are dropped, with typed events, for every mode', async () => {
    const t = await makeCache();
    const events: string[] = [];
    t.cache.on('store-error', (event) => events.push(event.operation));
    await t.cache.set(phi, { a: 1 }, clinician);
    t.faults.store.down = true;
    assert.equal(await t.cache.get(phi, clinician), undefined);
    assert.equal((await t.cache.set(phi, { a: 2 }, clinician)).stored, false);
    assert.equal(
      (await t.cache.set({ ...phi, id: 'other-tenant' }, { a: 2 }, { ...clinician, tenant: 'x' })).stored,
      false,
    );
    assert.deepEqual(events, ['get', 'set', 'set']);
    await assert.rejects(t.cache.purgeTag(clinician, 'patient', 'MRN1'), hasCode('ERR_STORE_UNAVAILABLE'));
    t.faults.store.down = false;
    assert.deepEqual(await t.cache.get(phi, clinician), { a: 1 }, 'the dropped write changed nothing');
    await t.cache.close();
  });

  test('audit sink down: PHI writes and reads fail with ERR_AUDIT_UNAVAILABLE, store nothing and return no value', async () => {
    const t = await makeCache();
    await t.cache.set(phi, { a: 1 }, clinician);
    t.faults.audit.down = true;
    await assert.rejects(t.cache.get(phi, clinician), hasCode('ERR_AUDIT_UNAVAILABLE'));
    const entries = t.memory.stats().entries;
    await assert.rejects(
      t.cache.set({ ...phi, id: 'MRN2' }, { b: 1 }, clinician),
      hasCode('ERR_AUDIT_UNAVAILABLE'),
    );
    assert.equal(t.memory.stats().entries, entries, 'the unaudited write was removed again');
    await assert.rejects(
      t.cache.getOrSet(phi, clinician, () => ({ c: 1 })),
      hasCode('ERR_AUDIT_UNAVAILABLE'),
    );
    await assert.rejects(
      t.cache.set({ ...phi, class: 'full-patient-record' }, {}, clinician),
      hasCode('ERR_AUDIT_UNAVAILABLE'),
    );
    t.faults.audit.down = false;
    assert.equal(await t.cache.get({ ...phi, id: 'MRN2' }, clinician), undefined);
    await t.cache.close();
  });
});
