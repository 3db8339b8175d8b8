import type { Writable } from 'node:stream';
import type { AuditRecord, Checkpoint } from '../record.js';
import type { RecordSink } from './record-sink.js';

/** One JSON line per record and checkpoint on stdout, for platforms that collect container output. Not durable. */
export class StdoutSink implements RecordSink {
  readonly name = 'stdout';
  readonly durable = false;
  readonly #out: Writable;

  constructor(out: Writable = process.stdout) {
    this.#out = out;
  }

  append(_record: AuditRecord, line: string): Promise<void> {
    return this.#write(line);
  }

  appendCheckpoint(_checkpoint: Checkpoint, line: string): Promise<void> {
    return this.#write(line);
  }

  async close(): Promise<void> {}

  #write(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#out.write(`${line}\n`, (error) => (error ? reject(error) : resolve()));
    });
  }
}
