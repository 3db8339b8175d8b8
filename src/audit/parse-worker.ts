import { parentPort, workerData } from 'node:worker_threads';
import { type BatchLines, type BatchSummary, summarizeBatch } from './batch-summary.js';
import { decodeLines } from './read-log.js';

/** What the pool gives the threads it starts, so that no other thread that loads this file answers its messages. */
export const PARSE_THREAD = 'phicache-parse-thread';

/** A batch to parse, numbered by the pool, and the chain and stream its records must belong to. */
export type BatchRequest = BatchLines & {
  readonly id: number;
  readonly chain: string;
  readonly stream: string;
};

/** The summary of a batch, and the bytes it came as when it is not clean: the walk reads its lines then. */
export interface BatchAnswer {
  readonly id: number;
  readonly summary: BatchSummary;
  readonly bytes?: Uint8Array;
}

// Run as a thread of the verifier's pool (src/audit/parse-pool.ts); loaded any other way, it does nothing.
if (workerData === PARSE_THREAD && parentPort !== null) {
  parentPort.on('message', answer);
  // Loaded: the pool may count on this thread.
  parentPort.postMessage(PARSE_THREAD);
}

function answer(request: BatchRequest): void {
  const lines = 'lines' in request ? request.lines : decodeLines(request.bytes);
  const summary = summarizeBatch(lines, request.chain, request.stream);
  if (summary.clean || 'lines' in request) {
    const reply: BatchAnswer = { id: request.id, summary };
    parentPort!.postMessage(reply);
  } else {
    const reply: BatchAnswer = { id: request.id, summary, bytes: request.bytes };
    parentPort!.postMessage(reply, [request.bytes.buffer as ArrayBuffer]);
  }
}
