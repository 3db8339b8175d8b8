import { randomBytes, randomInt } from 'node:crypto';
import { canonicalEncode } from '../../crypto/canonical.js';
import { PhiCacheError } from '../../errors.js';
import { DEFAULT_KEY_SERVICE_TIMEOUT_MS } from '../checked-provider.js';
import type {
  EncryptionContext,
  GeneratedDataKey,
  KekDescription,
  KekProvider,
  KekState,
  KekVersion,
  KeyCallOptions,
  KeyDomain,
  OpenKekProvider,
  WrapOptions,
  WrappedDataKey,
} from '../key-provider.js';
import { DATA_KEY_BYTES } from '../key-provider.js';
import { crc32c } from './gcp-crc32c.js';
import {
  type GcpCryptoKeyVersion,
  type GcpInt64,
  type GcpKmsCallOptions,
  type GcpKmsClient,
  makeGcpKmsClient,
} from './gcp-kms-client.js';
import { GcpIntegrityError, isRetryable, toPortError } from './gcp-kms-errors.js';

const SCHEME = 'gcp-kms://';
const KEY_NAME =
  /^projects\/[a-z0-9.:-]{1,100}\/locations\/[a-z0-9-]{1,63}\/keyRings\/[A-Za-z0-9_-]{1,63}\/cryptoKeys\/[A-Za-z0-9_-]{1,63}$/;
const VERSION_SUFFIX = /^\/cryptoKeyVersions\/[0-9]{1,20}$/;

/** Attempts per call when throttled; fewer when the caller's signal ends first. */
const MAX_ATTEMPTS = 5;
/** Bound to the probe that learns the primary version, so a probe ciphertext opens nothing else. */
const PROBE_CONTEXT = { 'phicache:probe': 'primary-version' } as const;
const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 1000;

/**
 * Opens `gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K` (Tink's syntax). Learns the key's primary
 * version (the kid new data keys are wrapped under) from one encrypt, not from `GetCryptoKey`: a serving instance
 * holds `roles/cloudkms.cryptoKeyEncrypterDecrypter` on the one key and nothing more, and that role may encrypt
 * but not read the key's metadata. Credentials are the client's Application Default Credentials; `endpoint` picks
 * another host (see `makeGcpKmsClient`).
 */
export const openKekProvider: OpenKekProvider = async (uri, options) => {
  const keyName = parseGcpKmsUri(uri);
  const client = await makeGcpKmsClient(options.endpoint);
  const provider = new GcpKmsProvider(client, keyName, options.domain);
  await provider.learnPrimary();
  return provider;
};

/** The Cloud KMS key resource named by a `gcp-kms://` URI. */
export function parseGcpKmsUri(uri: string): string {
  if (typeof uri !== 'string' || !uri.startsWith(SCHEME)) {
    throw new TypeError('a Cloud KMS key URI starts with gcp-kms://');
  }
  const name = uri.slice(SCHEME.length);
  if (!KEY_NAME.test(name)) {
    throw new TypeError(
      'a Cloud KMS key URI is gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K (a key, not a version)',
    );
  }
  return name;
}

/**
 * One Cloud KMS symmetric key as a KEK. Cloud KMS makes no data keys, so a data key is 32 random bytes from this
 * process, sent to `encrypt`; `decrypt` gives it back. The kid is the full version resource that encrypted it
 * (`gcp-kms://…/cryptoKeyVersions/N`), taken from the answer's `name`, so a sweep can find every data key still
 * under an old version and rewrap it. Cloud KMS has no server-side re-encrypt: rewrap is decrypt then encrypt.
 *
 * Versions: `createVersion` makes one with CreateCryptoKeyVersion, which Cloud KMS does not make primary, so every
 * instance goes on wrapping under the primary; a wrap that names a version sends Encrypt to that CryptoKeyVersion.
 * Decrypt needs no version (the ciphertext names it), so every instance unwraps under a new version at once.
 */
