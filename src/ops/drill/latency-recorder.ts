/**
 * Per-operation latencies with their start times, kept in growing typed arrays: a minute of traffic at tens of
 * thousands of operations per second is millions of samples, and objects per sample would cost more memory and
 * garbage collection than the cache under test (and so distort what is measured).
 */
export class LatencyRecorder {
  #starts = new Float64Array(1 << 16);
  #latencies = new Float64Array(1 << 16);
  #count = 0;

  /** `startMs`: when the operation began, in ms since the drill's origin; `latencyMs`: how long it took. */
  record(startMs: number, latencyMs: number): void {
    if (this.#count === this.#starts.length) {
      this.#starts = grow(this.#starts);
      this.#latencies = grow(this.#latencies);
    }
    this.#starts[this.#count] = startMs;
    this.#latencies[this.#count] = latencyMs;
    this.#count += 1;
  }

  get count(): number {
    return this.#count;
  }

  /** Latency figures of the operations that started within [fromMs, toMs). */
  summary(fromMs: number, toMs: number): LatencySummary {
    return summarize(this.#between(fromMs, toMs));
  }

  /** Figures per bucket of `bucketMs` from `fromMs` to `toMs`, for the chart; empty buckets have `ops` 0. */
  buckets(fromMs: number, toMs: number, bucketMs: number): LatencyBucket[] {
    const n = Math.max(1, Math.ceil((toMs - fromMs) / bucketMs));
    const parts: number[][] = Array.from({ length: n }, () => []);
    for (let i = 0; i < this.#count; i++) {
      const start = this.#starts[i]!;
      if (start < fromMs || start >= toMs) continue;
      parts[Math.min(n - 1, Math.floor((start - fromMs) / bucketMs))]!.push(this.#latencies[i]!);
    }
    return parts.map((latencies, index) => ({
      startMs: fromMs + index * bucketMs,
      ...summarize(Float64Array.from(latencies)),
    }));
  }

  #between(fromMs: number, toMs: number): Float64Array {
    const out = new Float64Array(this.#count);
    let n = 0;
    for (let i = 0; i < this.#count; i++) {
      const start = this.#starts[i]!;
      if (start >= fromMs && start < toMs) out[n++] = this.#latencies[i]!;
    }
    return out.subarray(0, n);
  }
}

export interface LatencySummary {
  readonly ops: number;
  /** Milliseconds, to the microsecond; 0 when there were no operations. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface LatencyBucket extends LatencySummary {
  /** Since the drill's origin. */
  readonly startMs: number;
}

/** Nearest-rank percentiles: the value below which the given share of samples falls, one of the samples. */
export function summarize(latencies: Float64Array): LatencySummary {
  const ops = latencies.length;
  if (ops === 0) return { ops: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 };
  const sorted = Float64Array.from(latencies).sort();
  const rank = (p: number) => sorted[Math.min(ops - 1, Math.max(0, Math.ceil(p * ops) - 1))]!;
  return { ops, p50Ms: round(rank(0.5)), p99Ms: round(rank(0.99)), maxMs: round(sorted[ops - 1]!) };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function grow(array: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(array.length * 2);
  bigger.set(array);
  return bigger;
}
