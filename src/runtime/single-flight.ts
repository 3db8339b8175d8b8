/**
 * One call per key at a time: callers that ask for a key while its call runs share that call's result. Used by
 * the cache (one factory per entry) and by the data keys (one load or unwrap per key).
 *
 * With a deadline, a call that has not settled by then fails every caller with the error `expired()` makes and
 * frees the key, so one stuck call never blocks later callers; its eventual result is discarded.
 */
export class SingleFlight<T> {
  readonly #running = new Map<string, Promise<T>>();

  /** Calls running right now. */
  get size(): number {
    return this.#running.size;
  }

  /** Whether `key` has a call running: a caller then joins it. */
  has(key: string): boolean {
    return this.#running.has(key);
  }

  run(key: string, call: () => Promise<T>, deadline?: { ms: number; expired: () => unknown }): Promise<T> {
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    let flight = call();
    if (deadline !== undefined) flight = withDeadline(flight, deadline.ms, deadline.expired);
    const shared = flight.finally(() => {
      if (this.#running.get(key) === shared) this.#running.delete(key);
    });
    this.#running.set(key, shared);
    return shared;
  }
}

function withDeadline<T>(call: Promise<T>, ms: number, expired: () => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    // One timer per call, and only for calls that may be slow (a factory after a miss), never per cache hit. It
    // keeps the process alive: callers are waiting for it.
    const timer = setTimeout(() => reject(expired()), ms);
    call.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
