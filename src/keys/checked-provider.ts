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
export function checkedKeyProvider(provider: KeyProvider): KeyProvider {
  return {
    name: provider.name,
    currentKid: () => provider.currentKid(),
    async generateDataKey(context: EncryptionContext): Promise<GeneratedDataKey> {
      const key = await guard(provider.name, () => provider.generateDataKey(context));
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
      const plaintext = await guard(provider.name, () => provider.unwrapDataKey(key, context));
      if (plaintext.length !== DATA_KEY_BYTES) {
        plaintext.fill(0);
        throw new PhiCacheError(
          'ERR_KEY_SERVICE_UNAVAILABLE',
          `key provider ${provider.name} returned a bad data key`,
        );
      }
      return plaintext;
    },
    nameSecret: () => guard(provider.name, () => provider.nameSecret()),
  };
}

async function guard<T>(name: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof PhiCacheError) throw error;
    throw new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `key provider ${name} failed`, { cause: error });
  }
}
