import { gcpRestClientOptions } from '../../runtime/gcp-rest-options.js';
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
      /** The key (its primary version encrypts) or one of its CryptoKeyVersions. */
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
  /** A new version of the key; Cloud KMS does not make it primary (UpdateCryptoKeyPrimaryVersion would). */
  createCryptoKeyVersion(
    request: { parent: string; cryptoKeyVersion: Record<string, never> },
    options: GcpKmsCallOptions,
  ): Promise<[GcpCryptoKeyVersion, ...unknown[]]>;
  close(): Promise<void>;
}

const PACKAGE = '@google-cloud/kms';

/**
 * A Cloud KMS client on the REST transport, with Application Default Credentials or, for a loopback `http://`
 * endpoint, none (see `gcpRestClientOptions`).
 */
export async function makeGcpKmsClient(endpoint: string | undefined): Promise<GcpKmsClient> {
  const options = gcpRestClientOptions(endpoint, { name: 'Cloud KMS', host: 'cloudkms.googleapis.com' });
  const loaded = await loadGcpKms();
  return new loaded.KeyManagementServiceClient(options) as GcpKmsClient;
}

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