export class GcpKmsProvider implements KekProvider {
  readonly name = 'gcp-kms';
  readonly #client: GcpKmsClient;
  readonly #keyName: string;
  readonly #domain: KeyDomain;
  #current = '';

  constructor(client: GcpKmsClient, keyName: string, domain: KeyDomain) {
    this.#client = client;
    this.#keyName = keyName;
    this.#domain = domain;
  }

  currentKid(): string {
    return this.#current;
  }

  /** Learns the primary version by encrypting a probe: the answer names the version that encrypted. */
  async learnPrimary(options?: KeyCallOptions): Promise<void> {
    const probe = randomBytes(1);
    try {
      await this.#wrap(probe, PROBE_CONTEXT, options);
    } finally {
      probe.fill(0);
    }
  }

  /** Reads the primary from the key's metadata (needs `cloudkms.cryptoKeys.get`, as describing does). */
  async #readPrimary(options?: KeyCallOptions): Promise<void> {
    const [key] = await this.#call('read', this.#keyName, options, (o) =>
      this.#client.getCryptoKey({ name: this.#keyName }, o),
    );
    const primary = this.#kidOf(key.primary?.name);
    if (primary === undefined) {
      throw new PhiCacheError(
        'ERR_KEY_SERVICE_UNAVAILABLE',
        `Cloud KMS key ${this.#keyName} reported no primary version`,
      );
    }
    this.#current = primary;
  }

  async generateDataKey(context: EncryptionContext, options?: WrapOptions): Promise<GeneratedDataKey> {
    const version = this.#versionNamed(options);
    const plaintext = randomBytes(DATA_KEY_BYTES);
    try {
      return { plaintext, ...(await this.#wrap(plaintext, context, options, version)) };
    } catch (error) {
      plaintext.fill(0);
      throw error;
    }
  }

  async unwrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: KeyCallOptions,
  ): Promise<Buffer> {
    this.#checkKid(key.kid);
    const aad = this.#aad(context);
    const [answer] = await this.#call(
      'decrypt',
      key.kid,
      options,
      (o) =>
        this.#client.decrypt(
          {
            name: this.#keyName,
            ciphertext: key.wrapped,
            additionalAuthenticatedData: aad,
            ciphertextCrc32c: { value: crc32c(key.wrapped) },
            additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
          },
          o,
        ),
      (late) => zeroBytes(late[0].plaintext),
      ([response]) => {
        const plaintext = bytesOf(response.plaintext);
        if (plaintext === undefined || !crcMatches(plaintext, response.plaintextCrc32c)) {
          zeroBytes(plaintext);
          throw new GcpIntegrityError('the plaintext in the answer does not match its CRC32C');
        }
      },
    );
    const received = bytesOf(answer.plaintext) as Uint8Array;
    const plaintext = Buffer.from(received);
    received.fill(0);
    return plaintext;
  }

  async rewrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: WrapOptions,
  ): Promise<WrappedDataKey> {
    const version = this.#versionNamed(options);
    const plaintext = await this.unwrapDataKey(key, context, options);
    try {
      return await this.#wrap(plaintext, context, options, version);
    } finally {
      plaintext.fill(0);
    }
  }

  /** CreateCryptoKeyVersion (needs `cloudkms.cryptoKeyVersions.create`, an administrator's permission). */
  async createVersion(options?: KeyCallOptions): Promise<string> {
    const [version] = await this.#call('create', this.#keyName, options, (o) =>
      this.#client.createCryptoKeyVersion({ parent: this.#keyName, cryptoKeyVersion: {} }, o),
    );
    const kid = this.#kidOf(version.name);
    if (kid === undefined) {
      throw new PhiCacheError(
        'ERR_KEY_SERVICE_UNAVAILABLE',
        `Cloud KMS key ${this.#keyName} answered CreateCryptoKeyVersion without a version of the key`,
      );
    }
    return kid;
  }

  async describeKek(options?: KeyCallOptions): Promise<KekDescription> {
    await this.#readPrimary(options);
    const [listed] = await this.#call('read', this.#keyName, options, (o) =>
      this.#client.listCryptoKeyVersions({ parent: this.#keyName }, o),
    );
    const versions: KekVersion[] = [];
    for (const version of listed) {
      const kid = this.#kidOf(version.name);
      if (kid === undefined) continue;
      const createdAt = createdAtOf(version);
      versions.push({
        kid,
        state: stateOf(version, kid === this.#current, versionNumber(kid) > versionNumber(this.#current)),
        ...(createdAt ? { createdAt } : {}),
      });
    }
    return { uri: `${SCHEME}${this.#keyName}`, current: this.#current, versions };
  }

  /**
   * Encrypts under the key's primary version, or under `version` (a CryptoKeyVersion resource name) when a wrap
   * names one.
   */
  async #wrap(
    plaintext: Buffer,
    context: EncryptionContext,
    options: KeyCallOptions | undefined,
    version?: string,
  ): Promise<WrappedDataKey> {
    const aad = this.#aad(context);
    const target = version ?? this.#keyName;
    const [answer] = await this.#call(
      'encrypt',
      target,
      options,
      (o) =>
        this.#client.encrypt(
          {
            name: target,
            plaintext,
            additionalAuthenticatedData: aad,
            plaintextCrc32c: { value: crc32c(plaintext) },
            additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
          },
          o,
        ),
      () => undefined,
      ([response]) => {
        // Google's data-integrity guide: the service verified both our checksums, its ciphertext matches its
        // own, and the version that encrypted belongs to the key we asked for.
        const ciphertext = bytesOf(response.ciphertext);
        const intact =
          response.verifiedPlaintextCrc32c === true &&
          response.verifiedAdditionalAuthenticatedDataCrc32c === true &&
          ciphertext !== undefined &&
          crcMatches(ciphertext, response.ciphertextCrc32c) &&
          this.#kidOf(response.name) !== undefined;
        if (!intact) throw new GcpIntegrityError('the encrypt answer failed its CRC32C checks');
      },
    );
    const kid = this.#kidOf(answer.name) as string;
    if (version !== undefined) {
      if (kid !== `${SCHEME}${version}`) {
        throw new PhiCacheError(
          'ERR_KEY_SERVICE_UNAVAILABLE',
          `Cloud KMS encrypted under another version than ${SCHEME}${version}`,
        );
      }
      return { kid, wrapped: Buffer.from(bytesOf(answer.ciphertext) as Uint8Array) };
    }
    // The answer names the primary version of this moment: it becomes the current kid, so a rotation in the
    // console is followed without a restart. A wrap that named its version says nothing about the primary.
    this.#current = kid;
    return { kid, wrapped: Buffer.from(bytesOf(answer.ciphertext) as Uint8Array) };
  }

  /** The CryptoKeyVersion resource a wrap names, checked to be a version of this key before anything is sent. */
  #versionNamed(options: WrapOptions | undefined): string | undefined {
    if (options?.kid === undefined) return undefined;
    this.#checkKid(options.kid);
    return options.kid.slice(SCHEME.length);
  }

  /**
   * The associated data bound to every ciphertext: a label, the KEK domain and the whole context in a canonical,
   * injective encoding (sorted keys, typed and length-prefixed parts), so no two contexts share one AAD.
   */
  #aad(context: EncryptionContext): Buffer {
    const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return canonicalEncode(['phicache/gcp-kms/v1', this.#domain, ...entries.flat()]);
  }

  #kidOf(versionName: string | null | undefined): string | undefined {
    if (typeof versionName !== 'string' || !versionName.startsWith(this.#keyName)) return undefined;
    return VERSION_SUFFIX.test(versionName.slice(this.#keyName.length))
      ? `${SCHEME}${versionName}`
      : undefined;
  }

  #checkKid(kid: string): void {
    if (this.#kidOf(kid.startsWith(SCHEME) ? kid.slice(SCHEME.length) : undefined) === undefined) {
      throw new PhiCacheError(
        'ERR_KEY_NOT_FOUND',
        `KEK ${kid} is not a version of ${SCHEME}${this.#keyName}`,
      );
    }
  }

  /**
   * One Cloud KMS call: no retries inside the client (it would retry for up to ten minutes), a per-attempt
   * timeout, the caller's signal raced so an abandoned call returns at once, and retries with full-jitter
   * exponential backoff on throttling, unavailability and damaged answers while the signal allows.
   */
  async #call<T>(
    kind: 'encrypt' | 'decrypt' | 'read' | 'create',
    resource: string,
    options: KeyCallOptions | undefined,
    run: (gax: GcpKmsCallOptions) => Promise<T>,
    late: (value: T) => void = () => undefined,
    check: (value: T) => void = () => undefined,
  ): Promise<T> {
    const signal = options?.signal;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abandoned(resource);
      try {
        const value = await raced(
          run({ timeout: DEFAULT_KEY_SERVICE_TIMEOUT_MS, retry: null }),
          signal,
          late,
          resource,
        );
        check(value);
        return value;
      } catch (error) {
        if (!isRetryable(error) || attempt >= MAX_ATTEMPTS) throw toPortError(error, kind, resource);
        await pause(
          randomInt(0, Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt) + 1),
          signal,
          resource,
        );
      }
    }
  }
}

