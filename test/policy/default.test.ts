import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { defaultPolicyPath, loadDefaultPolicy } from '../../src/policy/default.js';
import { lintPolicy } from '../../src/policy/lint.js';

test('the default policy loads with the six classes of the source documents and their caps', async () => {
  const policy = await loadDefaultPolicy();
  assert.deepEqual([...policy.classes.keys()].sort(), [
    'encrypted-phi',
    'feature-flag',
    'full-patient-record',
    'job-reference',
    'rate-limit-counter',
    'session-token',
  ]);
  const session = policy.dataClass('session-token');
  assert.equal(session?.maxTtlMs, 1_800_000);
  assert.equal(session?.phi, false);
  assert.deepEqual(session?.scope, ['tenant', 'session']);
  assert.deepEqual(session?.fields, {
    allow: [
      'sid',
      'subject',
      'tenant',
      'roles',
      'issuedAt',
      'csrfToken',
      'cookie.originalMaxAge',
      'cookie.originalExpires',
      'cookie.expires',
      'cookie.secure',
      'cookie.httpOnly',
      'cookie.path',
      'cookie.domain',
      'cookie.sameSite',
      'cookie.partitioned',
      'cookie.priority',
    ],
    others: 'reject',
  });
  assert.equal(session?.failureMode, 'miss');

  const phi = policy.dataClass('encrypted-phi');
  assert.equal(phi?.maxTtlMs, 300_000);
  assert.equal(phi?.phi, true);
  assert.deepEqual(phi?.scope, ['tenant', 'user']);
  assert.deepEqual(phi?.tags, ['patient', 'encounter']);
  assert.equal(phi?.failureMode, 'closed');

  const record = policy.dataClass('full-patient-record');
  assert.equal(record?.cacheable, false);
  assert.equal(record?.phi, true);

  assert.equal(policy.dataClass('rate-limit-counter')?.failureMode, 'miss');
  assert.equal(policy.dataClass('job-reference')?.fields?.others, 'reject');
  assert.equal(policy.exceptions.length, 0);
});

test('POL-CACHE-01: the default policy refuses to cache a full patient record', async () => {
  const policy = await loadDefaultPolicy();
  const decision = policy.decideWrite(
    {
      className: 'full-patient-record',
      ttlMs: 1000,
      scope: { tenant: 't', user: 'u' },
      principal: 'p',
      purpose: 'treatment',
      value: {},
      tagKinds: [],
    },
    Date.now(),
  );
  assert.equal(decision.effect, 'deny');
  assert.equal(decision.rule, 'POL-CACHE-01');
  assert.equal(decision.effect === 'deny' && decision.code, 'ERR_POLICY_NOT_CACHEABLE');
});

test('the default policy lints clean', async () => {
  const report = lintPolicy(await readFile(defaultPolicyPath, 'utf8'), 'default.yaml', Date.now());
  assert.deepEqual(report.findings, []);
  assert.equal(report.ok, true);
});
