import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { clinician, makeCache } from '../helpers/make-cache.js';

const summary = (id: string) => ({ class: 'encrypted-phi', resource: 'lab-summary', id });
const bob = { ...clinician, user: 'dr.bob', principal: 'dr.bob' };

describe('PhiCache operations', () => {
  test('getOrSet: concurrent callers of one entry share one factory call, and each access is audited', async () => {
    const t = await makeCache();
    let calls = 0;
    const factory = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
      return { hba1c: 7.9 };
    };
    const results = await Promise.all(
      Array.from({ length: 50 }, () => t.cache.getOrSet(summary('MRN1'), clinician, factory)),
    );
    assert.equal(calls, 1);
    for (const result of results) assert.deepEqual(result, { hba1c: 7.9 });
    assert.equal(t.audit.events.filter((e) => e.action === 'get').length, 50);
    assert.equal(t.audit.events.filter((e) => e.action === 'set').length, 1);
    assert.deepEqual(await t.cache.getOrSet(summary('MRN1'), clinician, factory), { hba1c: 7.9 });
    assert.equal(calls, 1, 'a later call is a hit');
    await t.cache.close();
  });

  test('getOrSet: a failing factory fails every waiting caller and caches nothing; the next call retries', async () => {
    const t = await makeCache();
    let calls = 0;
    const failing = async () => {
      calls += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
      throw new Error('EHR timeout');
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, () => t.cache.getOrSet(summary('MRN1'), clinician, failing)),
    );
    assert.equal(calls, 1);
    assert.ok(outcomes.every((o) => o.status === 'rejected'));
    assert.deepEqual(await t.cache.getOrSet(summary('MRN1'), clinician, () => ({ ok: true })), { ok: true });
    await t.cache.close();
  });

  test('getOrSet: different users of a user-scoped class do not share a factory call or a value', async () => {
    const t = await makeCache();
    const [ada, bobs] = await Promise.all([
      t.cache.getOrSet(summary('MRN1'), clinician, () => ({ for: 'ada' })),
      t.cache.getOrSet(summary('MRN1'), bob, () => ({ for: 'bob' })),
    ]);
    assert.deepEqual(ada, { for: 'ada' });
    assert.deepEqual(bobs, { for: 'bob' });
    await t.cache.close();
  });

  test('a closed cache refuses every operation', async () => {
    const t = await makeCache();
    await t.cache.close();
    await assert.rejects(t.cache.get(summary('MRN1'), clinician), TypeError);
    await assert.rejects(t.cache.set(summary('MRN1'), { a: 1 }, clinician), TypeError);
    await assert.rejects(t.cache.purgeTenant(clinician), TypeError);
    await t.cache.close();
  });

  test('delete removes one entry and is audited', async () => {
    const t = await makeCache();
    await t.cache.set(summary('MRN1'), { a: 1 }, clinician);
    assert.equal(await t.cache.delete(summary('MRN1'), clinician), true);
    assert.equal(await t.cache.get(summary('MRN1'), clinician), undefined);
    assert.equal(await t.cache.delete(summary('MRN1'), clinician), false);
    const deletes = t.audit.events.filter((e) => e.action === 'delete');
    assert.deepEqual(
      deletes.map((e) => e.outcome),
      [
        { result: 'ok', count: 1 },
        { result: 'ok', count: 0 },
      ],
    );
    await t.cache.close();
  });

  test("POL-PURGE-01 purgeTag (a corrected lab result) purges the patient's entries for every user, and only them", async () => {
    const t = await makeCache();
    await t.cache.set(summary('MRN1'), { a: 1 }, clinician, { tags: { patient: 'MRN1' } });
    await t.cache.set(summary('MRN1'), { a: 1 }, bob, { tags: { patient: 'MRN1' } });
    await t.cache.set(summary('MRN2'), { b: 1 }, clinician, { tags: { patient: 'MRN2' } });
    const ctx = { tenant: 'st-marys', principal: 'lab-system', purpose: 'lab-result-corrected' };
    assert.equal(await t.cache.purgeTag(ctx, 'patient', 'MRN1'), 2);
    assert.equal(await t.cache.get(summary('MRN1'), clinician), undefined);
    assert.equal(await t.cache.get(summary('MRN1'), bob), undefined);
    assert.deepEqual(await t.cache.get(summary('MRN2'), clinician), { b: 1 });
    const admin = t.audit.events.find((e) => e.action === 'purge.tag');
    assert.equal(admin?.stream, 'admin');
    assert.deepEqual(admin?.outcome, { result: 'ok', count: 2 });
    assert.equal(admin?.actor.principal, 'lab-system');
    assert.deepEqual(admin?.decision, { effect: 'allow', rule: 'POL-PURGE-01' });
    assert.match(String(admin?.detail?.target), /^phc:t:[A-Za-z0-9_-]{43}$/);
    await t.cache.close();
  });

  test("purgeTag in one tenant leaves another tenant's entries with the same tag", async () => {
    const t = await makeCache();
    const other = { ...clinician, tenant: 'county-general' };
    await t.cache.set(summary('MRN1'), { a: 1 }, clinician, { tags: { patient: 'MRN1' } });
    await t.cache.set(summary('MRN1'), { a: 2 }, other, { tags: { patient: 'MRN1' } });
    assert.equal(await t.cache.purgeTag({ tenant: 'st-marys', principal: 'lab' }, 'patient', 'MRN1'), 1);
    assert.deepEqual(await t.cache.get(summary('MRN1'), other), { a: 2 });
    await t.cache.close();
  });

  test("purgeScope (logout) purges one user's entries and one session's entries", async () => {
    const t = await makeCache();
    await t.cache.set(summary('MRN1'), { a: 1 }, clinician);
    await t.cache.set(summary('MRN2'), { a: 2 }, clinician);
    await t.cache.set(summary('MRN1'), { b: 1 }, bob);
    const sessionRef = { class: 'session-token', resource: 'session', id: 's1' };
    await t.cache.set(sessionRef, { sid: 's1' }, { tenant: 'st-marys', session: 's1' });
    const admin = { tenant: 'st-marys', principal: 'portal', purpose: 'logout' };
    assert.equal(await t.cache.purgeScope(admin, { user: 'dr.ada' }), 2);
    assert.equal(await t.cache.get(summary('MRN1'), clinician), undefined);
    assert.deepEqual(await t.cache.get(summary('MRN1'), bob), { b: 1 });
    assert.equal(await t.cache.purgeScope(admin, { session: 's1' }), 1);
    assert.equal(await t.cache.get(sessionRef, { tenant: 'st-marys', session: 's1' }), undefined);
    // @ts-expect-error: a scope is { user } or { session }
    await assert.rejects(t.cache.purgeScope(admin, {}), TypeError);
    await t.cache.close();
  });

  test('the message budget of a data key rolls writes over to a new key; older entries stay readable', async () => {
    const t = await makeCache({ dekCache: { maxMessages: 3 } });
    for (let i = 0; i < 7; i++) await t.cache.set(summary(`MRN${i}`), { i }, clinician);
    const created = t.audit.events.filter((e) => e.action === 'key.create');
    assert.equal(created.length, 3);
    assert.ok(created.every((e) => e.stream === 'admin'));
    for (let i = 0; i < 7; i++) assert.deepEqual(await t.cache.get(summary(`MRN${i}`), clinician), { i });
    await t.cache.close();
  });

  test('keys evicted while a call awaits are never used: concurrent writes over a tiny budget all read back', async () => {
    // A budget of 2 seals per key evicts (and zeroes) keys while other writes still hold them across an await.
    const t = await makeCache({ dekCache: { maxMessages: 2 } });
    const ids = Array.from({ length: 60 }, (_, i) => `MRN${i}`);
    await Promise.all(ids.map((id, i) => t.cache.set(summary(id), { i }, clinician)));
    const tampers: unknown[] = [];
    t.cache.on('tamper', (event) => tampers.push(event));
    for (const [i, id] of ids.entries())
      assert.deepEqual(await t.cache.get(summary(id), clinician), { i }, id);
    assert.deepEqual(tampers, []);
    await t.cache.close();
  });

  test('a new epoch moves new writes to a new data key; entries of the previous epoch stay readable', async () => {
    const t = await makeCache();
    // A minute before the epoch (the hour) ends, then two minutes later: the first entry is still alive.
    t.clock.now += 3_600_000 - (t.clock.now % 3_600_000) - 60_000;
    await t.cache.set(summary('MRN1'), { a: 1 }, clinician);
    t.clock.now += 120_000;
    await t.cache.set(summary('MRN2'), { a: 2 }, clinician);
    const deks = t.audit.events.filter((e) => e.action === 'key.create').map((e) => e.dek);
    assert.equal(new Set(deks).size, 2);
    assert.deepEqual(await t.cache.get(summary('MRN1'), clinician), { a: 1 }, 'sealed in the previous epoch');
    assert.deepEqual(await t.cache.get(summary('MRN2'), clinician), { a: 2 });
    await t.cache.close();
  });

  test('two instances sharing a store share one data key per epoch and read each other', async () => {
    const first = await makeCache();
    const { PhiCache } = await import('../../src/cache.js');
    const { LocalKeyring } = await import('../../src/keys/providers/local-keyring.js');
    const { loadDefaultPolicy } = await import('../../src/policy/default.js');
    const { MemoryAuditSink } = await import('../../src/audit/memory-sink.js');
    const home = await mkdtemp(join(tmpdir(), 'phicache-shared-'));
    const keyring = await LocalKeyring.open({ home, env: {} });
    const audit = new MemoryAuditSink();
    const policy = await loadDefaultPolicy();
    const a = await PhiCache.create({ service: 'a', policy, keys: keyring, audit, store: first.memory });
    const b = await PhiCache.create({ service: 'b', policy, keys: keyring, audit, store: first.memory });
    await Promise.all([
      a.set(summary('MRN1'), { from: 'a' }, clinician),
      b.set(summary('MRN2'), { from: 'b' }, clinician),
    ]);
    assert.deepEqual(await b.get(summary('MRN1'), clinician), { from: 'a' });
    assert.deepEqual(await a.get(summary('MRN2'), clinician), { from: 'b' });
    // Every generated key is audited (the loser of the race generated one too), but both seal with the winner's.
    const created = audit.events.filter((e) => e.action === 'key.create');
    assert.ok(created.length >= 1 && created.length <= 2);
    const sealedWith = new Set(audit.events.filter((e) => e.action === 'set').map((e) => e.dek));
    assert.equal(sealedWith.size, 1, 'the loser of the race adopts the winner key');
    await a.close();
    await b.close();
    await first.cache.close();
  });
});
