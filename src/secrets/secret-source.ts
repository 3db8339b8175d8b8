/**
 * The SecretSource port: where a connection secret (a Redis AUTH string or ACL password, a server CA, a Vault
 * token) is read from. A secret is read into a Buffer held in memory, never written to a temporary file, and read
 * again whenever the caller asks: a Redis binding asks on every reconnect, so a rotated password is picked up
 * without a restart.
 *
 * Errors are `PhiCacheError`s with the codes of the key port, so that callers treat a secret service like a key
 * service: `ERR_KEY_SERVICE_UNAVAILABLE` (unreachable, throttled past the deadline, timed out, an answer that makes
 * no sense), `ERR_KEY_ACCESS_DENIED` (the service refused this caller), `ERR_KEY_NOT_FOUND` (no such variable,
 * file, secret, version or field, or an empty one), `ERR_KEY_DISABLED` (the secret is scheduled for deletion or
 * its version destroyed). Messages name the reference, which holds no secret, and never the value.
 */

export interface SecretReadOptions {
  /** Abandons the read: the source stops waiting and a value that arrives later is zeroed. */
  readonly signal?: AbortSignal;
}

export interface SecretSource {
  /** The reference it reads (`env:VAR`, `file:/path`, `aws-sm://…`, `gcp-sm://…`, `vault-kv://…`): safe to log. */
  readonly reference: string;
  /** The secret's bytes, trailing line breaks dropped. The caller owns the buffer and may zero it. */
  read(options?: SecretReadOptions): Promise<Buffer>;
}
