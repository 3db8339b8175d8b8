import { PhiCacheError } from '../errors.js';
import { policyDigest } from '../policy/digest.js';
import type { Policy } from '../policy/policy.js';
import { auditEventOf, type CacheFacts } from './access-event.js';
import type { AuditSink } from './audit-sink.js';

/**
 * Records what a PhiCache does, fail-closed: an operation whose record the sink did not take fails with
 * ERR_AUDIT_UNAVAILABLE (promise PHI-AUDIT-01), whatever the class's failure mode.
 */
export class CacheAuditor {
  readonly #sink: AuditSink;
  readonly #service: string;
  readonly #clock: () => number;
  readonly #policy: Policy;

  constructor(sink: AuditSink, service: string, clock: () => number, policy: Policy) {
    this.#sink = sink;
    this.#service = service;
    this.#clock = clock;
    this.#policy = policy;
  }

  record(facts: CacheFacts): Promise<void> {
    const { className } = facts;
    // An undeclared class name is caller input and may hold anything; the rule id POL-CLASS-01 says enough.
    const declared = className !== null && this.#policy.dataClass(className) !== undefined ? className : null;
    const event = auditEventOf(facts, this.#service, this.#clock(), declared);
    let written: Promise<void>;
    try {
      written = this.#sink.write(event);
    } catch (cause) {
      written = Promise.reject(cause);
    }
    // Without an async function around it: one derived promise, and the error is typed only when there is one.
    return written.then(undefined, (cause: unknown) => {
      throw new PhiCacheError('ERR_AUDIT_UNAVAILABLE', `the audit sink failed to record ${facts.action}`, {
        cause,
      });
    });
  }

  /** Which policy this instance enforces is evidence too: its digest goes to the admin stream at start. */
  policyLoaded(): Promise<void> {
    return this.record({
      action: 'policy.load',
      className: null,
      ctx: { tenant: '*', principal: this.#service, purpose: 'policy-load' },
      key: null,
      dek: null,
      decision: null,
      outcome: { result: 'ok' },
      detail: {
        classes: this.#policy.classes.size,
        exceptions: this.#policy.exceptions.length,
        digest: policyDigest(this.#policy),
      },
    });
  }

  /** A data key made, or found damaged: admin records with the key's ids, never its material. */
  dataKey(
    action: 'key.create' | 'key.damaged',
    dek: { readonly tenant: string; readonly className: string; readonly kid: string; readonly id: string },
  ): Promise<void> {
    return this.record({
      action,
      className: dek.className,
      ctx: { tenant: dek.tenant, principal: this.#service, purpose: 'key-management' },
      key: null,
      dek,
      decision: null,
      outcome: { result: 'ok' },
    });
  }

  /**
   * A key state change or a rotation step (publish, promote, rekey, rewrap, re-encrypt, retire): an admin record
   * with the KEK version it concerns and ids and counts that explain it. It is written before the caller reports
   * success; an outcome other than ok records a refusal.
   */
  keyState(
    action: 'key.publish' | 'key.promote' | 'key.rekey' | 'key.rewrap' | 'key.reencrypt' | 'key.retire',
    kid: string,
    principal: string,
    outcome: CacheFacts['outcome'],
    detail: Readonly<Record<string, string | number>>,
  ): Promise<void> {
    return this.record({
      action,
      className: null,
      ctx: { tenant: '*', principal, purpose: 'key-management' },
      key: null,
      dek: { kid, id: null },
      decision: null,
      outcome,
      detail,
    });
  }

  close(): Promise<void> {
    return this.#sink.close();
  }
}
