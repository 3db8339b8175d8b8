import { PhiCacheError } from '../errors.js';
import type { SecretSource } from './secret-source.js';

/**
 * A Redis password read from a secret source at every (re)connection. The first read must succeed. A later read
 * that fails for a reason other than a missing secret falls back to the last password read: while the secret
 * service is down, the password it last gave is the best guess (Redis ACL keeps the old one valid through a
 * rotation window), and a wrong guess only fails that handshake, which the client retries.
 */
export function connectionPassword(source: SecretSource, timeoutMs: number): () => Promise<string> {
  let last: string | undefined;
  return async () => {
    let bytes: Buffer;
    try {
      bytes = await source.read({ signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const missing = error instanceof PhiCacheError && error.code === 'ERR_KEY_NOT_FOUND';
      if (last === undefined || missing) throw error;
      return last;
    }
    last = bytes.toString('utf8');
    bytes.fill(0);
    return last;
  };
}

export function isSecretSource(value: unknown): value is SecretSource {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { read?: unknown }).read === 'function' &&
    typeof (value as { reference?: unknown }).reference === 'string'
  );
}
