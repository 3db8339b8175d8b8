import type { PhiCacheErrorCode } from '../errors.js';

/**
 * Every rule the policy enforces, by id. The id appears at its enforcement point and in the title of the test that
 * proves it, so an auditor can go from an audit record's `decision.rule` to the code and the evidence.
 */

/** Rules that refuse a request, each with the error code the caller throws after auditing the refusal. */
export const denyRules = {
  /** The request names a data class the policy does not declare. */
  'POL-CLASS-01': 'ERR_POLICY_UNKNOWN_CLASS',
  /** The class may not be cached, and no exception allows it. */
  'POL-CACHE-01': 'ERR_POLICY_NOT_CACHEABLE',
  /** Only an exception for the class would have allowed the request, and that exception has expired. */
  'POL-EXC-01': 'ERR_POLICY_EXCEPTION_EXPIRED',
  /** The TTL is over the class cap (a TTL that is not a positive integer is a RangeError, not a refusal). */
  'PHI-TTL-01': 'ERR_POLICY_TTL_EXCEEDED',
  /** A scope part the class requires (tenant, user, session) is missing or empty. */
  'POL-SCOPE-01': 'ERR_POLICY_SCOPE_MISSING',
  /** A PHI class is accessed without a principal (who) and a purpose (why). */
  'POL-CTX-01': 'ERR_POLICY_CONTEXT_MISSING',
  /**
   * The access gives a purpose the policy does not declare under `purposes` (any class, PHI or not: a purpose that
   * is given is always checked). The purpose itself is caller input and is neither echoed nor recorded.
   */
  'POL-PURPOSE-01': 'ERR_POLICY_PURPOSE_UNKNOWN',
  /**
   * The value does not serialize to JSON: JSON.stringify yields nothing (undefined, a function, a symbol, a
   * `toJSON` that returns undefined) or throws (a cycle, a BigInt, a throwing getter), or it nests deeper than
   * MAX_VALUE_DEPTH (100) levels.
   */
  'POL-VALUE-01': 'ERR_VALUE_NOT_SERIALIZABLE',
  /**
   * A field path outside the allow list of an `others: reject` class (PHI nested under an allowed name counts), or
   * a value that does not serialize to an object for a class with fields.
   */
  'POL-FIELD-01': 'ERR_POLICY_FIELD_FORBIDDEN',
  /** A tag kind the class does not declare under `tags`. */
  'POL-TAG-01': 'ERR_POLICY_TAG_NOT_ALLOWED',
} as const satisfies Record<string, PhiCacheErrorCode>;

export type DenyRuleId = keyof typeof denyRules;

/** Rules that allow a request. */
export const allowRules = {
  /** Allowed by the data class alone. */
  'POL-ALLOW-01': 'allowed by the data class',
  /** Allowed only because an active exception lifts a limit of the class. */
  'POL-ALLOW-02': 'allowed under an active policy exception',
  /** A purge (by tag, scope or tenant): removing cached data is always allowed, and always audited. */
  'POL-PURGE-01': 'purges are always allowed',
} as const;

export type AllowRuleId = keyof typeof allowRules;

/** Rules of `phicache policy lint` that are not decisions. `POL-EXC-01` also reports an expired exception. */
export const lintRules = {
  /** The file is not well-formed YAML (or JSON). */
  'POL-YAML-01': 'the policy file is not well-formed YAML',
  /** The document does not match the policy schema, or refers to something it does not declare. */
  'POL-SCHEMA-01': 'the policy document does not match the schema',
  /** An exception expires within 14 days: renew it or get ready to stop relying on it (warning). */
  'POL-EXC-02': 'an exception expires soon',
  /** An exception runs for more than a year: a risk acceptance that long is no longer time-boxed (warning). */
  'POL-EXC-03': 'an exception runs for more than a year',
} as const;

export type LintRuleId = keyof typeof lintRules | 'POL-EXC-01';

export type RuleId = DenyRuleId | AllowRuleId | LintRuleId;
