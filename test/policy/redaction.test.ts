import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PolicyDeniedError } from '../../src/errors.js';
import type { PolicyDecision, WriteRequest } from '../../src/policy/policy.js';
import { AFTER, chartWrite, NOW, samplePolicy } from './sample-policy.js';

/** A fake patient: every one of these strings is caller data that must never reach a denial. */
const patient = {
  name: 'Maria Garcia-Lopez',
  ssn: '078-05-1120',
  mrn: 'MRN-00424242',
  dob: '1961-04-09',
};
const secrets = Object.values(patient);

const policy = samplePolicy();

/** JSON.stringify names the property that closes a cycle in its message: here, a patient's name. */
const cycle: Record<string, unknown> = { sid: 's1' };
cycle[patient.name] = { [patient.ssn]: cycle };

/** One request per deny rule, each stuffed with the patient's identifiers wherever a caller could put them. */
const writes: [string, WriteRequest, number][] = [
  ['POL-CLASS-01', chartWrite({ className: patient.name }), NOW],
  ['POL-CACHE-01', chartWrite({ className: 'record', scope: { tenant: patient.mrn }, value: patient }), NOW],
  ['POL-EXC-01', chartWrite({ scope: { tenant: patient.mrn, user: patient.ssn }, ttlMs: 900_000 }), AFTER],
  ['PHI-TTL-01', chartWrite({ scope: { tenant: patient.mrn, user: patient.ssn }, ttlMs: 3_600_000 }), NOW],
  ['POL-SCOPE-01', chartWrite({ scope: { tenant: patient.mrn, session: patient.ssn } }), NOW],
  ['POL-CTX-01', chartWrite({ scope: { tenant: patient.mrn, user: patient.ssn }, purpose: undefined }), NOW],
  ['POL-TAG-01', chartWrite({ tagKinds: [patient.name, patient.ssn] }), NOW],
  [
    'POL-FIELD-01',
    {
      ...chartWrite(),
      className: 'session',
      scope: { tenant: patient.mrn, session: patient.ssn },
      principal: patient.name,
      tagKinds: [],
      // A field NAME can be PHI too: a patient's name used as a key.
      value: { sid: 's1', [patient.name]: patient.ssn, [patient.mrn]: patient.dob },
    },
    NOW,
  ],
  ['POL-VALUE-01', chartWrite({ scope: { tenant: patient.mrn, user: patient.ssn }, value: cycle }), NOW],
  [
    'POL-FIELD-01',
    {
      ...chartWrite(),
      className: 'session',
      scope: { tenant: 't', session: 's' },
      value: patient.ssn,
      tagKinds: [],
    },
    NOW,
  ],
];

test('denial reasons and decisions carry no caller value: POL-CLASS-01, POL-CACHE-01, POL-EXC-01, PHI-TTL-01, POL-SCOPE-01, POL-CTX-01, POL-TAG-01, POL-VALUE-01, POL-FIELD-01', () => {
  for (const [rule, request, now] of writes) {
    const decision: PolicyDecision = policy.decideWrite(request, now);
    assert.equal(decision.effect, 'deny', rule);
    if (decision.effect !== 'deny') continue;
    assert.equal(decision.rule, rule);
    const error = new PolicyDeniedError(decision.code, decision.rule, decision.reason);
    for (const secret of secrets) {
      assert.ok(!decision.reason.includes(secret), `${rule} reason leaks a caller value`);
      assert.ok(!JSON.stringify(decision).includes(secret), `${rule} decision leaks a caller value`);
      assert.ok(!error.message.includes(secret), `${rule} error message leaks a caller value`);
    }
  }
});

test('POL-FIELD-01: the reason counts forbidden fields instead of naming them', () => {
  const [, request] = writes.find(([rule]) => rule === 'POL-FIELD-01') ?? assert.fail('no field case');
  const decision = policy.decideWrite(request, NOW);
  assert.equal(decision.effect, 'deny');
  assert.equal(decision.rule, 'POL-FIELD-01');
  assert.match(decision.effect === 'deny' ? decision.reason : '', /2 fields/);
});
