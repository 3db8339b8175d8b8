import { PhiCacheError } from '../errors.js';

/**
 * Settles like `promise`, or rejects with ERR_STORE_UNAVAILABLE once `ms` have passed: a server that stops
 * answering (paused, partitioned) must not hold an ops command forever. One timer per call, which is cheap at the
 * granularity ops commands use it (a SCAN page and its pipelined batch, a probe).
 */
export async function withinDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new PhiCacheError('ERR_STORE_UNAVAILABLE', `redis did not answer ${what} within ${ms} ms`, {
            hint: 'The server is reachable but not answering (paused, overloaded or cut off mid-way). Check its health, or give a longer --deadline-ms.',
          }),
        ),
      ms,
    );
  });
  promise.catch(() => undefined);
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Validates a deadline given in milliseconds. */
export function checkDeadlineMs(ms: number, name: string): number {
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > 600_000) {
    throw new RangeError(`${name} must be an integer number of milliseconds in 1..600000`);
  }
  return ms;
}
