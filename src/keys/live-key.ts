import { PhiCacheError } from '../errors.js';
import type { CachedDek } from './dek-cache.js';

const ATTEMPTS = 3;

/**
 * The one rule for using a data key across an `await`: the DEK cache may evict (and zero) a key while a caller
 * waits for it, so the key is checked and used in one synchronous step, and fetched again when it was evicted in
 * between. A value is therefore never sealed or opened under zeros.
 */
export async function withLiveKey<T>(
  fetch: () => Promise<CachedDek>,
  use: (dek: CachedDek) => T,
): Promise<{ dek: CachedDek; result: T }> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
    const dek = await fetch();
    if (!dek.evicted) return { dek, result: use(dek) };
  }
  throw new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', 'data keys were evicted before they could be used');
}
