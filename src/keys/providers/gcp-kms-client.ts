import { loadPeer } from '../../runtime/load-peer.js';

/**
 * The few Cloud KMS calls phicache makes, declared here rather than imported, so that phicache's types do not
 * depend on `@google-cloud/kms` and a reader sees the whole surface at once. Shapes are the client's own
 * (`longs: String`: an Int64Value arrives as `{ value: '123' }`).
 */
export interface GcpInt64 {
  readonly value?: string | number | null;
}

export interface GcpKmsCallOptions {
  readonly timeout: number;
  /** `null`: the client does not retry; phicache does, within the caller's deadline. */
  readonly retry: null;
}

export interface GcpEncryptResponse {
  readonly name?: string | null;
  readonly ciphertext?: Uint8Array | string | null;
  readonly ciphertextCrc32c?: GcpInt64 | null;
  readonly verifiedPlaintextCrc32c?: boolean | null;
  readonly verifiedAdditionalAuthenticatedDataCrc32c?: boolean | null;
}

export interface GcpDecryptResponse {
  readonly plaintext?: Uint8Array | string | null;
  readonly plaintextCrc32c?: GcpInt64 | null;
  readonly usedPrimary?: boolean | null;
}

export interface GcpCryptoKeyVersion {
  readonly name?: string | null;
  readonly state?: string | number | null;
  readonly createTime?: { readonly seconds?: string | number | null } | null;
}

export interface GcpCryptoKey {
  readonly name?: string | null;
  readonly primary?: GcpCryptoKeyVersion | null;
}

export interface GcpKmsClient {
  encrypt(
    request: {
      name: string;
      plaintext: Buffer;
      additionalAuthenticatedData: Buffer;
      plaintextCrc32c: { value: number };
      additionalAuthenticatedDataCrc32c: { value: number };
    },
    options: GcpKmsCallOptions,
  ): Promise<[GcpEncryptResponse, ...unknown[]]>;
  decrypt(
    request: {
      name: string;
      ciphertext: Buffer;
      additionalAuthenticatedData: Buffer;
      ciphertextCrc32c: { value: number };
      additionalAuthenticatedDataCrc32c: { value: number };
    },
    options: GcpKmsCallOptions,
  ): Promise<[GcpDecryptResponse, ...unknown[]]>;
  getCryptoKey(request: { name: string }, options: GcpKmsCallOptions): Promise<[GcpCryptoKey, ...unknown[]]>;
  listCryptoKeyVersions(
    request: { parent: string },
    options: GcpKmsCallOptions,
  ): Promise<[GcpCryptoKeyVersion[], ...unknown[]]>;
  close(): Promise<void>;
}

const PACKAGE = '@google-cloud/kms';

/**
 * A client on the REST transport (`fallback: true`) in every case, so that what the tests run against the local
 * server is the transport production uses. Without an endpoint: Google's default host with Application Default
 * Credentials. With `https://host[:port]` (a regional or Private Service Connect endpoint): that host, same
 * credentials. With `http://` (a local emulator or the test server): loopback only and no credentials at all,
 * because a bearer token must never travel unencrypted.
 */
export async function makeGcpKmsClient(endpoint: string | undefined): Promise<GcpKmsClient> {
  const options = clientOptions(endpoint);
  const loaded = await loadGcpKms();
  return new loaded.KeyManagementServiceClient(options) as GcpKmsClient;
}

function clientOptions(endpoint: string | undefined): Record<string, unknown> {
  if (endpoint === undefined) return { fallback: true };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new TypeError('the Cloud KMS endpoint must be a URL such as https://cloudkms.googleapis.com');
  }
  const port = url.port === '' ? undefined : Number(url.port);
  if (url.protocol === 'https:') {
    return { fallback: true, apiEndpoint: url.hostname, ...(port === undefined ? {} : { port }) };
  }
  if (url.protocol === 'http:' && LOOPBACK.has(url.hostname)) {
    return {
      fallback: true,
      protocol: 'http',
      apiEndpoint: url.hostname,
      port: port ?? 80,
      authClient: anonymousAuthClient,
    };
  }
  throw new RangeError('a Cloud KMS endpoint must be https, or plain http on a loopback address only');
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * What the REST transport asks of an auth client (`getRequestHeaders` to be recognised, `fetch` to send), with
 * no token: for a local emulator only.
 */
const anonymousAuthClient = {
  getRequestHeaders: async () => new Headers(),
  fetch: (url: string, init: RequestInit) => fetch(url, init),
};

interface GcpKmsModule {
  KeyManagementServiceClient: new (options: Record<string, unknown>) => unknown;
}

async function loadGcpKms(): Promise<GcpKmsModule> {
  const loaded = (await loadPeer(
    PACKAGE,
    () => import(PACKAGE),
    'to use gcp-kms:// keys',
  )) as Partial<GcpKmsModule> & {
    default?: Partial<GcpKmsModule>;
  };
  const client = loaded.KeyManagementServiceClient ?? loaded.default?.KeyManagementServiceClient;
  if (client === undefined) throw new TypeError(`${PACKAGE} does not export KeyManagementServiceClient`);
  return { KeyManagementServiceClient: client };
}
