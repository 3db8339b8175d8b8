import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { PolicyInvalidError } from '../../src/errors.js';
import { defaultPolicyPath } from '../../src/policy/default.js';
import { policyDigest } from '../../src/policy/digest.js';
import { lintPolicy } from '../../src/policy/lint.js';
import { parsePolicy } from '../../src/policy/load.js';
import type { PolicyDecision } from '../../src/policy/policy.js';
import { chartWrite, NOW, samplePolicy, samplePolicyText } from './sample-policy.js';

/** The sample policy with its own purposes, declared after `version: 1` (so the list starts on line 2). */
function withPurposes(list: string): string {
  return samplePolicyText.replace('version: 1\n', `version: 1\npurposes: ${list}\n`);
}

const chartRead = (purpose: string | undefined) => ({
  className: 'chart',
  scope: { tenant: 't1', user: 'u1' },
  principal: 'clinician-7',
  purpose,
});

/** A write of the non-PHI `profile` class, which needs no principal or purpose. */
const profileWrite = (purpose: string | undefined) => ({
  ...chartWrite({ principal: undefined, purpose }),
  className: 'profile',
  scope: { tenant: 't1' },
  tagKinds: [],
});

function assertPurposeDenied(decision: PolicyDecision, purpose: string): void {
  assert.equal(decision.effect, 'deny');
  if (decision.effect !== 'deny') return;
  assert.equal(decision.rule, 'POL-PURPOSE-01');
  assert.equal(decision.code, 'ERR_POLICY_PURPOSE_UNKNOWN');
  // The purpose is caller input: the refusal names the rule and the class, never what was given.
  assert.ok(!JSON.stringify(decision).includes(purpose), 'the refusal does not echo the purpose');
}

describe('purposes of use', () => {
  test('POL-PURPOSE-01: a PHI write or read whose purpose the policy does not declare is refused', () => {
    const policy = samplePolicy();
    for (const purpose of ['marketing', 'Treatment', 'treatment ', 'research']) {
      assertPurposeDenied(policy.decideWrite(chartWrite({ purpose }), NOW), purpose);
      assertPurposeDenied(policy.decideRead(chartRead(purpose), NOW), purpose);
    }
  });

  test('POL-PURPOSE-01: every purpose the policy declares is allowed, for writes and reads', () => {
    const policy = samplePolicy();
    for (const purpose of ['treatment', 'payment', 'operations']) {
      assert.equal(policy.decideWrite(chartWrite({ purpose }), NOW).effect, 'allow', purpose);
      assert.equal(policy.decideRead(chartRead(purpose), NOW).effect, 'allow', purpose);
    }
  });

  test('POL-PURPOSE-01: a file without `purposes` accepts treatment, payment and operations (HIPAA TPO)', () => {
    assert.deepEqual(samplePolicy().purposes, ['treatment', 'payment', 'operations']);
  });

  test("POL-PURPOSE-01: a policy's own list replaces the default: what it leaves out is refused", () => {
    const policy = parsePolicy(withPurposes('[treatment, ETREAT, hl7.HRESCH]'), 'own.yaml');
    assert.deepEqual(policy.purposes, ['treatment', 'ETREAT', 'hl7.HRESCH']);
    for (const purpose of ['treatment', 'ETREAT', 'hl7.HRESCH']) {
      assert.equal(policy.decideWrite(chartWrite({ purpose }), NOW).effect, 'allow', purpose);
    }
    assertPurposeDenied(policy.decideWrite(chartWrite({ purpose: 'payment' }), NOW), 'payment');
    assertPurposeDenied(policy.decideRead(chartRead('etreat'), NOW), 'etreat');
  });

  test('POL-PURPOSE-01: a class without PHI needs no purpose, but one that is given must be declared', () => {
    const policy = samplePolicy();
    assert.equal(policy.decideWrite(profileWrite(undefined), NOW).effect, 'allow');
    assert.equal(policy.decideWrite(profileWrite(''), NOW).effect, 'allow');
    assert.equal(policy.decideWrite(profileWrite('operations'), NOW).effect, 'allow');
    assertPurposeDenied(policy.decideWrite(profileWrite('cron-warmup'), NOW), 'cron-warmup');
  });

  test('POL-PURPOSE-01 comes after POL-SCOPE-01 and POL-CTX-01: a missing purpose is POL-CTX-01', () => {
    const policy = samplePolicy();
    const missing = policy.decideRead(chartRead(undefined), NOW);
    assert.equal(missing.effect === 'deny' && missing.rule, 'POL-CTX-01');
    const unscoped = policy.decideWrite(chartWrite({ scope: { tenant: 't1' }, purpose: 'marketing' }), NOW);
    assert.equal(unscoped.effect === 'deny' && unscoped.rule, 'POL-SCOPE-01');
    const tagged = policy.decideWrite(chartWrite({ tagKinds: ['ward'], purpose: 'marketing' }), NOW);
    assert.equal(tagged.effect === 'deny' && tagged.rule, 'POL-PURPOSE-01');
  });

  test('POL-PURPOSE-01: policy/default.yaml declares treatment, payment and operations', async () => {
    const text = await readFile(defaultPolicyPath, 'utf8');
    assert.match(text, /^purposes: \[treatment, payment, operations\]$/m);
    assert.deepEqual(parsePolicy(text, 'default.yaml').purposes, ['treatment', 'payment', 'operations']);
  });

  test('the policy digest covers the purposes: widening them is a different policy', () => {
    const tpo = policyDigest(samplePolicy());
    assert.equal(policyDigest(parsePolicy(withPurposes('[treatment, payment, operations]'), 'p')), tpo);
    assert.notEqual(policyDigest(parsePolicy(withPurposes('[treatment, payment, operations, x]'), 'p')), tpo);
  });
});

