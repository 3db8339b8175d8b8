import type { AuditAction, AuditEvent, AuditOutcome } from './audit-event.js';
import { streamOf } from './audit-event.js';
import { isoOf } from './iso-time.js';

/** One cache operation as the cache knows it when it records it. */
export interface CacheFacts {
  readonly action: AuditAction;
  /** The class name as the caller gave it; recorded only if the policy declares it. */
  readonly className: string | null;
  readonly ctx: { readonly tenant: string; readonly principal?: string; readonly purpose?: string };
  readonly key: string | null;
  readonly dek: { readonly kid: string; readonly id: string | null } | null;
  readonly decision: { readonly effect: 'allow' | 'deny'; readonly rule: string } | null;
  readonly outcome: AuditOutcome;
  readonly detail?: AuditEvent['detail'];
}

/**
 * The audit event of one cache operation: ids, hashes, codes and the decision; never a value. `className` is the
 * class to record (null for a name the policy does not declare). Built field by field: it runs on every operation.
 */
export function auditEventOf(
  facts: CacheFacts,
  service: string,
  at: number,
  className: string | null,
): AuditEvent {
  const { ctx, dek, decision } = facts;
  const event: AuditEvent = {
    v: 1,
    stream: streamOf(facts.action),
    ts: isoOf(at),
    at,
    actor: { service, principal: ctx.principal ?? null },
    purpose: ctx.purpose ?? null,
    tenant: ctx.tenant,
    class: className,
    action: facts.action,
    key: facts.key,
    kid: dek === null ? null : dek.kid,
    dek: dek === null ? null : dek.id,
    decision: decision === null ? null : { effect: decision.effect, rule: decision.rule },
    outcome: facts.outcome,
  };
  return facts.detail === undefined ? event : { ...event, detail: facts.detail };
}
