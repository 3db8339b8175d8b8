import type { Policy } from '../policy/policy.js';

/** Slack for clock skew and the grace a data-key record gets past its last entry (see DataKeys). */
const RECORD_GRACE_MS = 60_000;
/** Entries, data-key records and epoch pointers: the phicache keys whose TTL a class caps. */
const CAPPED_KEY = /^phc:([ekp]):([a-z][a-z0-9-]{0,62}):[A-Za-z0-9_-]{43}$/;

export type TtlVerdict =
  | { readonly kind: 'no-ttl' }
  | { readonly kind: 'within' }
  | { readonly kind: 'not-capped' }
  | { readonly kind: 'over-cap'; readonly className: string; readonly ttlMs: number; readonly capMs: number }
  | { readonly kind: 'unknown-class'; readonly className: string };

export interface TtlCapOptions {
  readonly policy: Policy;
  /** The writers' DEK epoch (PhiCache `dekEpochMs`), which bounds data-key records. */
  readonly dekEpochMs: number;
  /** Milliseconds since the epoch, for exceptions' expiry. */
  readonly now: number;
}

/**
 * What a key's PTTL says against the policy: no TTL at all (any key), or for a phicache entry more than its class
 * cap (raised by an active exception), and for a data-key record more than one DEK epoch plus that cap.
 */
export function judgeTtl(name: string, ttlMs: number, options: TtlCapOptions): TtlVerdict {
  if (ttlMs === -1) return { kind: 'no-ttl' };
  const match = CAPPED_KEY.exec(name);
  if (ttlMs < 0 || match === null) return { kind: 'not-capped' };
  const [, kind, className] = match as unknown as [string, string, string];
  const dataClass = options.policy.dataClass(className);
  if (dataClass === undefined) return { kind: 'unknown-class', className };
  const exceptionMs = options.policy.activeException(className, options.now)?.maxTtlMs ?? 0;
  const entryCapMs = Math.max(dataClass.maxTtlMs, exceptionMs);
  const capMs = kind === 'e' ? entryCapMs : options.dekEpochMs + entryCapMs + RECORD_GRACE_MS;
  return ttlMs > capMs ? { kind: 'over-cap', className, ttlMs, capMs } : { kind: 'within' };
}
