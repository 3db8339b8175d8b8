import { PhiCacheError } from '../../errors.js';

/** gRPC status codes, as the Google client reports them in `error.code` on either transport. */
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const FAILED_PRECONDITION = 9;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

/** Worth another attempt after a pause: quota (throttling) and a service that said it is briefly unable. */
export function isRetryable(error: unknown): boolean {
  const code = statusOf(error);
  return code === RESOURCE_EXHAUSTED || code === UNAVAILABLE || error instanceof GcpIntegrityError;
}

/**
 * An answer whose CRC32C does not match what it carries, or that says the service could not verify ours: damage
 * on the wire, which Google's data-integrity guide says to retry a few times, then treat as a failing service.
 */
export class GcpIntegrityError extends Error {}

/**
 * One Cloud KMS failure as a port error. Messages name the key or version resource (an id), never a context
 * value, a plaintext or a token; the client's own message is kept only as the cause.
 */
export function toPortError(
  error: unknown,
  call: 'encrypt' | 'decrypt' | 'read' | 'create',
  resource: string,
): PhiCacheError {
  if (error instanceof PhiCacheError) return error;
  const code = statusOf(error);
  const fail = (kind: ConstructorParameters<typeof PhiCacheError>[0], message: string) =>
    new PhiCacheError(kind, `Cloud KMS ${call} on ${resource}: ${message}`, { cause: error });
  switch (code) {
    case PERMISSION_DENIED:
    case UNAUTHENTICATED:
      return fail('ERR_KEY_ACCESS_DENIED', 'permission denied');
    case NOT_FOUND:
      return fail('ERR_KEY_NOT_FOUND', 'the key or version does not exist');
    case FAILED_PRECONDITION:
      return fail(
        'ERR_KEY_DISABLED',
        'the key version is not enabled (disabled, scheduled for destruction or destroyed)',
      );
    case INVALID_ARGUMENT:
      // On decrypt this is how Cloud KMS says "not a ciphertext of this key, or other associated data".
      return call === 'decrypt'
        ? fail('ERR_ENVELOPE_AUTH', 'the wrapped key is invalid or bound to another context')
        : fail('ERR_KEY_SERVICE_UNAVAILABLE', 'the request was refused as invalid');
    case RESOURCE_EXHAUSTED:
      return fail('ERR_KEY_SERVICE_UNAVAILABLE', 'throttled (quota exhausted)');
    case UNAVAILABLE:
    case DEADLINE_EXCEEDED:
      return fail('ERR_KEY_SERVICE_UNAVAILABLE', 'the service is unavailable or did not answer in time');
    default:
      if (error instanceof GcpIntegrityError) return fail('ERR_KEY_SERVICE_UNAVAILABLE', error.message);
      return fail('ERR_KEY_SERVICE_UNAVAILABLE', 'the call failed or the answer made no sense');
  }
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}
