import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyDeniedError } from '../../src/errors.js';
import type { PolicyDecision, WriteRequest } from '../../src/policy/policy.js';
import { chartWrite, NOW, samplePolicy } from './sample-policy.js';

/** Decisions are taken on what JSON.stringify makes of a value, once: that text is what the cache stores. */

const policy = samplePolicy();

type Allowed = Extract<PolicyDecision, { effect: 'allow' }>;

function allowed(decision: PolicyDecision): Allowed {
  assert.equal(decision.effect, 'allow', decision.effect === 'deny' ? decision.reason : '');
  const write = decision as Allowed;
  // The promise every allowed write keeps: the value handed back is exactly what the stored text reads back as.
  assert.equal(typeof write.json, 'string');
  assert.deepEqual(write.value, JSON.parse(write.json ?? ''));
  return write;
}

function denied(decision: PolicyDecision, rule: string, code: string): string {
  assert.equal(decision.effect, 'deny');
  if (decision.effect !== 'deny') return '';
  assert.equal(decision.rule, rule);
  assert.equal(decision.code, code);
  return decision.reason;
}

/** `session` rejects fields outside [sid, roles]; `profile` strips fields outside [displayName, locale]. */
const session = (value: unknown): WriteRequest => ({
  ...chartWrite(),
  className: 'session',
  scope: { tenant: 't1', session: 's1' },
  value,
  tagKinds: [],
});
const profile = (value: unknown): WriteRequest => ({
  ...chartWrite(),
  className: 'profile',
  scope: { tenant: 't1' },
  value,
  tagKinds: [],
});

describe('POL-VALUE-01: a value that does not serialize to JSON is refused', () => {
  const patientName = 'MariaGarciaLopez';
  const cycle: Record<string, unknown> = { sid: 's1' };
  cycle[patientName] = { back: cycle };
  const values: [string, unknown][] = [
    ['undefined', undefined],
    ['a function', () => 'x'],
    ['a symbol', Symbol(patientName)],
    ['a toJSON that returns undefined', { [patientName]: 'x', toJSON: () => undefined }],
    ['a cycle', cycle],
    ['a BigInt', { sid: 's1', [patientName]: 10n }],
    [
      'a getter that throws',
      {
        get [patientName]() {
          throw new Error(`no access to ${patientName}`);
        },
      },
    ],
  ];

  for (const [what, value] of values) {
    test(`POL-VALUE-01: ${what} is refused with ERR_VALUE_NOT_SERIALIZABLE, naming no field`, () => {
      for (const request of [chartWrite({ value }), session(value), profile(value)]) {
        const decision = policy.decideWrite(request, NOW);
        const reason = denied(decision, 'POL-VALUE-01', 'ERR_VALUE_NOT_SERIALIZABLE');
        const error = new PolicyDeniedError('ERR_VALUE_NOT_SERIALIZABLE', 'POL-VALUE-01', reason);
        assert.ok(!reason.includes(patientName));
        assert.ok(!error.message.includes(patientName));
        assert.doesNotMatch(reason, /circular|property/i);
      }
    });
  }

  test('POL-VALUE-01: a value nested deeper than 100 levels is refused on every Node version alike', () => {
    const nest = (depth: number): unknown => {
      let value: unknown = { summary: 'ok' };
      for (let i = 1; i < depth; i++) value = { n: value };
      return value;
    };
    allowed(policy.decideWrite(chartWrite({ value: nest(100) }), NOW));
    denied(
      policy.decideWrite(chartWrite({ value: nest(101) }), NOW),
      'POL-VALUE-01',
      'ERR_VALUE_NOT_SERIALIZABLE',
    );
    denied(
      policy.decideWrite(chartWrite({ value: nest(10_000) }), NOW),
      'POL-VALUE-01',
      'ERR_VALUE_NOT_SERIALIZABLE',
    );
    // Brackets and quotes inside strings do not nest.
    const brackets = { summary: `${'['.repeat(500)}"\\"${'{'.repeat(500)}` };
    allowed(policy.decideWrite(chartWrite({ value: brackets }), NOW));
  });

  test('POL-VALUE-01 comes after the cheaper checks: an unknown class is refused as such', () => {
    denied(
      policy.decideWrite(chartWrite({ className: 'nope', value: undefined }), NOW),
      'POL-CLASS-01',
      'ERR_POLICY_UNKNOWN_CLASS',
    );
  });

  test('POL-ALLOW-01: members that JSON drops (a function, undefined) are not part of the stored value', () => {
    const decision = allowed(
      policy.decideWrite(chartWrite({ value: { summary: 'ok', render: () => 1, gone: undefined } }), NOW),
    );
    assert.equal(decision.json, '{"summary":"ok"}');
    assert.deepEqual(decision.value, { summary: 'ok' });
  });
});