describe('POL-SCHEMA-01 a bad purposes list', () => {
  const cases: { list: string; path: string; message: RegExp }[] = [
    { list: '[]', path: 'purposes', message: /at least one purpose/ },
    { list: '[treatment, treatment]', path: 'purposes', message: /must not repeat/ },
    { list: '[treatment, "care team"]', path: 'purposes[1]', message: /letters, digits/ },
    { list: '[treatment, "1st-line"]', path: 'purposes[1]', message: /starting with a letter/ },
    { list: `[${'a'.repeat(65)}]`, path: 'purposes[0]', message: /at most 64/ },
    { list: '[treatment, 42]', path: 'purposes[1]', message: /string/ },
    { list: '[treatment, "line\\nbreak"]', path: 'purposes[1]', message: /letters, digits/ },
    { list: 'treatment', path: 'purposes', message: /array/ },
  ];
  for (const { list, path, message } of cases) {
    test(`POL-SCHEMA-01: lint reports purposes: ${list.slice(0, 40)} at ${path}, line 2`, () => {
      const report = lintPolicy(withPurposes(list), 'p.yaml', NOW);
      assert.equal(report.ok, false);
      const finding = report.findings.find((f) => f.path === path);
      assert.ok(finding, `a finding at ${path}: ${JSON.stringify(report.findings)}`);
      assert.equal(finding.rule, 'POL-SCHEMA-01');
      assert.equal(finding.severity, 'error');
      assert.equal(finding.line, 2);
      assert.match(finding.message, message);
    });
  }

  test('POL-SCHEMA-01: a policy with a bad purposes list does not load', () => {
    assert.throws(() => parsePolicy(withPurposes('[]'), 'p.yaml'), PolicyInvalidError);
  });

  test('POL-SCHEMA-01: a good purposes list lints clean', () => {
    const report = lintPolicy(withPurposes('[treatment, ETREAT, public-health]'), 'p.yaml', NOW);
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    assert.deepEqual(
      report.findings.filter((f) => f.path.startsWith('purposes')),
      [],
    );
  });
});
