import type { AuditStream } from '../audit-event.js';
import type { AuditDurability } from '../durability.js';
import type { Checkpoint } from '../record.js';

/** Consecutive records of one chain and stream, sealed together and handed to every sink at once. */
export interface RecordBatch {
  readonly chain: string;
  readonly stream: AuditStream;
  readonly firstSeq: number;
  readonly lastSeq: number;
  /** The record lines, each ending in `\n`. */
  readonly text: string;
  /** When the sink may answer: `durable` once the batch is on disk, `written` once the OS has it. */
  readonly level: AuditDurability;
  /** For `written`: the batch is on disk at most this many ms later (and before a checkpoint covering it). */
  readonly syncWithinMs: number;
  /** The first batch after an outage or a restart: a file sink starts a new records file (a new segment) with it. */
  readonly newSegment: boolean;
}

/**
 * Where chained records and checkpoints go. A sink receives the batches of one chain and stream in order, one at a
 * time, and resolves each once it holds the batch at the batch's level (a collector's acknowledgement counts as
 * durable when `durable` is true). A sink that rejects a batch must not keep any of it: the trail will hand the
 * same sequence numbers again in a later batch. A sink that took a batch at its level before returning (a file
 * sink's `written` batch, handed to the operating system by write(2)) may return undefined instead of a settled
 * promise: the trail then answers the batch's callers at once. Checkpoints are always durable when they resolve.
 */
export interface RecordSink {
  readonly name: string;
  readonly durable: boolean;
  appendBatch(batch: RecordBatch): Promise<void> | undefined;
  appendCheckpoint(checkpoint: Checkpoint, line: string): Promise<void>;
  close(): Promise<void>;
}
