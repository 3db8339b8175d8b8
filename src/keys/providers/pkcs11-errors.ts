import { PhiCacheError, type PhiCacheErrorCode } from '../../errors.js';

/**
 * PKCS#11 return values (CKR_*) sorted into the port's error kinds. The binding names them in `error.message`
 * (`CKR_PIN_INCORRECT`); only that name goes into our message, never a PIN, a label's key or a context value.
 */
const KIND_OF: Readonly<Record<string, PhiCacheErrorCode>> = {
  CKR_PIN_INCORRECT: 'ERR_KEY_ACCESS_DENIED',
  CKR_PIN_INVALID: 'ERR_KEY_ACCESS_DENIED',
  CKR_PIN_LEN_RANGE: 'ERR_KEY_ACCESS_DENIED',
  CKR_PIN_EXPIRED: 'ERR_KEY_ACCESS_DENIED',
  CKR_PIN_LOCKED: 'ERR_KEY_ACCESS_DENIED',
  CKR_USER_NOT_LOGGED_IN: 'ERR_KEY_ACCESS_DENIED',
  CKR_USER_PIN_NOT_INITIALIZED: 'ERR_KEY_ACCESS_DENIED',
  CKR_KEY_FUNCTION_NOT_PERMITTED: 'ERR_KEY_DISABLED',
  CKR_KEY_TYPE_INCONSISTENT: 'ERR_KEY_DISABLED',
  CKR_ENCRYPTED_DATA_INVALID: 'ERR_ENVELOPE_AUTH',
  CKR_ENCRYPTED_DATA_LEN_RANGE: 'ERR_ENVELOPE_AUTH',
  CKR_AEAD_DECRYPT_FAILED: 'ERR_ENVELOPE_AUTH',
  CKR_KEY_HANDLE_INVALID: 'ERR_KEY_NOT_FOUND',
  CKR_OBJECT_HANDLE_INVALID: 'ERR_KEY_NOT_FOUND',
};

/** The CKR_* name of a binding error, or undefined for anything else (a bug, a missing library). */
export function returnValueOf(error: unknown): string | undefined {
  const message = (error as { message?: unknown } | null)?.message;
  if (typeof message !== 'string') return undefined;
  return /^CKR_[A-Z0-9_]+/.exec(message)?.[0];
}

/**
 * One failed call, as the port's error. Whatever the table does not name (device errors, a closed session, a
 * token pulled out, CKR_GENERAL_ERROR) is the HSM failing: ERR_KEY_SERVICE_UNAVAILABLE.
 */
export function pkcs11Failure(operation: string, error: unknown): PhiCacheError {
  if (error instanceof PhiCacheError) return error;
  const returnValue = returnValueOf(error);
  const code = (returnValue && KIND_OF[returnValue]) || 'ERR_KEY_SERVICE_UNAVAILABLE';
  return new PhiCacheError(code, `PKCS#11 ${operation} failed${returnValue ? ` (${returnValue})` : ''}`, {
    cause: error,
  });
}
