import { PhiCacheError, type PhiCacheErrorCode } from '../../errors.js';

/**
 * What each AWS KMS exception means to the cache. Throttling and outages are ERR_KEY_SERVICE_UNAVAILABLE (the
 * SDK has already retried them within the deadline); a bad blob or a wrong context is one damaged record, never
 * an outage. Anything unknown, including an answer the SDK could not parse, counts as the service failing.
 */
const CODES: Readonly<Record<string, PhiCacheErrorCode>> = {
  ThrottlingException: 'ERR_KEY_SERVICE_UNAVAILABLE',
  KMSInternalException: 'ERR_KEY_SERVICE_UNAVAILABLE',
  DependencyTimeoutException: 'ERR_KEY_SERVICE_UNAVAILABLE',
  KeyUnavailableException: 'ERR_KEY_SERVICE_UNAVAILABLE',
  CustomKeyStoreInvalidStateException: 'ERR_KEY_SERVICE_UNAVAILABLE',
  AccessDeniedException: 'ERR_KEY_ACCESS_DENIED',
  // The request was not signed by a caller KMS knows: a credential problem, refused like any other caller.
  UnrecognizedClientException: 'ERR_KEY_ACCESS_DENIED',
  InvalidSignatureException: 'ERR_KEY_ACCESS_DENIED',
  IncompleteSignatureException: 'ERR_KEY_ACCESS_DENIED',
  ExpiredTokenException: 'ERR_KEY_ACCESS_DENIED',
  InvalidGrantTokenException: 'ERR_KEY_ACCESS_DENIED',
  InvalidKeyUsageException: 'ERR_KEY_ACCESS_DENIED',
  CredentialsProviderError: 'ERR_KEY_ACCESS_DENIED',
  InvalidCiphertextException: 'ERR_ENVELOPE_AUTH',
  IncorrectKeyException: 'ERR_ENVELOPE_AUTH',
  DisabledException: 'ERR_KEY_DISABLED',
  KMSInvalidStateException: 'ERR_KEY_DISABLED',
  NotFoundException: 'ERR_KEY_NOT_FOUND',
};

/** Names the operation and the exception, never the message: KMS messages can quote key ids and contexts. */
export function mapAwsKmsError(operation: string, error: unknown): PhiCacheError {
  if (error instanceof PhiCacheError) return error;
  const name = (error as { name?: unknown } | null)?.name;
  const exception = typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name) ? name : 'an unknown error';
  const code = CODES[exception] ?? 'ERR_KEY_SERVICE_UNAVAILABLE';
  return new PhiCacheError(code, `AWS KMS ${operation} failed with ${exception}`, { cause: error });
}
