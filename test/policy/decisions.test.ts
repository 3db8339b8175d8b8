import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PolicyDecision } from '../../src/policy/policy.js';
import { AFTER, chartWrite, NOW, samplePolicy } from './sample-policy.js';

const policy = samplePolicy();

function assertDeny(decision: PolicyDecision, rule: string, code: string): void {
  assert.equal(decision.effect, 'deny');
  assert.equal(decision.rule, rule);
  if (decision.effect === 'deny') assert.equal(decision.code, code);
}

function allowed(decision: PolicyDecision): Extract<PolicyDecision, { effect: 'allow' }> {
  assert.equal(decision.effect, 'allow', decision.effect === 'deny' ? decision.reason : '');
  return decision as Extract<PolicyDecision, { effect: 'allow' }>;
}

describe('write decisions', () => {
  test('POL-ALLOW-01: a write the class allows, with the class default TTL when none is asked', () => {
    const decision = allowed(policy.decideWrite(chartWrite(), NOW));
    assert.equal(decision.rule, 'POL-ALLOW-01');
    assert.equal(decision.ttlMs, 60_000);
    assert.equal(decision.exceptionId, undefined);
    assert.equal(decision.dataClass.name, 'chart');
  });

  test('POL-ALLOW-01: defaultTtlSeconds falls back to maxTtlSeconds', () => {
    const decision = allowed(
      policy.decideWrite(
        { ...chartWrite(), className: 'profile', scope: { tenant: 't1' }, tagKinds: [] },
        NOW,
      ),
    );
    assert.equal(decision.rule, 'POL-ALLOW-01');
    assert.equal(decision.ttlMs, 600_000);
  });

  test('POL-CLASS-01: an undeclared class is refused without echoing its name', () => {
    const decision = policy.decideWrite(chartWrite({ className: 'charts' }), NOW);
    assertDeny(decision, 'POL-CLASS-01', 'ERR_POLICY_UNKNOWN_CLASS');
    assert.equal(decision.effect === 'deny' && decision.className, '(undeclared)');
    assert.doesNotMatch(JSON.stringify(decision), /charts/);
  });

  test('POL-CACHE-01: a class that may not be cached is refused, for writes and reads', () => {
    const write = policy.decideWrite(chartWrite({ className: 'record', scope: { tenant: 't1' } }), NOW);
    assertDeny(write, 'POL-CACHE-01', 'ERR_POLICY_NOT_CACHEABLE');
    const read = policy.decideRead(
      { className: 'record', scope: { tenant: 't1' }, principal: 'p', purpose: 'treatment' },
      NOW,
    );
    assertDeny(read, 'POL-CACHE-01', 'ERR_POLICY_NOT_CACHEABLE');
  });

  test('PHI-TTL-01: a TTL over the class cap is refused', () => {
    const session = {
      ...chartWrite(),
      className: 'session',
      scope: { tenant: 't1', session: 's1' },
      value: { sid: 's1' },
      tagKinds: [],
    };
    assert.equal(policy.decideWrite({ ...session, ttlMs: 1_800_000 }, NOW).effect, 'allow');
    assertDeny(
      policy.decideWrite({ ...session, ttlMs: 1_800_001 }, NOW),
      'PHI-TTL-01',
      'ERR_POLICY_TTL_EXCEEDED',
    );
  });

  test('PHI-TTL-01: a TTL that is not a positive integer of milliseconds is a RangeError, not a decision', () => {
    for (const ttlMs of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => policy.decideWrite(chartWrite({ ttlMs }), NOW), RangeError, String(ttlMs));
    }
  });

  test('POL-SCOPE-01: a missing or empty scope part the class requires is refused', () => {
    assertDeny(
      policy.decideWrite(chartWrite({ scope: { tenant: 't1' } }), NOW),
      'POL-SCOPE-01',
      'ERR_POLICY_SCOPE_MISSING',
    );
    assertDeny(
      policy.decideWrite(chartWrite({ scope: { tenant: '', user: 'u1' } }), NOW),
      'POL-SCOPE-01',
      'ERR_POLICY_SCOPE_MISSING',
    );
    const read = policy.decideRead(
      { className: 'chart', scope: { user: 'u1' }, principal: 'p', purpose: 'treatment' },
      NOW,
    );
    assertDeny(read, 'POL-SCOPE-01', 'ERR_POLICY_SCOPE_MISSING');
  });

  test('POL-CTX-01: a PHI class without a principal or a purpose is refused', () => {
    assertDeny(
      policy.decideWrite(chartWrite({ principal: undefined }), NOW),
      'POL-CTX-01',
      'ERR_POLICY_CONTEXT_MISSING',
    );
    assertDeny(
      policy.decideWrite(chartWrite({ purpose: '' }), NOW),
      'POL-CTX-01',
      'ERR_POLICY_CONTEXT_MISSING',
    );
    const read = policy.decideRead(
      { className: 'chart', scope: { tenant: 't1', user: 'u1' }, principal: 'p', purpose: undefined },
      NOW,
    );
    assertDeny(read, 'POL-CTX-01', 'ERR_POLICY_CONTEXT_MISSING');
  });

  test('POL-CTX-01: a class without PHI needs no principal or purpose', () => {
    const decision = policy.decideWrite(
      {
        ...chartWrite({ principal: undefined, purpose: undefined }),
        className: 'profile',
        scope: { tenant: 't1' },
        tagKinds: [],
      },
      NOW,
    );
    assert.equal(decision.effect, 'allow');
  });

  test('POL-TAG-01: a tag kind the class does not declare is refused', () => {
    assertDeny(
      policy.decideWrite(chartWrite({ tagKinds: ['patient', 'ward'] }), NOW),
      'POL-TAG-01',
      'ERR_POLICY_TAG_NOT_ALLOWED',
    );
    assert.equal(policy.decideWrite(chartWrite({ tagKinds: ['patient', 'encounter'] }), NOW).effect, 'allow');
  });
});

