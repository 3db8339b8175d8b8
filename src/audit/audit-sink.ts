import type { AuditEvent } from './audit-event.js';

/**
 * The AuditSink port. `write` resolves once the sink holds the event; PhiCache waits for it before it answers,
 * and refuses PHI operations when it rejects (fail-closed audit).
 */
export interface AuditSink {
  write(event: AuditEvent): Promise<void>;
  close(): Promise<void>;
}
