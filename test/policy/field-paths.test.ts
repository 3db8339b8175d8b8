import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyInvalidError } from '../../src/errors.js';
import { lintPolicy } from '../../src/policy/lint.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicyDecision } from '../../src/policy/policy.js';

const NOW = Date.parse('2026-06-01T12:00:00Z');

/** One class `order` with the given allow list; `others` decides between stripping and refusing. */
function orderPolicyText(allow: string[], others: 'strip' | 'reject'): string {
  return `version: 1
classes:
  order:
    description: Lab orders by reference
    phi: false
    cacheable: true
    maxTtlSeconds: 60
    fields:
      allow: [${allow.map((path) => JSON.stringify(path)).join(', ')}]
      others: ${others}
`;
}

function decide(allow: string[], others: 'strip' | 'reject', value: unknown): PolicyDecision {
  return parsePolicy(orderPolicyText(allow, others), 'order.yaml').decideWrite(
    {
      className: 'order',
      ttlMs: undefined,
      scope: { tenant: 't1' },
      principal: undefined,
      purpose: undefined,
      value,
      tagKinds: [],
    },
    NOW,
  );
}

function kept(decision: PolicyDecision): { value: unknown; stripped: readonly string[] } {
  assert.equal(decision.effect, 'allow', decision.effect === 'deny' ? decision.reason : '');
  if (decision.effect !== 'allow') return { value: undefined, stripped: [] };
  assert.deepEqual(decision.value, JSON.parse(decision.json ?? ''));
  return { value: decision.value, stripped: decision.strippedFields };
}

const order = {
  orderId: 'o-1',
  patient: { ref: 'p-77', name: 'Maria Garcia-Lopez', ssn: '078-05-1120' },
  labs: [
    { code: 'LOINC-2345-7', value: 5.4, patientName: 'Maria Garcia-Lopez' },
    { code: 'LOINC-718-7', value: 13.1, patientName: 'Maria Garcia-Lopez' },
  ],
};

