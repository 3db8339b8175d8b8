import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { type AccessContext, PhiCache } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { AFTER, samplePolicy } from '../policy/sample-policy.js';

const ctx: AccessContext = { tenant: 't1', user: 'u1', principal: 'clinician-7', purpose: 'treatment' };

async function cacheAt(clock: { now: number }) {
  const home = await mkdtemp(join(tmpdir(), 'phicache-read-policy-'));
  const audit = new MemoryAuditSink();
  const cache = await PhiCache.create({
    service: 'test-suite',
    policy: samplePolicy(),
    keys: await LocalKeyring.open({ home, env: {} }),
    store: new MemoryStore({ clock: () => clock.now }),
    audit,
    clock: () => clock.now,
  });
  return { cache, audit };
}

describe('policy on every read', () => {
  test('PHI-TTL-01 an entry written under an exception is refused once the cap in force no longer covers it', async () => {
    // EXC-CHART-TTL raises `chart` from 300 s to 900 s until AFTER.
    const clock = { now: AFTER - 10 * 60_000 };
    const { cache, audit } = await cacheAt(clock);
    const ref = { class: 'chart', resource: 'ward-round', id: 'p-1' };
    await cache.set(ref, { summary: 'ok' }, ctx, { ttlMs: 900_000, tags: { patient: 'p-1' } });
    clock.now = AFTER - 60_000;
    assert.deepEqual(await cache.get(ref, ctx), { summary: 'ok' }, 'within the exception: served');
    clock.now = AFTER + 60_000; // 11 minutes old: within its sealed 15, past the class's own 5
    assert.equal(await cache.get(ref, ctx), undefined);
    const last = audit.events.filter((e) => e.action === 'get').at(-1)!;
    assert.deepEqual(last.outcome, { result: 'miss', code: 'ERR_POLICY_TTL_EXCEEDED' });
    await cache.close();
  });

  test('POL-FIELD-01 getOrSet returns the value as the policy let it be stored, on a miss as on a hit', async () => {
    const clock = { now: AFTER };
    const { cache } = await cacheAt(clock);
    const ref = { class: 'profile', resource: 'prefs', id: 'u1' };
    const factory = () => ({ displayName: 'Ada', locale: 'en-GB', ssn: '123-45-6789' });
    const first = await cache.getOrSet(ref, ctx, factory);
    const second = await cache.getOrSet(ref, ctx, factory);
    assert.deepEqual(first, { displayName: 'Ada', locale: 'en-GB' });
    assert.deepEqual(second, first);
    await cache.close();
  });
});
