/**
 * `gcp-sm://projects/P/secrets/S/versions/V[#json-field]` (V a version number or `latest`): Google Secret Manager
 * through the official `@google-cloud/secret-manager`, an optional peer imported here only, at the first read, on
 * the REST transport like the Cloud KMS adapter. Every answer's `payload.dataCrc32c` is checked; throttling,
 * unavailability and a damaged payload are retried with full-jitter backoff inside the read's deadline.
 */
import { randomInt } from 'node:crypto';
import { crc32c } from '../keys/providers/gcp-crc32c.js';
import { gcpRestClientOptions } from '../runtime/gcp-rest-options.js';
import { loadPeer } from '../runtime/load-peer.js';
import { jsonField, trimSecret } from './secret-bytes.js';
import { checkTimeout, readWithin } from './secret-deadline.js';
import { secretErrors } from './secret-errors.js';
import type { SecretSource } from './secret-source.js';

export interface GcpSecretManagerOptions {
  /**
   * Default: `https://secretmanager.googleapis.com` with Application Default Credentials (the workload's service
   * account). `https://host[:port]`: a Private Service Connect endpoint, same credentials. `http://127.0.0.1:P`:
   * a local emulator or test server, loopback only and sent no credentials.
   */
  readonly endpoint?: string;
}

/** The shape of `AccessSecretVersionResponse` as the client decodes it (`longs: String`). */
interface AccessAnswer {
  readonly name?: string | null;
  readonly payload?: {
    readonly data?: Uint8Array | string | null;
    readonly dataCrc32c?: string | number | null;
  } | null;
}

/** The client's call, as gax makes it: a promise that can also be cancelled, which aborts the HTTP request. */
type AccessCall = (
  request: { name: string },
  options: { retry: null; otherArgs: { headers: Record<string, string> } },
) => Promise<[AccessAnswer, ...unknown[]]> & { cancel?: () => void };

interface SecretManagerClient {
  initialize(): Promise<unknown>;
  innerApiCalls?: { accessSecretVersion?: AccessCall };
}

interface SecretManagerModule {
  SecretManagerServiceClient: new (options: Record<string, unknown>) => SecretManagerClient;
}

const PEER = '@google-cloud/secret-manager';
const VERSION_NAME =
  /^projects\/[a-z0-9.:-]{1,100}\/secrets\/[A-Za-z0-9_-]{1,255}\/versions\/(latest|[1-9][0-9]{0,19})$/;

/** gRPC status codes, as the Google client reports them in `error.code` on either transport. */
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const FAILED_PRECONDITION = 9;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

/** Attempts per read; fewer when the deadline or the caller's signal ends first. */
const MAX_ATTEMPTS = 5;
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 1000;

export function gcpSecret(
  versionName: string,
  field: string | undefined,
  options: GcpSecretManagerOptions = {},
  timeoutMs?: number,
): SecretSource {
  if (!VERSION_NAME.test(versionName)) {
    throw new TypeError('gcp-sm:// names projects/PROJECT/secrets/SECRET/versions/(NUMBER|latest)');
  }
  const ms = checkTimeout(timeoutMs);
  // Checked now, so that a bad endpoint is a TypeError at open time like a bad reference.
  const clientOptions = gcpRestClientOptions(options.endpoint, {
    name: 'Secret Manager',
    host: 'secretmanager.googleapis.com',
  });
  const reference = `gcp-sm://${versionName}${field === undefined ? '' : `#${field}`}`;
  let made: Promise<AccessCall> | undefined;
  const make = async (): Promise<AccessCall> => {
    const sdk = (await loadPeer(
      PEER,
      () => import(PEER),
      'or read the secret from env: or file:',
    )) as Partial<SecretManagerModule & { default: Partial<SecretManagerModule> }>;
    const Client = sdk.SecretManagerServiceClient ?? sdk.default?.SecretManagerServiceClient;
    if (Client === undefined) throw new TypeError(`${PEER} does not export SecretManagerServiceClient`);
    const client = new Client(clientOptions);
    await client.initialize();
    // The client's API call itself, not its public wrapper: the wrapper drops the call's cancel() (and the
    // REST transport ignores gax's `timeout`, a gRPC deadline), so an abandoned read's request would stay open
    // until the HTTP client's own 300 s limit; and it logs the whole response, payload included, whenever
    // GOOGLE_SDK_NODE_LOGGING names the client. Same request, same wire, same descriptors.
    const call = client.innerApiCalls?.accessSecretVersion;
    if (typeof call !== 'function') throw new TypeError(`${PEER} has no accessSecretVersion call`);
    return call;
  };
  return {
    reference,
    read: (readOptions) =>
      readWithin(reference, ms, readOptions, async (signal) => {
        made ??= make().catch((error) => {
          made = undefined;
          throw error;
        });
        const access = await made;
        const bytes = await accessWithRetries(reference, versionName, access, signal);
        return trimSecret(reference, field === undefined ? bytes : jsonField(reference, bytes, field));
      }),
  };
}

