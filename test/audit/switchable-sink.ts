import type { Checkpoint } from '../../src/audit/record.js';
import type { RecordBatch, RecordSink } from '../../src/audit/sinks/record-sink.js';

/**
 * A durable sink that keeps the lines it gets, and fails on demand (a full disk, a collector down): while `down`,
 * or for the next `failures` appends. Around a real sink (`inner`), it hands on what it does not refuse, so the
 * real sink's files show what the trail made of an outage.
 */
export class SwitchableSink implements RecordSink {
  readonly name: string;
  readonly durable = true;
  readonly lines: string[] = [];
  readonly inner: RecordSink | undefined;
  down = false;
  /** Appends still to refuse, records and checkpoints alike. */
  failures = 0;
  /** The code the refusals carry, as a failing file system would give it. */
  code = 'ENOSPC';

  constructor(name: string, inner?: RecordSink) {
    this.name = name;
    this.inner = inner;
  }

  async appendBatch(batch: RecordBatch): Promise<void> {
    this.#refuseIfDown();
    await this.inner?.appendBatch(batch);
    this.lines.push(...batch.text.slice(0, -1).split('\n'));
  }

  async appendCheckpoint(checkpoint: Checkpoint, line: string): Promise<void> {
    this.#refuseIfDown();
    await this.inner?.appendCheckpoint(checkpoint, line);
    this.lines.push(line);
  }

  async close(): Promise<void> {
    await this.inner?.close();
  }

  #refuseIfDown(): void {
    if (this.failures > 0) this.failures -= 1;
    else if (!this.down) return;
    throw Object.assign(new Error(`sink ${this.name} is down`), { code: this.code });
  }
}