describe('fields', () => {
  const session = (value: unknown) =>
    policy.decideWrite(
      { ...chartWrite(), className: 'session', scope: { tenant: 't1', session: 's1' }, value, tagKinds: [] },
      NOW,
    );

  test('POL-FIELD-01: a field outside the allow list of an `others: reject` class is refused', () => {
    assert.equal(session({ sid: 's1', roles: ['nurse'] }).effect, 'allow');
    assertDeny(session({ sid: 's1', diagnosis: 'x' }), 'POL-FIELD-01', 'ERR_POLICY_FIELD_FORBIDDEN');
  });

  test('POL-FIELD-01: a class with fields accepts only a plain object value', () => {
    for (const value of ['s1', 42, null, ['sid'], new Date(0)]) {
      assertDeny(session(value), 'POL-FIELD-01', 'ERR_POLICY_FIELD_FORBIDDEN');
    }
  });

  test('POL-ALLOW-01: `others: strip` returns a stripped copy and leaves the caller value alone', () => {
    const value = { displayName: 'Dr. A', locale: 'en', shoeSize: 44 };
    const decision = allowed(
      policy.decideWrite(
        { ...chartWrite(), className: 'profile', scope: { tenant: 't1' }, value, tagKinds: [] },
        NOW,
      ),
    );
    assert.equal(decision.rule, 'POL-ALLOW-01');
    assert.deepEqual(decision.value, { displayName: 'Dr. A', locale: 'en' });
    assert.deepEqual(decision.strippedFields, ['shoeSize']);
    assert.notEqual(decision.value, value);
    assert.deepEqual(value, { displayName: 'Dr. A', locale: 'en', shoeSize: 44 });
  });
});

