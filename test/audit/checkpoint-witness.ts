import type { AuditStream } from '../../src/audit/audit-event.js';
import type { Checkpoint } from '../../src/audit/record.js';
import type { RecordSink } from '../../src/audit/sinks/record-sink.js';

/**
 * A non-durable sink, like a collector that witnesses checkpoints, that lets a test wait for the checkpoints
 * themselves rather than for a time in which they should have come.
 */
export class CheckpointWitness implements RecordSink {
  readonly name = 'witness';
  readonly durable = false;
  readonly checkpoints: Checkpoint[] = [];
  readonly #waiters: { stream: AuditStream; count: number; resolve: () => void }[] = [];

  async appendBatch(): Promise<void> {}

  async appendCheckpoint(checkpoint: Checkpoint, _line: string): Promise<void> {
    this.checkpoints.push(checkpoint);
    for (const waiter of [...this.#waiters]) {
      if (this.#count(waiter.stream) < waiter.count) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }

  async close(): Promise<void> {}

  /** Resolves once `count` checkpoints of `stream` have arrived. */
  seen(stream: AuditStream, count: number): Promise<void> {
    if (this.#count(stream) >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ stream, count, resolve }));
  }

  #count(stream: AuditStream): number {
    return this.checkpoints.filter((checkpoint) => checkpoint.stream === stream).length;
  }
}
