import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clinician, makeCache } from '../helpers/make-cache.js';

const ref = (id: string) => ({ class: 'encrypted-phi', resource: 'lab-summary', id });

describe('PHI-TTL-01 every entry expires', () => {
  test('every write to the store carries a TTL no larger than its class allows (entries) or its epoch needs (keys)', async () => {
    const t = await makeCache();
    await t.cache.set(ref('MRN1'), { a: 1 }, clinician, { ttlMs: 120_000 });
    await t.cache.set(ref('MRN2'), { a: 2 }, clinician);
    await t.cache.set(
      { class: 'session-token', resource: 'session', id: 's1' },
      { sid: 's1' },
      { tenant: 't', session: 's1' },
    );
    const entries = t.store.writes.filter((w) => w.key.startsWith('phc:e:'));
    assert.deepEqual(
      entries.map((w) => w.options.ttlMs),
      [120_000, 300_000, 1_800_000],
    );
    for (const write of t.store.writes) {
      assert.ok(
        Number.isSafeInteger(write.options.ttlMs) && write.options.ttlMs > 0,
        `${write.key} has a TTL`,
      );
      // A data key record lives at most one epoch (1 h) + the class cap (30 min) + 1 min of grace.
      assert.ok(
        write.options.ttlMs <= 3_600_000 + 1_800_000 + 60_000,
        `${write.key} TTL ${write.options.ttlMs}`,
      );
    }
    await t.cache.close();
  });

  test('the sealed expiry is enforced even when the store TTL was removed or extended', async () => {
    const t = await makeCache();
    await t.cache.set(ref('MRN1'), { a: 1 }, clinician, { ttlMs: 60_000 });
    const write = t.store.writes.find((w) => w.key.startsWith('phc:e:'))!;
    // An operator (or an attacker) rewrites the entry with a TTL of a day.
    await t.memory.set(write.key, write.value, { ttlMs: 86_400_000 });
    t.clock.now += 60_001;
    assert.equal(await t.cache.get(ref('MRN1'), clinician), undefined);
    assert.deepEqual(t.audit.events.at(-1)?.outcome, { result: 'miss', code: 'ERR_ENVELOPE_EXPIRED' });
    assert.equal(await t.memory.get(write.key), undefined, 'the expired entry is deleted');
    await t.cache.close();
  });

  test('an entry is served until its TTL and not after', async () => {
    const t = await makeCache();
    await t.cache.set(ref('MRN1'), { a: 1 }, clinician, { ttlMs: 10_000 });
    t.clock.now += 9_999;
    assert.deepEqual(await t.cache.get(ref('MRN1'), clinician), { a: 1 });
    t.clock.now += 1;
    assert.equal(await t.cache.get(ref('MRN1'), clinician), undefined);
    await t.cache.close();
  });
});

describe('PHI-AAD-01 ciphertext is bound to its place', () => {
  test('a value copied to another key is refused as tamper: audited, deleted, a miss', async () => {
    const t = await makeCache();
    const tampers: unknown[] = [];
    t.cache.on('tamper', (event) => tampers.push(event));
    await t.cache.set(ref('MRN1'), { result: 'positive' }, clinician);
    await t.cache.set(ref('MRN2'), { result: 'negative' }, clinician);
    const [first, second] = t.store.writes.filter((w) => w.key.startsWith('phc:e:'));
    await t.memory.set(second!.key, first!.value, { ttlMs: 60_000 });
    assert.equal(await t.cache.get(ref('MRN2'), clinician), undefined);
    assert.deepEqual(t.audit.events.at(-1)?.outcome, { result: 'error', code: 'ERR_ENVELOPE_AUTH' });
    assert.equal(tampers.length, 1);
    assert.equal(await t.memory.get(second!.key), undefined);
    assert.deepEqual(
      await t.cache.get(ref('MRN1'), clinician),
      { result: 'positive' },
      'the original is intact',
    );
    await t.cache.close();
  });

  test("a value copied to another user's scope of the same reference is refused", async () => {
    const t = await makeCache();
    const bob = { ...clinician, user: 'dr.bob', principal: 'dr.bob' };
    await t.cache.set(ref('MRN1'), { note: 'ada' }, clinician);
    await t.cache.set(ref('MRN1'), { note: 'bob' }, bob);
    const [ada, bobs] = t.store.writes.filter((w) => w.key.startsWith('phc:e:'));
    await t.memory.set(bobs!.key, ada!.value, { ttlMs: 60_000 });
    assert.equal(await t.cache.get(ref('MRN1'), bob), undefined);
    await t.cache.close();
  });

  test('a value copied into another class is refused', async () => {
    const { parsePolicy } = await import('../../src/policy/load.js');
    const policy = parsePolicy(
      `version: 1
classes:
  lab-a: { description: a, phi: true, cacheable: true, maxTtlSeconds: 300, scope: [tenant, user] }
  lab-b: { description: b, phi: true, cacheable: true, maxTtlSeconds: 300, scope: [tenant, user] }
`,
      'two-classes.yaml',
    );
    const t = await makeCache({ policy });
    await t.cache.set({ class: 'lab-a', resource: 'r', id: 'MRN1' }, { a: 1 }, clinician);
    await t.cache.set({ class: 'lab-b', resource: 'r', id: 'MRN1' }, { b: 1 }, clinician);
    const [a, b] = t.store.writes.filter((w) => w.key.startsWith('phc:e:'));
    await t.memory.set(b!.key, a!.value, { ttlMs: 60_000 });
    assert.equal(await t.cache.get({ class: 'lab-b', resource: 'r', id: 'MRN1' }, clinician), undefined);
    // Refused twice over: data keys are looked up per class, and the class is in the AAD (see the crypto tests).
    assert.notEqual(t.audit.events.at(-1)?.outcome.result, 'hit');
    assert.equal(await t.memory.get(b!.key), undefined, 'the planted copy is deleted');
    await t.cache.close();
  });

  test('a flipped bit anywhere in a stored envelope is never served', async () => {
    const t = await makeCache();
    await t.cache.set(ref('MRN1'), { a: 1 }, clinician);
    const write = t.store.writes.find((w) => w.key.startsWith('phc:e:'))!;
    for (let i = 0; i < write.value.length; i += 7) {
      const damaged = Buffer.from(write.value);
      damaged[i]! ^= 0x10;
      await t.memory.set(write.key, damaged, { ttlMs: 60_000 });
      assert.equal(await t.cache.get(ref('MRN1'), clinician), undefined, `byte ${i}`);
    }
    await t.cache.close();
  });
});
