/**
 * The counter port of the rate limiter: one atomic step on one key per request. Keys arrive hashed (see
 * RateLimiter), and every counter a store keeps expires within one window.
 */

export type WindowAlgorithm = 'fixed' | 'sliding';

export interface CounterRequest {
  readonly key: string;
  readonly algorithm: WindowAlgorithm;
  readonly windowMs: number;
  readonly limit: number;
  /** The caller's wall clock in ms (scripts do not read the server's: a least-privilege ACL user may lack TIME). */
  readonly now: number;
}

export interface CounterHit {
  /**
   * This request's place in the window: allowed when it is at most the limit. A fixed window counts every request;
   * a sliding window counts only the ones it let through, so a refused request reads as `limit + 1`.
   */
  readonly count: number;
  /** Time until the window frees a slot (fixed: until it resets; sliding: until the oldest counted request leaves). */
  readonly resetMs: number;
}

export interface CounterStore {
  /** A short name for messages, such as `memory` or `redis`. */
  readonly name: string;
  /** Counts one request, atomically. Rejects with `ERR_STORE_UNAVAILABLE` when the store cannot answer. */
  hit(request: CounterRequest): Promise<CounterHit>;
  close(): Promise<void>;
}