describe('POL-FIELD-01: fields are checked on the serialized value', () => {
  test('POL-FIELD-01: a Proxy whose ownKeys hides a field from the check is decided on what JSON.stringify sees', () => {
    // Shows only the allowed field to the first look, and the PHI field to any later one.
    const proxyOf = () => {
      let count = 0;
      const proxy = new Proxy(
        { sid: 's1', diagnosis: 'F32.1' },
        {
          ownKeys(target) {
            count += 1;
            return count === 1 ? ['sid'] : Reflect.ownKeys(target);
          },
        },
      );
      return { proxy, looks: () => count };
    };
    const { proxy, looks } = proxyOf();
    const decision = allowed(policy.decideWrite(session(proxy), NOW));
    // Serialized once: the keys the decision saw are the keys that are stored, and nothing looks again.
    assert.equal(looks(), 1);
    assert.equal(decision.json, '{"sid":"s1"}');
    assert.deepEqual(decision.value, { sid: 's1' });
  });

  test('POL-FIELD-01: a Proxy that shows JSON.stringify other fields than Object.keys is refused', () => {
    const target = { sid: 's1' };
    const proxy = new Proxy(target, {
      get(object, name, receiver) {
        if (name === 'toJSON') return () => ({ sid: 's1', diagnosis: 'F32.1' });
        return Reflect.get(object, name, receiver);
      },
    });
    assert.deepEqual(Object.keys(proxy), ['sid']);
    const reason = denied(
      policy.decideWrite(session(proxy), NOW),
      'POL-FIELD-01',
      'ERR_POLICY_FIELD_FORBIDDEN',
    );
    assert.match(reason, /1 field /);
    const stripped = allowed(
      policy.decideWrite(
        profile(
          new Proxy(
            { displayName: 'Dr. A' },
            {
              get: (object, name) =>
                name === 'toJSON' ? () => ({ locale: 'en', ssn: '078-05-1120' }) : Reflect.get(object, name),
            },
          ),
        ),
        NOW,
      ),
    );
    assert.deepEqual(stripped.strippedFields, ['ssn']);
    assert.equal(stripped.json, '{"locale":"en"}');
  });

  test('POL-FIELD-01: a toJSON that returns another object is checked as that object', () => {
    const value = { sid: 's1', toJSON: () => ({ sid: 's1', diagnosis: 'F32.1' }) };
    denied(policy.decideWrite(session(value), NOW), 'POL-FIELD-01', 'ERR_POLICY_FIELD_FORBIDDEN');
    const kept = allowed(
      policy.decideWrite(session({ toJSON: () => ({ sid: 's2', roles: ['nurse'] }) }), NOW),
    );
    assert.deepEqual(kept.value, { sid: 's2', roles: ['nurse'] });
  });

  test('POL-FIELD-01: a value that serializes to something other than an object is refused (a Date is a string)', () => {
    for (const value of [new Date(0), { toJSON: () => 'a string' }, [{ sid: 's1' }]]) {
      denied(policy.decideWrite(session(value), NOW), 'POL-FIELD-01', 'ERR_POLICY_FIELD_FORBIDDEN');
    }
  });

  test('POL-ALLOW-01: a getter that changes its answer is read once, and the decision holds what it read', () => {
    let reads = 0;
    const value = {
      locale: 'en',
      get displayName() {
        reads += 1;
        return reads === 1 ? 'Dr. A' : 'Maria Garcia-Lopez, SSN 078-05-1120';
      },
    };
    const decision = allowed(policy.decideWrite(profile(value), NOW));
    assert.equal(reads, 1);
    assert.equal(decision.json, '{"locale":"en","displayName":"Dr. A"}');
    assert.deepEqual(decision.value, { locale: 'en', displayName: 'Dr. A' });
  });
});

describe('POL-ALLOW-01: the decision carries the stored text and its plain value', () => {
  test('POL-ALLOW-01: without a field list, value is the plain copy a later get returns, not the caller object', () => {
    const input = { summary: 'ok', at: new Date(0), codes: new Set(['a']), n: Number.NaN };
    const decision = allowed(policy.decideWrite(chartWrite({ value: input }), NOW));
    assert.equal(decision.json, '{"summary":"ok","at":"1970-01-01T00:00:00.000Z","codes":{},"n":null}');
    assert.notEqual(decision.value, input);
    // Parsed once, then the same object on every read of `value`.
    assert.equal(decision.value, decision.value);
    input.summary = 'changed after the decision';
    assert.deepEqual(decision.value, { summary: 'ok', at: '1970-01-01T00:00:00.000Z', codes: {}, n: null });
  });

  test('POL-ALLOW-01: a scalar value of a class without fields is stored as its JSON text', () => {
    for (const value of ['text', 42, true, null, [1, 'two']]) {
      const decision = allowed(policy.decideWrite(chartWrite({ value }), NOW));
      assert.equal(decision.json, JSON.stringify(value));
    }
  });

  test('POL-ALLOW-01: with a field list and nothing stripped, the text is the caller value serialized once', () => {
    const decision = allowed(policy.decideWrite(session({ roles: ['a', 'b'], sid: 's1' }), NOW));
    assert.equal(decision.json, '{"roles":["a","b"],"sid":"s1"}');
    assert.deepEqual(decision.strippedFields, []);
  });

  test('POL-ALLOW-01: reads carry no value and no text', () => {
    const read = policy.decideRead(
      { className: 'chart', scope: { tenant: 't1', user: 'u1' }, principal: 'p', purpose: 'treatment' },
      NOW,
    );
    assert.equal(read.effect, 'allow');
    if (read.effect !== 'allow') return;
    assert.equal(read.value, undefined);
    assert.equal(read.json, undefined);
  });

  test('POL-ALLOW-02: a write allowed under an exception carries its text too', () => {
    const decision = allowed(policy.decideWrite(chartWrite({ ttlMs: 900_000 }), NOW));
    assert.equal(decision.rule, 'POL-ALLOW-02');
    assert.equal(decision.json, '{"summary":"ok"}');
  });
});
