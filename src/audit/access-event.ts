import type { AuditAction, AuditEvent, AuditOutcome } from './audit-event.js';
import { streamOf } from './audit-event.js';

/** What the cache knows about one operation when it records it. */
export interface OperationFacts {
  readonly service: string;
  readonly at: number;
  readonly action: AuditAction;
  readonly tenant: string;
  readonly principal: string | undefined;
  readonly purpose: string | undefined;
  /** A declared class name, or null (an undeclared name is caller input and is never recorded). */
  readonly className: string | null;
  readonly key: string | null;
  readonly dek: { readonly kid: string; readonly id: string } | null;
  readonly decision: { readonly effect: 'allow' | 'deny'; readonly rule: string } | null;
  readonly outcome: AuditOutcome;
  readonly detail?: AuditEvent['detail'];
}

/** The audit event of one cache operation: ids, hashes, codes and the decision; never a value. */
export function auditEventOf(facts: OperationFacts): AuditEvent {
  return {
    v: 1,
    stream: streamOf(facts.action),
    ts: new Date(facts.at).toISOString(),
    actor: { service: facts.service, principal: facts.principal ?? null },
    purpose: facts.purpose ?? null,
    tenant: facts.tenant,
    class: facts.className,
    action: facts.action,
    key: facts.key,
    kid: facts.dek?.kid ?? null,
    dek: facts.dek?.id ?? null,
    decision: facts.decision === null ? null : { effect: facts.decision.effect, rule: facts.decision.rule },
    outcome: facts.outcome,
    ...(facts.detail === undefined ? {} : { detail: facts.detail }),
  };
}
