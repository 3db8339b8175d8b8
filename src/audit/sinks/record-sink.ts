import type { AuditRecord, Checkpoint } from '../record.js';

/**
 * Where chained records and checkpoints go. A sink receives the lines of one chain and stream in order and resolves
 * each append once it holds the line: durably (fsync'd, or acknowledged by a collector) when `durable` is true.
 */
export interface RecordSink {
  readonly name: string;
  readonly durable: boolean;
  append(record: AuditRecord, line: string): Promise<void>;
  appendCheckpoint(checkpoint: Checkpoint, line: string): Promise<void>;
  close(): Promise<void>;
}
