import type { Checkpoint } from '../record.js';
import { GroupCommit } from './group-commit.js';
import type { RecordBatch, RecordSink } from './record-sink.js';

export interface HttpForwarderOptions {
  /** The collector's endpoint for newline-delimited JSON (Fluent Bit `http` input, Vector `http_server`, ...). */
  readonly url: string;
  /** Extra headers, such as an authorization token. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Deadline of one POST, in ms. Default 5,000. */
  readonly timeoutMs?: number;
  /** Whether the collector's 2xx means the batch is durable on its side. Default true. */
  readonly durable?: boolean;
}

/**
 * Forwards records and checkpoints to a log collector over HTTP, in batches: one POST of NDJSON carries every line
 * that arrived while the previous POST was in flight. The collector then also witnesses the checkpoints.
 */
export class HttpForwarder implements RecordSink {
  readonly name = 'http';
  readonly durable: boolean;
  readonly #url: string;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #timeoutMs: number;
  readonly #batches = new GroupCommit((text) => this.#post(text));

  constructor(options: HttpForwarderOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new TypeError('the forwarder needs an http(s) URL');
    this.#url = url.href;
    this.#headers = { ...options.headers };
    this.#timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isSafeInteger(this.#timeoutMs) || this.#timeoutMs < 1)
      throw new RangeError('timeoutMs must be a positive integer');
    this.durable = options.durable ?? true;
  }

  /** A batch is acknowledged when the collector answered 2xx (durable at either level when `durable` is set). */
  appendBatch(batch: RecordBatch): Promise<void> {
    return this.#batches.push(batch.text);
  }

  appendCheckpoint(_checkpoint: Checkpoint, line: string): Promise<void> {
    return this.#batches.push(`${line}\n`);
  }

  async close(): Promise<void> {
    await this.#batches.idle();
  }

  async #post(body: string): Promise<void> {
    const response = await fetch(this.#url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', ...this.#headers },
      body,
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    await response.body?.cancel();
    if (!response.ok) throw new Error(`collector answered ${response.status}`);
  }
}
