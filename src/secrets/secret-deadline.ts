import { secretErrors } from './secret-errors.js';
import type { SecretReadOptions } from './secret-source.js';

/** How long one read may take unless the source was opened with another `timeoutMs`. */
export const DEFAULT_SECRET_TIMEOUT_MS = 5_000;
export const MAX_SECRET_TIMEOUT_MS = 120_000;

export function checkTimeout(timeoutMs: number | undefined): number {
  const ms = timeoutMs ?? DEFAULT_SECRET_TIMEOUT_MS;
  if (!Number.isSafeInteger(ms) || ms < 1 || ms > MAX_SECRET_TIMEOUT_MS) {
    throw new RangeError(`a secret timeoutMs is an integer in 1..${MAX_SECRET_TIMEOUT_MS}`);
  }
  return ms;
}

/**
 * Runs one read under the source's deadline and the caller's signal. The read gets a signal that aborts at the
 * first of the two, so a client that honours it cancels its request; one that does not is no longer waited for,
 * and a secret it returns after all is zeroed rather than left in memory with no owner.
 */
export async function readWithin(
  reference: string,
  timeoutMs: number,
  options: SecretReadOptions | undefined,
  read: (signal: AbortSignal) => Promise<Buffer>,
): Promise<Buffer> {
  const outer = options?.signal;
  const signals = [AbortSignal.timeout(timeoutMs), ...(outer === undefined ? [] : [outer])];
  const signal = AbortSignal.any(signals);
  if (signal.aborted) throw abandoned(reference, timeoutMs, outer);
  const running = read(signal);
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(abandoned(reference, timeoutMs, outer));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([running, stopped]);
  } catch (error) {
    if (signal.aborted) throw abandoned(reference, timeoutMs, outer, error);
    throw error;
  } finally {
    signal.removeEventListener('abort', onAbort!);
    running.then(
      (late) => {
        if (signal.aborted) late.fill(0);
      },
      () => undefined,
    );
  }
}

function abandoned(reference: string, timeoutMs: number, outer: AbortSignal | undefined, cause?: unknown) {
  const why = outer?.aborted ? 'the read was abandoned by its caller' : `no answer within ${timeoutMs} ms`;
  return secretErrors.unavailable(reference, why, cause);
}
