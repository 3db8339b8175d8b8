/** When a store stops answering, callers should learn it at once instead of each waiting out a deadline. */

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. Default 5; 1..10,000. */
  readonly failureThreshold?: number;
  /** How long the breaker stays open before it lets one probe through, in ms. Default 2,000; 10..600,000. */
  readonly cooldownMs?: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerListener {
  opened(failures: number): void;
  closed(openMs: number): void;
}

export interface ResolvedBreakerOptions {
  readonly failureThreshold: number;
  readonly cooldownMs: number;
}

export function resolveBreakerOptions(options: CircuitBreakerOptions = {}): ResolvedBreakerOptions {
  const failureThreshold = options.failureThreshold ?? 5;
  const cooldownMs = options.cooldownMs ?? 2_000;
  if (!Number.isSafeInteger(failureThreshold) || failureThreshold < 1 || failureThreshold > 10_000) {
    throw new RangeError('breaker failureThreshold must be an integer in 1..10000');
  }
  if (!Number.isSafeInteger(cooldownMs) || cooldownMs < 10 || cooldownMs > 600_000) {
    throw new RangeError('breaker cooldownMs must be an integer in 10..600000');
  }
  return Object.freeze({ failureThreshold, cooldownMs });
}

/**
 * Closed: calls pass, consecutive failures are counted, a success resets the count. At the threshold it opens:
 * calls are refused without touching the network. After the cool-down exactly one call passes as a probe
 * (half-open); its success closes the breaker, its failure opens it for another cool-down.
 */
export class CircuitBreaker {
  readonly #options: ResolvedBreakerOptions;
  readonly #clock: () => number;
  readonly #listener: BreakerListener;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #firstOpenedAt = 0;

  constructor(options: ResolvedBreakerOptions, clock: () => number, listener: BreakerListener) {
    this.#options = options;
    this.#clock = clock;
    this.#listener = listener;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** True when a call may go out now. In half-open, only the first caller gets true: it is the probe. */
  allow(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open' && this.#clock() - this.#openedAt >= this.#options.cooldownMs) {
      this.#state = 'half-open';
      return true;
    }
    return false;
  }

  success(): void {
    if (this.#state === 'closed') {
      this.#failures = 0;
      return;
    }
    // A late success of a call sent before the breaker opened proves the server answers too.
    this.#state = 'closed';
    this.#failures = 0;
    this.#listener.closed(this.#clock() - this.#firstOpenedAt);
  }

  failure(): void {
    if (this.#state === 'half-open') {
      this.#state = 'open';
      this.#openedAt = this.#clock();
      return;
    }
    if (this.#state === 'open') return;
    this.#failures += 1;
    if (this.#failures >= this.#options.failureThreshold) {
      this.#state = 'open';
      this.#openedAt = this.#clock();
      this.#firstOpenedAt = this.#openedAt;
      this.#listener.opened(this.#failures);
    }
  }
}