/** One read: attempts until an intact answer, a final error, MAX_ATTEMPTS, or the signal (deadline, caller). */
async function accessWithRetries(
  reference: string,
  versionName: string,
  access: AccessCall,
  signal: AbortSignal,
): Promise<Buffer> {
  for (let attempt = 1; ; attempt++) {
    signal.throwIfAborted();
    let failure: unknown;
    try {
      return await accessOnce(versionName, access, signal);
    } catch (error) {
      failure = error;
    }
    signal.throwIfAborted();
    if (!isRetryable(failure) || attempt >= MAX_ATTEMPTS) throw toSecretError(reference, failure);
    await pause(randomInt(0, Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt) + 1), signal);
  }
}

/**
 * One `AccessSecretVersion`, cancelled when the signal aborts. The payload is copied out and the client's copy
 * zeroed; a payload whose CRC32C does not match (Google's data-integrity guidance) is zeroed and retried.
 */
async function accessOnce(versionName: string, access: AccessCall, signal: AbortSignal): Promise<Buffer> {
  const call = access(
    { name: versionName },
    {
      retry: null,
      // What the public method adds: the routing header Google's front ends expect.
      otherArgs: { headers: { 'x-goog-request-params': `name=${encodeURIComponent(versionName)}` } },
    },
  );
  const cancel = () => call.cancel?.();
  signal.addEventListener('abort', cancel, { once: true });
  let answer: AccessAnswer;
  try {
    [answer] = await call;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
  const data = answer?.payload?.data;
  const bytes =
    data instanceof Uint8Array
      ? Buffer.from(data)
      : typeof data === 'string'
        ? Buffer.from(data, 'base64')
        : undefined;
  if (data instanceof Uint8Array) data.fill(0);
  if (bytes === undefined) throw new AnswerError('the answer holds no payload');
  const expected = answer.payload?.dataCrc32c;
  if (expected === undefined || expected === null || String(expected) !== String(crc32c(bytes))) {
    bytes.fill(0);
    throw new AnswerError('the payload failed its CRC32C check', true);
  }
  if (signal.aborted) {
    bytes.fill(0);
    signal.throwIfAborted();
  }
  return bytes;
}

/** An answer that arrived but cannot be used; `damaged` ones (a CRC32C mismatch) are worth another attempt. */
class AnswerError extends Error {
  constructor(
    message: string,
    readonly damaged = false,
  ) {
    super(message);
  }
}

function isRetryable(error: unknown): boolean {
  const code = statusOf(error);
  return (
    code === RESOURCE_EXHAUSTED || code === UNAVAILABLE || (error instanceof AnswerError && error.damaged)
  );
}

/** The service's status as the port's codes. The client's message (which names the resource) stays the cause. */
function toSecretError(reference: string, error: unknown) {
  switch (statusOf(error)) {
    case PERMISSION_DENIED:
    case UNAUTHENTICATED:
      return secretErrors.denied(reference, error);
    case NOT_FOUND:
      return secretErrors.notFound(reference, 'no such secret or version', error);
    case FAILED_PRECONDITION:
      // Secret Manager's answer for a version that is disabled or destroyed.
      return secretErrors.disabled(reference, error);
    case RESOURCE_EXHAUSTED:
      return secretErrors.unavailable(reference, 'throttled (quota exhausted), retries spent', error);
    case UNAVAILABLE:
      return secretErrors.unavailable(reference, 'the service is unavailable, retries spent', error);
    default:
      if (error instanceof AnswerError) return secretErrors.unavailable(reference, error.message, error);
      return secretErrors.unavailable(reference, 'the call failed or the answer made no sense', error);
  }
}

function statusOf(error: unknown): number | undefined {
  if (error instanceof AnswerError) return undefined;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
