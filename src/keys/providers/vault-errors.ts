import { PhiCacheError } from '../../errors.js';

/** Which kind of call was refused: the same HTTP status means different things on different paths. */
export type VaultOperation = 'datakey' | 'decrypt' | 'rewrap' | 'read' | 'rotate' | 'login';

/** Statuses worth another try within the caller's deadline: rate-limit quotas, a sealed or standby node, a proxy. */
export function isTransient(status: number): boolean {
  return status === 429 || status === 472 || status === 473 || status === 412 || status >= 500;
}

/**
 * Turns a Vault error answer (`{"errors":[...]}` with a status) into one of the port's codes. Transit answers 400
 * for everything a request got wrong, so the error text tells a missing key or an archived version from a damaged
 * ciphertext. Vault's own text never goes into the message: only the status and the key's name do, so nothing
 * the service echoes can carry a context value into a log.
 */
export function vaultError(
  operation: VaultOperation,
  status: number,
  messages: readonly string[],
  key: string,
): PhiCacheError {
  const text = messages.join('\n').toLowerCase();
  const says = (...phrases: string[]) => phrases.some((phrase) => text.includes(phrase));
  const on = `Vault ${operation} on ${key} answered ${status}`;
  if (status === 403 || (operation === 'login' && status === 400)) {
    return new PhiCacheError('ERR_KEY_ACCESS_DENIED', `${on}: permission denied`);
  }
  if (isTransient(status)) {
    return new PhiCacheError(
      'ERR_KEY_SERVICE_UNAVAILABLE',
      `${on}: the service is throttling or unavailable`,
    );
  }
  if (status === 404 || says('encryption key not found', 'key not found')) {
    return new PhiCacheError('ERR_KEY_NOT_FOUND', `${on}: the transit key does not exist`, {
      hint: 'Check the key URI (mount and key name), or restore the key if it was deleted.',
    });
  }
  // A wrap that names a version (`key_version`) Vault does not have yet, or one below min_encryption_version.
  if (says('higher than the latest key version')) {
    return new PhiCacheError('ERR_KEY_NOT_FOUND', `${on}: the key version does not exist`);
  }
  if (says('less than the minimum encryption key version')) {
    return new PhiCacheError('ERR_KEY_DISABLED', `${on}: the key version is below min_encryption_version`, {
      hint: 'Vault no longer encrypts under this version; wrap under a newer one.',
    });
  }
  if (says('too old', 'disallowed by policy')) {
    return new PhiCacheError('ERR_KEY_DISABLED', `${on}: the key version is below min_decryption_version`, {
      hint: 'The version that wrapped this data key is archived. Lower min_decryption_version to read it again.',
    });
  }
  if (status === 400 && (operation === 'decrypt' || operation === 'rewrap')) {
    return new PhiCacheError(
      'ERR_ENVELOPE_AUTH',
      `${on}: the wrapped data key is damaged or bound to another context`,
    );
  }
  return new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `${on}: an answer phicache does not expect`);
}

export function unreadableAnswer(operation: VaultOperation, key: string): PhiCacheError {
  return new PhiCacheError(
    'ERR_KEY_SERVICE_UNAVAILABLE',
    `Vault ${operation} on ${key} returned an answer phicache cannot read`,
  );
}
