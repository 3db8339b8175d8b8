/**
 * The promises the session store keeps, by id. Each id appears at its enforcement point in src/session/ and in the
 * title of the test that proves it, as the policy's rule ids do (a test keeps the three in step).
 */
export const sessionRules = {
  /** Session data that looks like PHI (field names or values, the shared detectors) is refused before any write. */
  'PHI-SESSION-01': 'no PHI in session data',
  /** Every save and touch sets a TTL of at most the idle timeout and the cookie's remaining life. */
  'PHI-SESSION-02': 'idle timeout',
  /** A session ends its absolute timeout after issue, however often it is touched; the issue time is sealed. */
  'PHI-SESSION-03': 'absolute timeout',
  /** Destroy purges the session's whole scope, finally: a copy written back is refused. */
  'PHI-SESSION-04': 'destroy is final',
  /** A store outage: reads miss, a dropped save rejects, `disconnect` then `connect` once the store answers. */
  'PHI-SESSION-05': 'outage is visible',
  /** The raw session id never reaches the store: its entry and scope names are HMACs. */
  'PHI-SESSION-06': 'no raw session id in the store',
} as const;

export type SessionRuleId = keyof typeof sessionRules;
