import { Worker } from 'node:worker_threads';
import { PhiCacheError } from '../errors.js';
import type { BatchLines, BatchSummary } from './batch-summary.js';
import { type BatchAnswer, type BatchRequest, PARSE_THREAD } from './parse-worker.js';

/**
 * Batches parsed by the threads of every pool of this process, and how many of them were clean: the tests read it
 * to know the threads did the work.
 */
export const parsedByThreads = { batches: 0, clean: 0 };

/** What a thread says of a batch, and the bytes it was sent when the batch is not clean (to be walked). */
export interface ParsedBatch {
  readonly summary: BatchSummary;
  readonly bytes?: Uint8Array;
}

interface Waiting {
  readonly resolve: (parsed: ParsedBatch) => void;
  readonly reject: (error: Error) => void;
}

interface Thread {
  readonly worker: Worker;
  readonly waiting: Map<number, Waiting>;
  /** The thread has loaded the parser and waits for batches. */
  ready: boolean;
}

/**
 * Threads that parse batches of record lines (src/audit/parse-worker.ts) while the verifier reads the next ones
 * and walks the chain: the parse, a canonical scan and a SHA-256 per line, is most of a walk's time, and depends on
 * nothing but the line. The threads start with the pool (one costs tens of ms) and a batch goes to the one with
 * the fewest waiting; each answers its batches in the order it got them.
 *
 * A thread that fails (an error, out of memory, stopped) fails every batch sent to it and every batch after:
 * the verification throws, it never reports a log it did not check. A thread holds the process open only while
 * a batch waits for it, so a pool left open by mistake cannot keep a command from ending; `close` stops them all.
 */
export class ParsePool {
  readonly size: number;
  readonly #threads: Thread[] = [];
  #failure: Error | undefined;
  #closed = false;
  #ids = 0;

  /** Starts `size` threads: each takes tens of ms to load the parser, while the caller goes on. */
  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 1)
      throw new RangeError('a parse pool needs at least one thread');
    this.size = size;
    for (let i = 0; i < size; i++) this.#threads.push(this.#start());
  }

  /** Threads that have loaded the parser: until one has, a batch sent waits for it to start. */
  get ready(): number {
    let ready = 0;
    for (const thread of this.#threads) if (thread.ready) ready += 1;
    return ready;
  }

  /** Batches sent and not answered yet. */
  get waiting(): number {
    let waiting = 0;
    for (const thread of this.#threads) waiting += thread.waiting.size;
    return waiting;
  }

  /**
   * The summary of a batch of record lines of a chain and stream. Bytes are moved to the thread, not copied: the
   * caller no longer has them. Rejects when a thread failed.
   */
  check(batch: BatchLines, chain: string, stream: string): Promise<ParsedBatch> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new Error('the parse pool is closed'));
    const thread = this.#pick();
    const id = ++this.#ids;
    return new Promise<ParsedBatch>((resolve, reject) => {
      thread.waiting.set(id, { resolve, reject });
      if (thread.waiting.size === 1) thread.worker.ref();
      if ('lines' in batch) {
        const request: BatchRequest = { id, lines: batch.lines, chain, stream };
        thread.worker.postMessage(request);
      } else {
        // Only a buffer of its own moves whole; a view of a larger one is copied first.
        const { bytes } = batch;
        const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
        const moved = own ? bytes : new Uint8Array(bytes);
        const request: BatchRequest = { id, bytes: moved, chain, stream };
        thread.worker.postMessage(request, [moved.buffer as ArrayBuffer]);
      }
    });
  }

  /** Stops every thread; a batch still waiting fails. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const stopped = new Error('the parse pool was closed before the batch was parsed');
    for (const thread of this.#threads) this.#rejectAll(thread, stopped);
    await Promise.all(this.#threads.map((thread) => thread.worker.terminate()));
  }

  /** The thread with the fewest batches waiting, a ready one first. */
  #pick(): Thread {
    let best = this.#threads[0]!;
    for (const thread of this.#threads) {
      if (
        (thread.ready && !best.ready) ||
        (thread.ready === best.ready && thread.waiting.size < best.waiting.size)
      )
        best = thread;
    }
    return best;
  }

  #start(): Thread {
    // tsc writes src/audit/*.ts to build/src/audit/*.js side by side: the thread's body is next to this file.
    const worker = new Worker(new URL('./parse-worker.js', import.meta.url), { workerData: PARSE_THREAD });
    const thread: Thread = { worker, waiting: new Map(), ready: false };
    worker.unref();
    worker.on('message', (answer: BatchAnswer | typeof PARSE_THREAD) => {
      if (answer === PARSE_THREAD) {
        thread.ready = true;
        return;
      }
      const waiting = thread.waiting.get(answer.id);
      if (waiting === undefined) return;
      thread.waiting.delete(answer.id);
      if (thread.waiting.size === 0) worker.unref();
      parsedByThreads.batches += 1;
      if (answer.summary.clean) parsedByThreads.clean += 1;
      waiting.resolve(answer.bytes === undefined ? { summary: answer.summary } : answer);
    });
    worker.on('error', (error) => this.#fail(`failed: ${error.message}`, error));
    worker.on('messageerror', (error) => this.#fail('sent an answer that could not be read', error));
    worker.on('exit', (code) => {
      if (!this.#closed) this.#fail(`stopped (exit code ${code})`);
    });
    return thread;
  }

  #fail(what: string, cause?: unknown): void {
    const failure = new PhiCacheError(
      'ERR_INTERNAL',
      `a thread that parses audit records ${what}: the log was not verified`,
      {
        ...(cause === undefined ? {} : { cause }),
        hint: 'Run the check again; if the thread ran out of memory, verify with `threads: 0` (one thread).',
      },
    );
    this.#failure ??= failure;
    for (const thread of this.#threads) this.#rejectAll(thread, this.#failure);
  }

  #rejectAll(thread: Thread, error: Error): void {
    const waiting = [...thread.waiting.values()];
    thread.waiting.clear();
    thread.worker.unref();
    for (const { reject } of waiting) reject(error);
  }
}
