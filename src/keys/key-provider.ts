/**
 * The KeyProvider port: the only way phicache touches a key-encryption key (KEK). The KEK stays in the KMS or
 * HSM; phicache only sees data keys (DEKs), in plaintext in memory while it uses them and wrapped everywhere else.
 *
 * Adapters implement `KekProvider` (one KEK, possibly with several versions). `KeyProvider` adds the fleet's name
 * secret, which comes from a keyset file (or, in development, the local keyring).
 *
 * Errors: an adapter throws `PhiCacheError` with one of these codes, so that the cache can tell a service outage
 * from one bad record:
 * - `ERR_KEY_SERVICE_UNAVAILABLE`: unreachable, timed out, throttled past the deadline, or an answer that makes no
 *   sense. Marks the key service down for a short cool-down; the data class's failure mode decides.
 * - `ERR_KEY_ACCESS_DENIED`: the service refused this caller or this context (a key policy condition).
 * - `ERR_ENVELOPE_AUTH`: the wrapped key is damaged or bound to another context. Tamper of one record, never an
 *   outage.
 * - `ERR_KEY_DISABLED`: the KEK version that wrapped it is disabled, scheduled for deletion or destroyed.
 * - `ERR_KEY_NOT_FOUND`: the KEK (or version) named by `kid` does not exist.
 */

/** Which KEK a provider serves. Separate KEKs per domain keep a leaked backup key from opening the live cache. */
export type KeyDomain = 'cache' | 'backup' | 'audit';

/**
 * Authenticated context bound to every wrap (AWS KMS "encryption context", AES-GCM AAD elsewhere). A wrapped DEK
 * presented with another context does not unwrap. Values must be ids, never PHI: KMS audit logs record them.
 */
export type EncryptionContext = Readonly<Record<string, string>>;

export interface WrappedDataKey {
  /** The KEK that wrapped it, with its version (for example `local:cache:v1`). */
  readonly kid: string;
  readonly wrapped: Buffer;
}

export interface GeneratedDataKey extends WrappedDataKey {
  /** 32 random bytes. The caller owns the buffer and zeroes it when done. */
  readonly plaintext: Buffer;
}

/** Every call can be abandoned: the caller's deadline aborts the signal, and the adapter stops waiting. */
export interface KeyCallOptions {
  readonly signal?: AbortSignal;
}

/** A wrap may name the KEK version to wrap under: phicache's key states, not the service, decide which one seals. */
export interface WrapOptions extends KeyCallOptions {
  /**
   * The KEK version (a `kid` from `describeKek` or `createVersion`) to wrap under; default the current one. An adapter
   * that cannot wrap under a named version throws `ERR_KEY_NOT_FOUND` for any kid but its current one.
   */
  readonly kid?: string;
}

/** The life of one KEK version (DESIGN.md §4), plus the states a KMS reports on its own. */
export type KekState = 'pending' | 'active' | 'decrypt-only' | 'retired' | 'disabled' | 'destroyed';

export interface KekVersion {
  /** As in `WrappedDataKey.kid`. */
  readonly kid: string;
  readonly state: KekState;
  /** ISO 8601, when the service says. */
  readonly createdAt?: string;
}

export interface KekDescription {
  /** The key URI (`aws-kms://…`, `gcp-kms://…`, `hcvault://…`, `pkcs11:…`, `local:…`). */
  readonly uri: string;
  /** The version new data keys are wrapped under. */
  readonly current: string;
  readonly versions: readonly KekVersion[];
}

/** What a KMS or HSM adapter implements: data keys wrapped under one KEK. */
export interface KekProvider {
  /** A short name for messages and audit records, such as `local` or `aws-kms`. */
  readonly name: string;
  /** The KEK id and version that new data keys are wrapped under. */
  currentKid(): string;
  generateDataKey(context: EncryptionContext, options?: WrapOptions): Promise<GeneratedDataKey>;
  unwrapDataKey(key: WrappedDataKey, context: EncryptionContext, options?: KeyCallOptions): Promise<Buffer>;
  /**
   * The same data key wrapped under the current KEK version (or `options.kid`), with the same context: server-side
   * where the service can (AWS `ReEncrypt`, Vault `rewrap`), else unwrapped and wrapped again inside the HSM or this
   * process.
   */
  rewrapDataKey(
    key: WrappedDataKey,
    context: EncryptionContext,
    options?: WrapOptions,
  ): Promise<WrappedDataKey>;
  /** The KEK's versions and their states, as the service reports them. */
  describeKek(options?: KeyCallOptions): Promise<KekDescription>;
  /**
   * Makes a new KEK version in the service and returns its kid. The new version wraps nothing until a wrap names
   * it (`WrapOptions.kid`): phicache publishes it to the fleet first and promotes it later (DESIGN.md §4). Absent
   * where the service rotates on its own schedule and cannot wrap under a chosen version.
   */
  createVersion?(options?: KeyCallOptions): Promise<string>;
  /** Frees what the adapter holds (an HSM session, sockets); PhiCache calls it when it closes. */
  close?(): Promise<void>;
}

/** What PhiCache needs: a KEK and the fleet's name secret. */
export interface KeyProvider extends KekProvider {
  /**
   * The secret that per-tenant name keys are derived from. It is stored wrapped by the KEK and must be stable
   * across rotations, so that key names (and the key hashes auditors search for) do not change.
   */
  nameSecret(options?: KeyCallOptions): Promise<Buffer>;
  /**
   * The KEK version the name secret is wrapped under, where a service may disable that version (a keyset's): a
   * version that wraps it must stay enabled until a rewrapped keyset is deployed. Absent for the local keyring,
   * which never disables a version.
   */
  nameSecretKid?(): string;
}

/**
 * What `openKekProvider(uri, options)` receives: every adapter module in `src/keys/providers/` exports a function of
 * that name and shape, and the key-URI factory loads the module (and its optional SDK) only when a URI names it.
 */
export interface KekProviderOpenOptions {
  /** Which domain's KEK this is; bound into every context so that domains cannot open each other's keys. */
  readonly domain: KeyDomain;
  /** Where a URI's `pin-source=env:VAR`, tokens and role ids are read from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The service endpoint, when not the provider's default (a VPC endpoint, a regional endpoint, a local server). */
  readonly endpoint?: string;
}

export type OpenKekProvider = (uri: string, options: KekProviderOpenOptions) => Promise<KekProvider>;

export const DATA_KEY_BYTES = 32;