/** Settles with the call, or rejects at once when the signal aborts; a value that still arrives goes to `late`. */
function raced<T>(
  call: Promise<T>,
  signal: AbortSignal | undefined,
  late: (value: T) => void,
  resource: string,
): Promise<T> {
  if (signal === undefined) return call;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abandoned(resource));
    signal.addEventListener('abort', onAbort, { once: true });
    call.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) late(value);
        else resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function pause(ms: number, signal: AbortSignal | undefined, resource: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abandoned(resource));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abandoned(resource: string): PhiCacheError {
  return new PhiCacheError(
    'ERR_KEY_SERVICE_UNAVAILABLE',
    `Cloud KMS call on ${resource} was abandoned at its deadline`,
  );
}

function bytesOf(value: Uint8Array | string | null | undefined): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return Buffer.from(value, 'base64');
  return undefined;
}

function zeroBytes(value: Uint8Array | string | null | undefined): void {
  if (value instanceof Uint8Array) value.fill(0);
}

function crcMatches(data: Uint8Array, field: GcpInt64 | null | undefined): boolean {
  const value = field?.value;
  return value !== undefined && value !== null && Number(value) === crc32c(data);
}

/**
 * Cloud KMS states as the port's: the primary ENABLED version seals (active), an ENABLED version newer than the
 * primary waits to be promoted (pending: made by `createVersion`, wrapping only what names it), older ENABLED
 * versions only open what they sealed (decrypt-only); a version scheduled for destruction can still be restored, so it is disabled
 * until it is destroyed; a version being generated or imported is pending; a failed one never sealed anything.
 */
function stateOf(version: GcpCryptoKeyVersion, primary: boolean, newerThanPrimary: boolean): KekState {
  switch (version.state) {
    case 'ENABLED':
      return primary ? 'active' : newerThanPrimary ? 'pending' : 'decrypt-only';
    case 'DISABLED':
    case 'DESTROY_SCHEDULED':
      return 'disabled';
    case 'DESTROYED':
    case 'PENDING_EXTERNAL_DESTRUCTION':
    case 'EXTERNAL_DESTRUCTION_FAILED':
      return 'destroyed';
    case 'PENDING_GENERATION':
    case 'PENDING_IMPORT':
      return 'pending';
    default:
      return 'retired';
  }
}

/** The N of a `…/cryptoKeyVersions/N` kid (NaN for anything else, which compares false). */
function versionNumber(kid: string): number {
  return Number(/\/cryptoKeyVersions\/([0-9]+)$/.exec(kid)?.[1] ?? Number.NaN);
}

function createdAtOf(version: GcpCryptoKeyVersion): string | undefined {
  const seconds = Number(version.createTime?.seconds);
  return Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000).toISOString() : undefined;
}
