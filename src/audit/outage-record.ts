import type { AuditEvent, AuditStream } from './audit-event.js';
import { isoOf } from './iso-time.js';

/** A time no durable sink took a stream's records: since when, why, and how many records it refused. */
export interface Outage {
  readonly from: number;
  readonly cause: string;
  refused: number;
}

/** The record that opens the first batch taken after an outage: how long it lasted and how much it refused. */
export function outageEvent(stream: AuditStream, outage: Outage, now: number): AuditEvent {
  return {
    v: 1,
    stream,
    ts: isoOf(now),
    at: now,
    actor: { service: 'phicache', principal: null },
    purpose: 'audit-availability',
    tenant: '*',
    class: null,
    action: 'audit.outage',
    key: null,
    kid: null,
    dek: null,
    decision: null,
    outcome: { result: 'ok', count: outage.refused },
    detail: {
      cause: outage.cause,
      from: isoOf(outage.from),
      ms: Math.max(0, now - outage.from),
      refused: outage.refused,
      to: isoOf(now),
    },
  };
}

/** A short, safe name for what failed (`ENOSPC`, `EISDIR`, `ETIMEDOUT`): never a message, which may hold a path. */
export function causeName(cause: unknown): string {
  if (typeof cause === 'string') return cause;
  const first = cause instanceof AggregateError && cause.errors.length > 0 ? cause.errors[0] : cause;
  const code = (first as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(code)) return code;
  const name = (first as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^[A-Za-z0-9_]{1,40}$/.test(name) ? name : 'unknown';
}
