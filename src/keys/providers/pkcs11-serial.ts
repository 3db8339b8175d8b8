import { PhiCacheError } from '../../errors.js';

/**
 * Runs one task at a time. A PKCS#11 session holds one operation at a time (C_EncryptInit, then C_Encrypt), and
 * the binding's async calls run on libuv's thread pool, so two callers on one session must take turns.
 *
 * A caller whose signal aborts stops waiting at once: if its turn has not come, its task never runs; if the task
 * is already in the HSM (a native call cannot be cancelled), its result goes to `discard` when it arrives, so a
 * late data key is zeroed rather than leaked.
 */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>, signal?: AbortSignal, discard?: (late: T) => void): Promise<T> {
    if (signal?.aborted) return Promise.reject(abandoned());
    let gaveUp = false;
    const turn = this.#tail.then(async () => {
      if (gaveUp) return undefined;
      const value = await task();
      if (gaveUp) discard?.(value);
      return value;
    });
    this.#tail = turn.catch(() => undefined);
    if (signal === undefined) return turn as Promise<T>;
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        gaveUp = true;
        reject(abandoned());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      turn.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          if (!gaveUp) resolve(value as T);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          if (!gaveUp) reject(error);
        },
      );
    });
  }

  /** Resolves once every task queued so far has finished, so the session can be closed under none. */
  async drained(): Promise<void> {
    await this.#tail;
  }
}

function abandoned(): PhiCacheError {
  return new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'PKCS#11 call abandoned: its deadline passed');
}
