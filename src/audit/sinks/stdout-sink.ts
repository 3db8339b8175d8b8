import type { Writable } from 'node:stream';
import type { Checkpoint } from '../record.js';
import type { RecordBatch, RecordSink } from './record-sink.js';

/** One JSON line per record and checkpoint on stdout, for platforms that collect container output. Not durable. */
export class StdoutSink implements RecordSink {
  readonly name = 'stdout';
  readonly durable = false;
  readonly #out: Writable;

  constructor(out: Writable = process.stdout) {
    this.#out = out;
  }

  appendBatch(batch: RecordBatch): Promise<void> {
    return this.#write(batch.text);
  }

  appendCheckpoint(_checkpoint: Checkpoint, line: string): Promise<void> {
    return this.#write(`${line}\n`);
  }

  async close(): Promise<void> {}

  #write(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#out.write(text, (error) => (error ? reject(error) : resolve()));
    });
  }
}
