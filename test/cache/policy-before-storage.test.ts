import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PhiCache } from '../../src/cache.js';
import { PolicyDeniedError } from '../../src/errors.js';
import { parsePolicy } from '../../src/policy/load.js';
import { clinician, makeCache } from '../helpers/make-cache.js';

const summary = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };

/** Runs a refused call and checks the promise: typed error, nothing stored, a denial audited with its rule. */
async function assertRefused(
  run: (cache: PhiCache) => Promise<unknown>,
  code: string,
  rule: string,
  overrides: Parameters<typeof makeCache>[0] = {},
) {
  const t = await makeCache(overrides);
  await assert.rejects(run(t.cache), (error: unknown) => {
    assert.ok(error instanceof PolicyDeniedError, `expected PolicyDeniedError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.rule, rule);
    return true;
  });
  assert.equal(t.store.writes.length, 0, 'a refused write stores nothing, not even a data key');
  assert.equal(t.memory.stats().entries, 0);
  const denial = t.audit.events.at(-1);
  assert.ok(denial, 'the refusal is audited');
  assert.deepEqual(denial.decision, { effect: 'deny', rule });
  assert.deepEqual(denial.outcome, { result: 'denied', code });
  await t.cache.close();
}

const withExceptionPolicy = (expires: string) =>
  parsePolicy(
    `version: 1
classes:
  full-patient-record:
    description: whole record
    phi: true
    cacheable: false
    scope: [tenant, user]
exceptions:
  - id: EXC-7
    class: full-patient-record
    owner: privacy-office@example.org
    reason: downtime procedure for the EHR migration
    compensatingControl: 60 s TTL and daily access review
    expires: ${expires}
    allow:
      cacheable: true
      maxTtlSeconds: 60
`,
    'exception-policy.yaml',
  );

describe('PHI-POLICY-01 policy before storage: a refused write throws, stores nothing and is audited', () => {
  test('POL-CACHE-01 a class that may never be cached', () =>
    assertRefused(
      (cache) => cache.set({ ...summary, class: 'full-patient-record' }, { a: 1 }, clinician),
      'ERR_POLICY_NOT_CACHEABLE',
      'POL-CACHE-01',
    ));

  test('PHI-TTL-01 a TTL over the class cap', () =>
    assertRefused(
      (cache) => cache.set(summary, { a: 1 }, clinician, { ttlMs: 300_001 }),
      'ERR_POLICY_TTL_EXCEEDED',
      'PHI-TTL-01',
    ));

  test('POL-SCOPE-01 a missing scope part (user for encrypted-phi)', () =>
    assertRefused(
      (cache) =>
        cache.set(summary, { a: 1 }, { tenant: 'st-marys', principal: 'dr.ada', purpose: 'treatment' }),
      'ERR_POLICY_SCOPE_MISSING',
      'POL-SCOPE-01',
    ));

  test('POL-CTX-01 a PHI class without principal and purpose', () =>
    assertRefused(
      (cache) => cache.set(summary, { a: 1 }, { tenant: 'st-marys', user: 'dr.ada' }),
      'ERR_POLICY_CONTEXT_MISSING',
      'POL-CTX-01',
    ));

  test('POL-FIELD-01 a forbidden field in a session token', () =>
    assertRefused(
      (cache) =>
        cache.set(
          { class: 'session-token', resource: 'session', id: 's1' },
          { sid: 's1', subject: 'u1', diagnosis: 'flu' },
          { tenant: 'st-marys', session: 's1' },
        ),
      'ERR_POLICY_FIELD_FORBIDDEN',
      'POL-FIELD-01',
    ));

  test('POL-TAG-01 a tag kind the class does not declare', () =>
    assertRefused(
      (cache) => cache.set(summary, { a: 1 }, clinician, { tags: { ssn: '512-40-6000' } }),
      'ERR_POLICY_TAG_NOT_ALLOWED',
      'POL-TAG-01',
    ));

  test('POL-CLASS-01 an undeclared class', () =>
    assertRefused(
      (cache) => cache.set({ ...summary, class: 'imaging' }, { a: 1 }, clinician),
      'ERR_POLICY_UNKNOWN_CLASS',
      'POL-CLASS-01',
    ));

  test('POL-EXC-01 an expired exception stops working', async () => {
    const ref = { ...summary, class: 'full-patient-record' };
    await assertRefused(
      (cache) => cache.set(ref, { a: 1 }, clinician),
      'ERR_POLICY_EXCEPTION_EXPIRED',
      'POL-EXC-01',
      {
        policy: withExceptionPolicy('2026-11-01'),
      },
    );
  });

  test('POL-ALLOW-02 the same exception before its expiry allows a capped write', async () => {
    const t = await makeCache({ policy: withExceptionPolicy('2027-01-31') });
    const ref = { ...summary, class: 'full-patient-record' };
    const receipt = await t.cache.set(ref, { a: 1 }, clinician);
    assert.equal(receipt.rule, 'POL-ALLOW-02');
    assert.equal(receipt.ttlMs, 60_000);
    assert.deepEqual(await t.cache.get(ref, clinician), { a: 1 });
    await t.cache.close();
  });

  test('a read of a never-cacheable class is refused and audited too', () =>
    assertRefused(
      (cache) => cache.get({ ...summary, class: 'full-patient-record' }, clinician),
      'ERR_POLICY_NOT_CACHEABLE',
      'POL-CACHE-01',
    ));

  test('fields outside the allow list are stripped when the class says strip, and the caller value is untouched', async () => {
    const policy = parsePolicy(
      `version: 1
classes:
  chart-header:
    description: header
    phi: true
    cacheable: true
    maxTtlSeconds: 120
    scope: [tenant, user]
    fields: { allow: [name, allergies], others: strip }
`,
      'strip.yaml',
    );
    const t = await makeCache({ policy });
    const ref = { class: 'chart-header', resource: 'chart', id: 'MRN1' };
    const value = { name: 'Alma', allergies: ['penicillin'], ssn: '512-40-6000' };
    const receipt = await t.cache.set(ref, value, clinician);
    assert.equal(receipt.strippedFields, 1);
    assert.deepEqual(await t.cache.get(ref, clinician), { name: 'Alma', allergies: ['penicillin'] });
    assert.equal(value.ssn, '512-40-6000');
    await t.cache.close();
  });

  test('an allowed write carries its decision: rule id in the receipt and in the audit event', async () => {
    const t = await makeCache();
    const receipt = await t.cache.set(summary, { a: 1 }, clinician);
    assert.equal(receipt.rule, 'POL-ALLOW-01');
    assert.equal(receipt.ttlMs, 300_000, 'no TTL asked: the class default');
    const set = t.audit.events.find((e) => e.action === 'set');
    assert.deepEqual(set?.decision, { effect: 'allow', rule: 'POL-ALLOW-01' });
    assert.equal(set?.key, receipt.key);
    await t.cache.close();
  });

  test('bad arguments are TypeError or RangeError, and store nothing', async () => {
    const t = await makeCache();
    await assert.rejects(t.cache.set(summary, { a: 1 }, clinician, { ttlMs: -5 }), RangeError);
    await assert.rejects(t.cache.set(summary, { a: 1 }, clinician, { ttlMs: 1.5 }), RangeError);
    await assert.rejects(t.cache.set({ ...summary, id: '' }, { a: 1 }, clinician), TypeError);
    await assert.rejects(t.cache.set(summary, { a: 1 }, { tenant: '' }), TypeError);
    // @ts-expect-error: the context must be an object with a tenant
    await assert.rejects(t.cache.get(summary, null), TypeError);
    await assert.rejects(t.cache.set(summary, undefined, clinician), (error: unknown) => {
      return (error as { code?: string }).code === 'ERR_VALUE_NOT_SERIALIZABLE';
    });
    assert.equal(t.store.writes.length, 0);
    await t.cache.close();
  });
});
