import { createHmac } from 'node:crypto';
import { integerOption } from '../options.js';
import type { CounterStore, WindowAlgorithm } from './counter-store.js';

export interface RateLimiterOptions {
  /** Where the counters live: `new MemoryCounters()` for one process, `new RedisCounters(commands)` for a fleet. */
  readonly store: CounterStore;
  /** The limit's name: shown in the `RateLimit-Policy` header and mixed into every key. 1-32 of [a-z0-9-]. */
  readonly name: string;
  /** Requests allowed per window per identity. 1..1,000,000. */
  readonly limit: number;
  /** The window in ms. 1,000..86,400,000. */
  readonly windowMs: number;
  /** `fixed` (default): a counter per window, cheapest. `sliding`: the last `windowMs` at every instant, no bursts at the edge. */
  readonly algorithm?: WindowAlgorithm;
  /**
   * What a request gets when the counter store cannot answer, and there is no default because both are wrong for
   * someone: `open` lets it through (availability: a login page stays up), `closed` refuses it (an endpoint that must
   * never go unlimited). Either way the result says the store failed; it never reads as "limited".
   */
  readonly whenStoreDown: 'open' | 'closed';
  /**
   * The HMAC key that turns an identity (an IP address, a user id) into a counter key, at least 32 bytes. Every
   * instance sharing the counters needs the same one; derive it from your keyset's name secret or a secret store.
   */
  readonly secret: Uint8Array;
  /** Wall clock in ms. Default `Date.now`. */
  readonly clock?: () => number;
}

interface Quota {
  /** The limit per window. */
  readonly limit: number;
  readonly windowMs: number;
}

/** The request is within its limit. */
export interface RateLimitAllowed extends Quota {
  readonly outcome: 'allowed';
  readonly remaining: number;
  readonly resetMs: number;
}

/** The request is over its limit: answer 429 with Retry-After. */
export interface RateLimitLimited extends Quota {
  readonly outcome: 'limited';
  readonly remaining: 0;
  readonly resetMs: number;
  readonly retryAfterMs: number;
}

/** The counter store failed; `allowed` is the configured `whenStoreDown`. Never answer it with 429. */
export interface RateLimitUnavailable extends Quota {
  readonly outcome: 'store-unavailable';
  readonly allowed: boolean;
  readonly cause: unknown;
}

export type RateLimitResult = RateLimitAllowed | RateLimitLimited | RateLimitUnavailable;

const NAME = /^[a-z0-9-]{1,32}$/;

/**
 * Counts requests per identity in a window. An identity never reaches a key: the key is
 * `phc:r:<HMAC-SHA256(secret, name, identity)>`, so the store holds neither IP addresses nor user ids, and braces in
 * an identity cannot pick a Cluster slot. Each request is one atomic step on one key, with a TTL of one window.
 */
export class RateLimiter {
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly algorithm: WindowAlgorithm;
  readonly whenStoreDown: 'open' | 'closed';
  readonly #store: CounterStore;
  readonly #secret: Buffer;
  readonly #clock: () => number;

  constructor(options: RateLimiterOptions) {
    if (typeof options !== 'object' || options === null || typeof options.store?.hit !== 'function') {
      throw new TypeError('RateLimiter needs a counter store');
    }
    if (typeof options.name !== 'string' || !NAME.test(options.name)) {
      throw new TypeError('a rate limit name is 1-32 of [a-z0-9-]');
    }
    if (options.whenStoreDown !== 'open' && options.whenStoreDown !== 'closed') {
      throw new TypeError("RateLimiter needs whenStoreDown: 'open' or 'closed'");
    }
    const algorithm = options.algorithm ?? 'fixed';
    if (algorithm !== 'fixed' && algorithm !== 'sliding')
      throw new TypeError("algorithm is 'fixed' or 'sliding'");
    if (!(options.secret instanceof Uint8Array) || options.secret.length < 32) {
      throw new TypeError('a rate limit secret is at least 32 bytes');
    }
    this.#store = options.store;
    this.name = options.name;
    this.limit = integerOption('RateLimiter', 'limit', options.limit, 1, 1_000_000);
    this.windowMs = integerOption('RateLimiter', 'windowMs', options.windowMs, 1_000, 86_400_000);
    this.algorithm = algorithm;
    this.whenStoreDown = options.whenStoreDown;
    this.#secret = Buffer.from(options.secret);
    this.#clock = options.clock ?? Date.now;
  }

  /** The store key of an identity: what the store holds instead of it. */
  keyOf(identity: string): string {
    if (typeof identity !== 'string') throw new TypeError('a rate limit identity is a string');
    const mac = createHmac('sha256', this.#secret).update(`${this.name}\0${identity}`).digest('base64url');
    return `phc:r:${mac}`;
  }

  /** Counts one request of `identity` (an IP address, a user id). Resolves whatever the store does; never rejects for it. */
  async consume(identity: string): Promise<RateLimitResult> {
    const key = this.keyOf(identity);
    const quota = { limit: this.limit, windowMs: this.windowMs };
    let hit: Awaited<ReturnType<CounterStore['hit']>>;
    try {
      hit = await this.#store.hit({
        key,
        algorithm: this.algorithm,
        windowMs: this.windowMs,
        limit: this.limit,
        now: this.#clock(),
      });
    } catch (error) {
      // Whatever went wrong below, the count is unknown: that is a store failure, never a refusal.
      return { outcome: 'store-unavailable', allowed: this.whenStoreDown === 'open', cause: error, ...quota };
    }
    if (hit.count <= this.limit) {
      return { outcome: 'allowed', remaining: this.limit - hit.count, resetMs: hit.resetMs, ...quota };
    }
    return { outcome: 'limited', remaining: 0, resetMs: hit.resetMs, retryAfterMs: hit.resetMs, ...quota };
  }
}
