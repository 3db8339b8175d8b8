import type { AuditEvent } from './audit-event.js';
import type { AuditSink } from './audit-sink.js';

/** Keeps events in an array: for tests and for applications that forward events themselves. */
export class MemoryAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];

  async write(event: AuditEvent): Promise<void> {
    this.events.push(event);
  }

  async close(): Promise<void> {}
}
