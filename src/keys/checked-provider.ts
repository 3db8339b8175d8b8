import { PhiCacheError } from '../errors.js';
import {
  DATA_KEY_BYTES,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyProvider,
  type WrappedDataKey,
} from './key-provider.js';

/**
 * Wraps any KeyProvider so that its invariants are checked in one place, whatever the adapter: data keys are
 * exactly 32 bytes, key ids are present, and any failure of the key service surfaces as
 * ERR_KEY_SERVICE_UNAVAILABLE (the failure mode of the data class then decides what happens).
 */
export function checkedKeyProvider(
  provider: KeyProvider,
  timeoutMs = DEFAULT_KEY_SERVICE_TIMEOUT_MS,
): KeyProvider {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 120_000) {
    throw new RangeError('keyServiceTimeoutMs must be an integer from 1 to 120000');
  }
  const guard = <T>(call: () => Promise<T>) => guarded(provider.name, timeoutMs, call);
  return {
    name: provider.name,
    currentKid: () => provider.currentKid(),
    async generateDataKey(context: EncryptionContext): Promise<GeneratedDataKey> {
      const key = await guard(() => provider.generateDataKey(context));
      /* Postcondition: a 256-bit key, wrapped, under a named KEK. */
      if (key.plaintext.length !== DATA_KEY_BYTES || key.wrapped.length === 0 || key.kid.length === 0) {
        key.plaintext.fill(0);
        throw new PhiCacheError(
          'ERR_KEY_SERVICE_UNAVAILABLE',
          `key provider ${provider.name} returned a bad data key`,
        );
      }
      return key;
    },
    async unwrapDataKey(key: WrappedDataKey, context: EncryptionContext): Promise<Buffer> {
      const plaintext = await guard(() => provider.unwrapDataKey(key, context));
      if (plaintext.length !== DATA_KEY_BYTES) {
        plaintext.fill(0);
        throw new PhiCacheError(
          'ERR_KEY_SERVICE_UNAVAILABLE',
          `key provider ${provider.name} returned a bad data key`,
        );
      }
      return plaintext;
    },
    nameSecret: () => guard(() => provider.nameSecret()),
  };
}

/** How long one key service call may take. KMS calls are rare (a DEK per tenant, class and hour), so a timer each is cheap. */
export const DEFAULT_KEY_SERVICE_TIMEOUT_MS = 5000;

async function guarded<T>(name: string, timeoutMs: number, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new PhiCacheError(
          'ERR_KEY_SERVICE_UNAVAILABLE',
          `key provider ${name} did not answer in ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
  });
  try {
    return await Promise.race([call(), deadline]);
  } catch (error) {
    if (error instanceof PhiCacheError) throw error;
    throw new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `key provider ${name} failed`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
