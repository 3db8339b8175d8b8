import { createHash } from 'node:crypto';
import { canonicalJson } from '../audit/canonical-json.js';
import type { Policy } from './policy.js';

/**
 * Which policy an instance enforces, as evidence: SHA-256 of its classes, exceptions and purposes of use in
 * canonical JSON. Purposes are part of it because widening them widens who may read PHI and why.
 */
export function policyDigest(policy: Policy): string {
  const document = canonicalJson({
    classes: [...policy.classes.values()],
    exceptions: [...policy.exceptions],
    purposes: [...policy.purposes],
  });
  return `sha256:${createHash('sha256').update(document).digest('hex')}`;
}

/** The longest an entry of any class may live under this policy, exceptions included, in ms. */
export function longestCapMs(policy: Policy): number {
  let longest = 0;
  for (const dataClass of policy.classes.values()) longest = Math.max(longest, dataClass.maxTtlMs);
  for (const exception of policy.exceptions) longest = Math.max(longest, exception.maxTtlMs ?? 0);
  return longest;
}
