import { canonicalEncode } from '../../crypto/canonical.js';
import { PhiCacheError } from '../../errors.js';
import type {
  EncryptionContext,
  GeneratedDataKey,
  KekDescription,
  KekProvider,
  KekProviderOpenOptions,
  KekVersion,
  KeyCallOptions,
  KeyDomain,
  OpenKekProvider,
  WrapOptions,
  WrappedDataKey,
} from '../key-provider.js';
import { DATA_KEY_BYTES } from '../key-provider.js';
import { unreadableAnswer, type VaultOperation } from './vault-errors.js';
import { DEFAULT_VAULT_RETRY, type VaultRetry, VaultTransport } from './vault-http.js';
import { VaultSession } from './vault-session.js';
import { parseVaultKeyUri, type VaultKeyLocation } from './vault-uri.js';

export interface VaultTransitOptions extends KekProviderOpenOptions {
  /** The deadline of a call made without a signal, and of opening. Default 10000 ms, from 1 to 120000. */
  readonly requestTimeoutMs?: number;
  /** Retries of throttled or unavailable calls, within the call's deadline. Default 5 attempts, 50 ms doubling to 1 s. */
  readonly retry?: VaultRetry;
  /** Milliseconds since the epoch, for AppRole token renewal. Default `Date.now`. */
  readonly now?: () => number;
}

/** Key types whose encryption is authenticated and which Vault can derive per-context keys from. */
const AEAD_TYPES = new Set(['aes128-gcm96', 'aes256-gcm96', 'chacha20-poly1305']);
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const VAULT_CIPHERTEXT = /^vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}$/;
const VERSION_DIGITS = /^[1-9][0-9]{0,9}$/;

/** The adapter module's entry point (see `OpenKekProvider`). */
export const openKekProvider: OpenKekProvider = (uri, options) => VaultTransit.open(uri, options);

/**
 * A KEK in HashiCorp Vault's Transit engine, over its HTTP API. Transit's `datakey` and `rewrap` take no
 * associated data, so the encryption context is bound through key derivation: the key is created with
 * `derived: true`, and every call sends `context` = base64 of the canonical encoding of the domain and the
 * context's sorted pairs. Vault derives a distinct AES-GCM key from each context, so a wrapped data key presented
 * with any other context fails authentication inside Vault, and `rewrap` keeps the context because Vault decrypts
 * and encrypts with the same derived key. The wrapped form is Vault's own `vault:v<N>:…` string.
 *
 * Versions: Vault seals under its latest version unless a request names one (`key_version` on `datakey` and
 * `rewrap`), and `rotate` makes the new version the latest at once. So this instance keeps its own current
 * version: the newest one it has seen that it did not make itself with `createVersion`. A rotation done in Vault
 * is followed as before (at the next data key, rewrap or describe); a version made here waits, wrapping only what
 * names it, while the data keys this instance wraps by default name the older version explicitly.
 */
export class VaultTransit implements KekProvider {
  readonly name = 'hcvault';
  readonly #location: VaultKeyLocation;
  readonly #transport: VaultTransport;
  readonly #domain: KeyDomain;
  readonly #timeoutMs: number;
  readonly #paths: Readonly<Record<'datakey' | 'decrypt' | 'rewrap' | 'read' | 'rotate', string>>;
  /** The newest version this instance has seen; a rotation shows up at the next data key, rewrap or describe. */
  #latest = 0;
  /** The version data keys are wrapped under by default: the newest seen, less those made by `createVersion`. */
  #current = 0;
  /** Versions this instance made, pending in its eyes: they wrap only when a wrap names them. */
  readonly #made = new Set<number>();

