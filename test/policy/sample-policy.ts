import { parsePolicy } from '../../src/policy/load.js';
import type { Policy, WriteRequest } from '../../src/policy/policy.js';

/** The clock of the decision tests: both exceptions below are active at NOW and expired at AFTER. */
export const NOW = Date.parse('2026-06-01T12:00:00Z');
export const AFTER = Date.parse('2026-07-01T00:00:00Z');

export const samplePolicyText = `version: 1
classes:
  chart:
    description: PHI fragments for one user
    phi: true
    cacheable: true
    maxTtlSeconds: 300
    defaultTtlSeconds: 60
    scope: [tenant, user]
    tags: [patient, encounter]
  session:
    description: Login sessions
    phi: false
    cacheable: true
    maxTtlSeconds: 1800
    scope: [tenant, session]
    fields: { allow: [sid, roles], others: reject }
  profile:
    description: Display preferences; extra fields are dropped
    phi: false
    cacheable: true
    maxTtlSeconds: 600
    fields: { allow: [displayName, locale], others: strip }
  record:
    description: Never cached
    phi: true
    cacheable: false
  report:
    description: Not cacheable, except under EXC-REPORT-1
    phi: true
    cacheable: false
    scope: [tenant, user]
exceptions:
  - id: EXC-REPORT-1
    class: report
    owner: reporting-team
    reason: Month-end report rendering times out without a cache
    compensatingControl: Entries are per user and purged at logout
    expires: 2026-07-01
    allow: { cacheable: true, maxTtlSeconds: 120 }
  - id: EXC-CHART-TTL
    class: chart
    owner: clinical-apps
    reason: Ward round view needs entries to outlive a 15 minute round
    compensatingControl: Ward devices are shared-screen locked
    expires: 2026-07-01T00:00:00Z
    allow: { maxTtlSeconds: 900 }
`;

export function samplePolicy(): Policy {
  return parsePolicy(samplePolicyText, 'sample-policy.yaml');
}

/** A write that every rule allows for `chart`; tests change one thing at a time. */
export function chartWrite(overrides: Partial<WriteRequest> = {}): WriteRequest {
  return {
    className: 'chart',
    ttlMs: undefined,
    scope: { tenant: 't1', user: 'u1' },
    principal: 'clinician-7',
    purpose: 'treatment',
    value: { summary: 'ok' },
    tagKinds: ['patient'],
    ...overrides,
  };
}