describe('exceptions', () => {
  test('POL-ALLOW-02: an active exception raises the TTL cap of a class', () => {
    const decision = allowed(policy.decideWrite(chartWrite({ ttlMs: 900_000 }), NOW));
    assert.equal(decision.rule, 'POL-ALLOW-02');
    assert.equal(decision.exceptionId, 'EXC-CHART-TTL');
    assert.equal(decision.ttlMs, 900_000);
  });

  test('POL-ALLOW-02: an active exception lets a non-cacheable class be cached, up to its own cap', () => {
    const write = allowed(policy.decideWrite(chartWrite({ className: 'report', tagKinds: [] }), NOW));
    assert.equal(write.rule, 'POL-ALLOW-02');
    assert.equal(write.exceptionId, 'EXC-REPORT-1');
    assert.equal(write.ttlMs, 120_000);
    assertDeny(
      policy.decideWrite(chartWrite({ className: 'report', tagKinds: [], ttlMs: 120_001 }), NOW),
      'PHI-TTL-01',
      'ERR_POLICY_TTL_EXCEEDED',
    );
    const read = allowed(
      policy.decideRead(
        { className: 'report', scope: { tenant: 't1', user: 'u1' }, principal: 'p', purpose: 'treatment' },
        NOW,
      ),
    );
    assert.equal(read.rule, 'POL-ALLOW-02');
    assert.equal(read.ttlMs, 120_000);
    assert.equal(read.value, undefined);
  });

  test('POL-EXC-01: once the exception has expired, what only it allowed is refused', () => {
    assertDeny(
      policy.decideWrite(chartWrite({ ttlMs: 900_000 }), AFTER),
      'POL-EXC-01',
      'ERR_POLICY_EXCEPTION_EXPIRED',
    );
    assertDeny(
      policy.decideWrite(chartWrite({ className: 'report', tagKinds: [] }), AFTER),
      'POL-EXC-01',
      'ERR_POLICY_EXCEPTION_EXPIRED',
    );
    assertDeny(
      policy.decideRead(
        { className: 'report', scope: { tenant: 't1', user: 'u1' }, principal: 'p', purpose: 'treatment' },
        AFTER,
      ),
      'POL-EXC-01',
      'ERR_POLICY_EXCEPTION_EXPIRED',
    );
    // AFTER is the expiry instant itself: the exception works while now < expires, so one millisecond before.
    assert.equal(policy.decideWrite(chartWrite({ ttlMs: 900_000 }), AFTER - 1).effect, 'allow');
  });

  test('POL-ALLOW-01: after an exception expires, what the class allows on its own still works', () => {
    const decision = allowed(policy.decideWrite(chartWrite({ ttlMs: 300_000 }), AFTER));
    assert.equal(decision.rule, 'POL-ALLOW-01');
    assert.equal(decision.exceptionId, undefined);
  });

  test('POL-ALLOW-01: a read of a cacheable class reports the longest TTL an entry may have now', () => {
    const read = (now: number) =>
      allowed(
        policy.decideRead(
          { className: 'chart', scope: { tenant: 't1', user: 'u1' }, principal: 'p', purpose: 'treatment' },
          now,
        ),
      );
    assert.equal(read(NOW).rule, 'POL-ALLOW-01');
    assert.equal(read(NOW).ttlMs, 900_000);
    assert.equal(read(AFTER).ttlMs, 300_000);
  });

  test('activeException finds the exception while it is active, and not after', () => {
    assert.equal(policy.activeException('chart', NOW)?.id, 'EXC-CHART-TTL');
    assert.equal(policy.activeException('chart', AFTER), undefined);
    assert.equal(policy.activeException('profile', NOW), undefined);
  });
});

describe('the policy object', () => {
  test('is frozen, down to its classes and their lists', () => {
    assert.ok(Object.isFrozen(policy));
    assert.ok(Object.isFrozen(policy.exceptions));
    const chart = policy.dataClass('chart');
    assert.ok(chart !== undefined && Object.isFrozen(chart) && Object.isFrozen(chart.scope));
    assert.equal((policy.classes as unknown as { set?: unknown }).set, undefined);
    assert.throws(() => {
      (policy.exceptions as unknown[]).push({});
    }, TypeError);
  });

  test('resolves defaults: failure mode by phi, scope [tenant], no tags', () => {
    assert.equal(policy.dataClass('chart')?.failureMode, 'closed');
    assert.equal(policy.dataClass('profile')?.failureMode, 'miss');
    assert.deepEqual(policy.dataClass('profile')?.scope, ['tenant']);
    assert.deepEqual(policy.dataClass('profile')?.tags, []);
    assert.equal(policy.dataClass('record')?.maxTtlMs, 0);
    assert.equal(policy.exceptions[0]?.expiresAt, Date.parse('2026-07-01T00:00:00Z'));
    assert.equal(policy.exceptions[0]?.maxTtlMs, 120_000);
    assert.equal(policy.exceptions[1]?.allowCacheable, false);
  });
});
