/**
 * The KeyProvider port: the only way phicache touches a key-encryption key (KEK). The KEK stays in the KMS or
 * HSM; phicache only sees data keys (DEKs), in plaintext in memory while it uses them and wrapped everywhere else.
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

export interface KeyProvider {
  /** A short name for messages and audit records, such as `local` or `aws-kms`. */
  readonly name: string;
  /** The KEK id and version that new data keys are wrapped under. */
  currentKid(): string;
  generateDataKey(context: EncryptionContext): Promise<GeneratedDataKey>;
  unwrapDataKey(key: WrappedDataKey, context: EncryptionContext): Promise<Buffer>;
  /**
   * The secret that per-tenant name keys are derived from. It is stored wrapped by the KEK and must be stable
   * across rotations, so that key names (and the key hashes auditors search for) do not change.
   */
  nameSecret(): Promise<Buffer>;
}

export const DATA_KEY_BYTES = 32;
