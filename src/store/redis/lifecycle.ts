import { PhiCacheError } from '../../errors.js';

/**
 * Waits for a client's first connection, or gives up after `ms`: `abandon` then stops the client's reconnect
 * loop, so a failed start leaves nothing running.
 */
export async function connectWithin(
  connecting: Promise<unknown>,
  ms: number,
  abandon: () => unknown,
  client: string,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no connection within ${ms} ms`)), ms);
  });
  try {
    await Promise.race([connecting, late]);
  } catch (cause) {
    connecting.catch(ignore);
    await abandon();
    throw new PhiCacheError('ERR_STORE_UNAVAILABLE', `could not connect to redis (${client})`, { cause });
  } finally {
    clearTimeout(timer);
  }
}

/** A graceful close waits for replies; a paused server never sends them, so it is bounded and then forced. */
export async function closeWithin(
  graceful: () => Promise<unknown>,
  force: () => unknown,
  ms = 1_000,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const closed = graceful().then(
    () => true,
    () => false,
  );
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = await Promise.race([closed, late]);
  clearTimeout(timer);
  if (!done) await force();
}

export function ignore(): void {}