describe('POL-FIELD-01: field allow lists on nested data', () => {
  test('POL-FIELD-01: PHI nested under an allowed name is stripped, and its path reported', () => {
    const { value, stripped } = kept(decide(['orderId', 'patient'], 'strip', order));
    assert.deepEqual(value, { orderId: 'o-1', patient: {} });
    assert.deepEqual(stripped, ['patient.ref', 'patient.name', 'patient.ssn', 'labs']);
  });

  test('POL-FIELD-01: PHI nested under an allowed name is refused with others: reject, naming no field', () => {
    const decision = decide(['orderId', 'patient', 'labs'], 'reject', order);
    assert.equal(decision.effect, 'deny');
    if (decision.effect !== 'deny') return;
    assert.equal(decision.rule, 'POL-FIELD-01');
    assert.equal(decision.code, 'ERR_POLICY_FIELD_FORBIDDEN');
    // patient.ref, patient.name, patient.ssn, labs.code, labs.value, labs.patientName
    assert.match(decision.reason, /6 fields/);
    assert.doesNotMatch(JSON.stringify(decision), /patientName|ssn|Maria/);
  });

  test('POL-ALLOW-01: explicit nested paths keep their fields, element by element in arrays', () => {
    const { value, stripped } = kept(
      decide(['orderId', 'patient.ref', 'labs.code', 'labs.value'], 'strip', order),
    );
    assert.deepEqual(value, {
      orderId: 'o-1',
      patient: { ref: 'p-77' },
      labs: [
        { code: 'LOINC-2345-7', value: 5.4 },
        { code: 'LOINC-718-7', value: 13.1 },
      ],
    });
    // Array elements share one path: reported once, whatever the number of elements.
    assert.deepEqual(stripped, ['patient.name', 'patient.ssn', 'labs.patientName']);
  });

  test('POL-ALLOW-01: explicit nested paths let a reject class accept the value', () => {
    const value = { orderId: 'o-1', labs: [{ code: 'x', value: 1 }] };
    assert.deepEqual(kept(decide(['orderId', 'labs.code', 'labs.value'], 'reject', value)).value, value);
  });

  test('POL-ALLOW-01: `name.*` allows a whole subtree, nested objects and arrays included', () => {
    const value = { orderId: 'o-1', meta: { source: { system: 'lis', ids: [1, 2] }, tags: [{ k: 'v' }] } };
    const { value: stored, stripped } = kept(decide(['orderId', 'meta.*'], 'reject', value));
    assert.deepEqual(stored, value);
    assert.deepEqual(stripped, []);
  });

  test('POL-ALLOW-01: an allowed name keeps scalars and arrays of scalars, nested arrays walked too', () => {
    const value = { roles: ['nurse', 'admin', 7, null], grid: [[{ code: 'a', note: 'PHI' }], ['b']] };
    const { value: stored, stripped } = kept(decide(['roles', 'grid', 'grid.code'], 'strip', value));
    assert.deepEqual(stored, { roles: ['nurse', 'admin', 7, null], grid: [[{ code: 'a' }], ['b']] });
    assert.deepEqual(stripped, ['grid.note']);
  });

  test('POL-FIELD-01: a name listed only on the way to a nested path allows containers, not scalars', () => {
    const { value, stripped } = kept(
      decide(['orderId', 'labs.code'], 'strip', { orderId: 'o-1', labs: ['Maria', { code: 'x' }] }),
    );
    assert.deepEqual(value, { orderId: 'o-1', labs: [{ code: 'x' }] });
    assert.deepEqual(stripped, ['labs']);
  });

  test('POL-FIELD-01: a member named __proto__ is stripped as a field and never becomes a prototype', () => {
    const value = JSON.parse('{"orderId":"o-1","__proto__":{"isAdmin":true}}');
    const { value: stored, stripped } = kept(decide(['orderId'], 'strip', value));
    assert.deepEqual(stripped, ['__proto__']);
    assert.equal(Object.getPrototypeOf(stored), Object.prototype);
    assert.equal((stored as { isAdmin?: boolean }).isAdmin, undefined);
  });

  test('POL-FIELD-01: a field name holding a dot never matches a nested path', () => {
    const { value, stripped } = kept(decide(['labs.code'], 'strip', { 'labs.code': 'Maria', labs: {} }));
    assert.deepEqual(value, { labs: {} });
    assert.deepEqual(stripped, ['labs.code']);
  });
});

describe('POL-SCHEMA-01: field paths in the policy file', () => {
  const bad: [string, RegExp][] = [
    ['labs..code', /empty segment/],
    ['.labs', /empty segment/],
    ['labs.', /empty segment/],
    ['', /empty segment/],
    ['*', /bare `\*`/],
    ['labs.*.code', /only be the last segment/],
  ];
  for (const [path, message] of bad) {
    test(`POL-SCHEMA-01: the field path ${JSON.stringify(path)} is refused, at its line`, () => {
      try {
        parsePolicy(orderPolicyText(['orderId', path], 'strip'), 'order.yaml');
        assert.fail('accepted');
      } catch (error) {
        assert.ok(error instanceof PolicyInvalidError, String(error));
        assert.equal(error.issues.length, 1, JSON.stringify(error.issues));
        const [issue] = error.issues;
        assert.equal(issue?.path, 'classes.order.fields.allow[1]');
        assert.equal(issue?.line, 9);
        assert.match(issue?.message ?? '', message);
      }
    });
  }

  test('POL-SCHEMA-01: policy lint reports a malformed field path', () => {
    const report = lintPolicy(orderPolicyText(['labs.*.code'], 'strip'), 'order.yaml', NOW);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.findings.map(({ rule, path }) => ({ rule, path })),
      [{ rule: 'POL-SCHEMA-01', path: 'classes.order.fields.allow[0]' }],
    );
  });

  test('POL-SCHEMA-01: well-formed paths load: names, dot paths and a trailing `*`', () => {
    const policy = parsePolicy(
      orderPolicyText(['orderId', 'labs.code', 'meta.*', 'a.b.c.*'], 'strip'),
      'o.yaml',
    );
    assert.deepEqual(policy.dataClass('order')?.fields?.allow, ['orderId', 'labs.code', 'meta.*', 'a.b.c.*']);
  });
});