  private constructor(
    location: VaultKeyLocation,
    transport: VaultTransport,
    domain: KeyDomain,
    timeoutMs: number,
  ) {
    this.#location = location;
    this.#transport = transport;
    this.#domain = domain;
    this.#timeoutMs = timeoutMs;
    const { mount, keyName } = location;
    this.#paths = {
      datakey: `${mount}/datakey/plaintext/${keyName}`,
      decrypt: `${mount}/decrypt/${keyName}`,
      rewrap: `${mount}/rewrap/${keyName}`,
      read: `${mount}/keys/${keyName}`,
      rotate: `${mount}/keys/${keyName}/rotate`,
    };
  }

  /** Reads the key once, refusing a key that cannot bind a context, and learns its newest version. */
  static async open(uri: string, options: VaultTransitOptions): Promise<VaultTransit> {
    if (!['cache', 'backup', 'audit'].includes(options?.domain)) {
      throw new TypeError('options.domain must be cache, backup or audit');
    }
    const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 120_000) {
      throw new RangeError('requestTimeoutMs must be an integer from 1 to 120000');
    }
    const retry = options.retry ?? DEFAULT_VAULT_RETRY;
    if (
      !Number.isSafeInteger(retry.attempts) ||
      retry.attempts < 1 ||
      !(retry.baseMs >= 0) ||
      !(retry.capMs >= retry.baseMs)
    ) {
      throw new RangeError('retry needs attempts >= 1 and 0 <= baseMs <= capMs');
    }
    const location = parseVaultKeyUri(uri, options.endpoint);
    const transport = new VaultTransport({
      origin: location.origin,
      namespace: location.namespace,
      key: location.uri,
      retry,
      random: Math.random,
    });
    transport.attach(
      new VaultSession(
        location.auth,
        options.env ?? process.env,
        (path, body, token, signal) => transport.send('login', path, body, token, signal),
        options.now ?? Date.now,
      ),
    );
    const provider = new VaultTransit(location, transport, options.domain, timeoutMs);
    const key = await provider.#readKey(undefined);
    if (key.derived !== true || typeof key.type !== 'string' || !AEAD_TYPES.has(key.type)) {
      throw new PhiCacheError(
        'ERR_KEY_ACCESS_DENIED',
        `Vault transit key ${location.uri} cannot bind an encryption context`,
        {
          hint: 'Create the key with type=aes256-gcm96 and derived=true: phicache binds each data key to its tenant, class and epoch through key derivation.',
        },
      );
    }
    return provider;
  }

  currentKid(): string {
    return this.#kid(this.#current);
  }

  async generateDataKey(context: EncryptionContext, options?: WrapOptions): Promise<GeneratedDataKey> {
    const version = this.#sealingVersion(options);
    const data = await this.#call(
      'datakey',
      { context: this.#context(context), bits: 256, ...versionField(version) },
      options,
    );
    const plaintext = this.#plaintextOf('datakey', data.plaintext);
    try {
      const { version: sealed, wrapped } = this.#wrappedOf('datakey', data.ciphertext, version);
      return { kid: this.#kid(sealed), wrapped, plaintext };
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
    const ciphertext = this.#ciphertextOf(key);
    const data = await this.#call('decrypt', { ciphertext, context: this.#context(context) }, options);
    return this.#plaintextOf('decrypt', data.plaintext);
  }

  async rewrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: WrapOptions,
  ): Promise<WrappedDataKey> {
    const ciphertext = this.#ciphertextOf(key);
    const version = this.#sealingVersion(options);
    const data = await this.#call(
      'rewrap',
      { ciphertext, context: this.#context(context), ...versionField(version) },
      options,
    );
    const { version: sealed, wrapped } = this.#wrappedOf('rewrap', data.ciphertext, version);
    return { kid: this.#kid(sealed), wrapped };
  }

  /**
   * `POST <mount>/keys/<name>/rotate`. Vault makes the new version its latest at once, which this instance does not
   * follow: it keeps wrapping under its current version unless a wrap names the new one. Other instances unwrap
   * under it with no change, since Vault itself decrypts. The answer is the key as a read shows it; a Vault old
   * enough to answer 204 with no body is refused as unreadable (the version is made all the same).
   */
  async createVersion(options?: KeyCallOptions): Promise<string> {
    const key = await this.#call('rotate', {}, options);
    const made = key.latest_version;
    if (!Number.isSafeInteger(made) || (made as number) <= this.#current) {
      throw unreadableAnswer('rotate', this.#location.uri);
    }
    this.#made.add(made as number);
    this.#saw(made as number);
    return this.#kid(made as number);
  }

  async describeKek(options?: KeyCallOptions): Promise<KekDescription> {
    const key = await this.#readKey(options?.signal);
    const minDecryption = Math.max(1, key.min_decryption_version as number);
    const minAvailable = Math.max(1, Number(key.min_available_version) || 1);
    const created = (key.keys ?? {}) as Record<string, unknown>;
    const versions: KekVersion[] = [];
    for (let version = 1; version <= this.#latest; version++) {
      const seconds = created[String(version)];
      versions.push({
        kid: this.#kid(version),
        // Vault archives versions below min_decryption_version (restorable) and trims those below
        // min_available_version (gone for good).
        state:
          version === this.#current
            ? 'active'
            : version > this.#current
              ? 'pending'
              : version < minAvailable
                ? 'destroyed'
                : version < minDecryption
                  ? 'disabled'
                  : 'decrypt-only',
        ...(typeof seconds === 'number' ? { createdAt: new Date(seconds * 1000).toISOString() } : {}),
      });
    }
    return { uri: this.#location.uri, current: this.currentKid(), versions };
  }

  async #readKey(signal: AbortSignal | undefined): Promise<Record<string, unknown>> {
    const key = await this.#call('read', undefined, signal === undefined ? undefined : { signal });
    const latest = key.latest_version;
    if (!Number.isSafeInteger(latest) || (latest as number) < 1) {
      throw unreadableAnswer('read', this.#location.uri);
    }
    if (!Number.isSafeInteger(key.min_decryption_version)) throw unreadableAnswer('read', this.#location.uri);
    this.#saw(latest as number);
    return key;
  }

  /** A version Vault has: the newest so far becomes current, unless this instance made it to wait. */
  #saw(version: number): void {
    if (version > this.#latest) this.#latest = version;
    if (version > this.#current && !this.#made.has(version)) this.#current = version;
  }

  /**
   * The `key_version` a wrap sends: the one it names, or this instance's current version while a version it made
   * is newer (Vault would seal under that one). Undefined lets Vault seal under its latest, which is then current.
   */
  #sealingVersion(options: WrapOptions | undefined): number | undefined {
    if (options?.kid !== undefined) return this.#versionOfKid(options.kid);
    return this.#current < this.#latest ? this.#current : undefined;
  }

  #versionOfKid(kid: string): number {
    const prefix = `${this.#location.uri}:v`;
    const digits = typeof kid === 'string' && kid.startsWith(prefix) ? kid.slice(prefix.length) : '';
    if (!VERSION_DIGITS.test(digits)) {
      throw new PhiCacheError(
        'ERR_KEY_NOT_FOUND',
        `KEK ${String(kid)} is not a version of ${this.#location.uri}`,
      );
    }
    return Number(digits);
  }

  #call(
    operation: Exclude<VaultOperation, 'login'>,
    body: Record<string, unknown> | undefined,
    options: KeyCallOptions | undefined,
  ): Promise<Record<string, unknown>> {
    const signal = options?.signal ?? AbortSignal.timeout(this.#timeoutMs);
    return this.#transport.call(operation, this.#paths[operation], body, signal);
  }

  /** Base64 of an injective encoding: no two contexts (or domains) give Vault the same derivation input. */
  #context(context: EncryptionContext): string {
    if (typeof context !== 'object' || context === null) throw new TypeError('context must be an object');
    const pairs = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (!pairs.every(([, value]) => typeof value === 'string')) {
      throw new TypeError('context values must be strings');
    }
    return canonicalEncode(['phicache/hcvault/v1', this.#domain, ...pairs.flat()]).toString('base64');
  }

  #kid(version: number): string {
    return `${this.#location.uri}:v${version}`;
  }

  /** The stored wrapped key as Vault's ciphertext string, checked against its kid before anything is sent. */
  #ciphertextOf(key: WrappedDataKey): string {
    const prefix = `${this.#location.uri}:v`;
    if (typeof key?.kid !== 'string' || !key.kid.startsWith(prefix) || !(key.wrapped instanceof Uint8Array)) {
      throw new PhiCacheError('ERR_KEY_NOT_FOUND', `KEK ${String(key?.kid)} is not ${this.#location.uri}`);
    }
    const ciphertext = Buffer.from(key.wrapped).toString('utf8');
    const match = VAULT_CIPHERTEXT.exec(ciphertext);
    if (match === null || `${prefix}${match[1]}` !== key.kid) {
      throw new PhiCacheError('ERR_ENVELOPE_AUTH', `wrapped data key under ${key.kid} is damaged`);
    }
    return ciphertext;
  }

  /** Vault's ciphertext, under the version asked for when one was. */
  #wrappedOf(
    operation: VaultOperation,
    ciphertext: unknown,
    asked: number | undefined,
  ): { version: number; wrapped: Buffer } {
    const match = typeof ciphertext === 'string' ? VAULT_CIPHERTEXT.exec(ciphertext) : null;
    if (match === null) throw unreadableAnswer(operation, this.#location.uri);
    const version = Number(match[1]);
    if (asked !== undefined && version !== asked) throw unreadableAnswer(operation, this.#location.uri);
    this.#saw(version);
    return { version, wrapped: Buffer.from(ciphertext as string, 'utf8') };
  }

  #plaintextOf(operation: VaultOperation, plaintext: unknown): Buffer {
    const key = typeof plaintext === 'string' ? Buffer.from(plaintext, 'base64') : Buffer.alloc(0);
    if (key.length !== DATA_KEY_BYTES || key.toString('base64') !== plaintext) {
      key.fill(0);
      throw unreadableAnswer(operation, this.#location.uri);
    }
    return key;
  }
}

/** The request field that names the version to seal under, when there is one. */
function versionField(version: number | undefined): { key_version?: number } {
  return version === undefined ? {} : { key_version: version };
}
