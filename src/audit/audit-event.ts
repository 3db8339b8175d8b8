/**
 * One audit event: who did what to which entry, when, why, under which key, with which policy decision and what
 * outcome. It never holds a value or a raw patient id: entries are named by the HMAC of their reference.
 */

export type AuditStream = 'access' | 'admin';

/** Every stream of a chain, in the order they are opened, checkpointed and closed. */
export const STREAMS: readonly AuditStream[] = ['access', 'admin'];

export type AuditAction =
  | 'get'
  | 'set'
  | 'delete'
  | 'purge.tag'
  | 'purge.scope'
  | 'purge.tenant'
  | 'key.create'
  | 'key.damaged'
  | 'key.rotate'
  | 'key.publish'
  | 'key.promote'
  | 'key.rekey'
  | 'key.rewrap'
  | 'key.reencrypt'
  | 'key.retire'
  | 'snapshot.create'
  | 'snapshot.restore'
  | 'policy.load'
  | 'audit.open'
  | 'audit.outage';

export type AuditOutcome =
  | {
      readonly result: 'hit' | 'miss' | 'ok' | 'dropped' | 'denied';
      readonly code?: string;
      readonly count?: number;
    }
  | { readonly result: 'error'; readonly code: string };

export interface AuditEvent {
  readonly v: 1;
  readonly stream: AuditStream;
  /** ISO 8601 with milliseconds, UTC. */
  readonly ts: string;
  /**
   * `ts` in milliseconds since the epoch, when the emitter has it: the trail then need not parse `ts` back. The two
   * must name the same instant; the record's `ts` is written from this one.
   */
  readonly at?: number;
  readonly actor: { readonly service: string; readonly principal: string | null };
  readonly purpose: string | null;
  readonly tenant: string;
  readonly class: string | null;
  readonly action: AuditAction;
  /** `hmac-sha256:<base64url>` of the entry reference (class, resource, id), as `phicache audit hash` prints it. */
  readonly key: string | null;
  /** The KEK id and version involved, if any. */
  readonly kid: string | null;
  /** The DEK id involved, if any. */
  readonly dek: string | null;
  readonly decision: { readonly effect: 'allow' | 'deny'; readonly rule: string } | null;
  readonly outcome: AuditOutcome;
  /** Ids and counts that explain an admin action (a policy digest, a sink list); never a value. */
  readonly detail?: Readonly<Record<string, string | number>>;
}

/** Admin actions go to their own stream, so access volume never buries a key or purge event. */
export function streamOf(action: AuditAction): AuditStream {
  return action === 'get' || action === 'set' || action === 'delete' ? 'access' : 'admin';
}
