import type { AuditRecord, Checkpoint } from '../../src/audit/record.js';
import type { RecordSink } from '../../src/audit/sinks/record-sink.js';

/** A durable sink that keeps the lines it gets, and fails on demand (a full disk, a collector down). */
export class SwitchableSink implements RecordSink {
  readonly name: string;
  readonly durable = true;
  readonly lines: string[] = [];
  down = false;

  constructor(name: string) {
    this.name = name;
  }

  async append(_record: AuditRecord, line: string): Promise<void> {
    this.#take(line);
  }

  async appendCheckpoint(_checkpoint: Checkpoint, line: string): Promise<void> {
    this.#take(line);
  }

  async close(): Promise<void> {}

  #take(line: string): void {
    if (this.down) throw new Error(`sink ${this.name} is down`);
    this.lines.push(line);
  }
}
