import { createHmac, hkdfSync, KeyObject } from 'node:crypto';
import { type CanonicalPart, canonicalEncode } from './canonical.js';

/** Name keys and name secrets are at least this long: shorter HMAC keys would be the weak link. */
export const NAME_KEY_BYTES = 32;

const NAME_KEY_SALT = 'phicache/name-key/v1';

/**
 * The store key name for a list of parts: base64url(HMAC-SHA256(nameKey, canonicalEncode(parts))), 43 characters
 * without padding. A name reveals nothing of its parts, and the canonical encoding keeps caller strings from
 * forging structure (or Redis hash tags: the output alphabet has no braces).
 */
export function hmacName(key: Buffer | KeyObject, parts: readonly CanonicalPart[]): string {
  assertNameKey(key, 'name key');
  if (Array.isArray(parts) && parts.length === 0) throw new RangeError('a name needs at least one part');
  return createHmac('sha256', key).update(canonicalEncode(parts)).digest('base64url');
}

/**
 * The name key of one tenant: HKDF-SHA256 of the name secret, with the tenant in `info`. The same reference
 * therefore gets unrelated names in two tenants, and one tenant's name key says nothing about another's (PHI-TENANT-01).
 */
export function deriveTenantNameKey(nameSecret: Buffer, tenant: string): Buffer {
  assertNameKey(nameSecret, 'name secret');
  if (typeof tenant !== 'string') throw new TypeError('tenant must be a string');
  if (tenant.length === 0) throw new RangeError('tenant must not be empty');
  return Buffer.from(
    hkdfSync('sha256', nameSecret, NAME_KEY_SALT, canonicalEncode([tenant]), NAME_KEY_BYTES),
  );
}

function assertNameKey(key: unknown, what: string): void {
  if (key instanceof KeyObject) {
    if (key.type !== 'secret') throw new TypeError(`${what} must be a secret KeyObject`);
    if ((key.symmetricKeySize ?? 0) < NAME_KEY_BYTES) {
      throw new RangeError(`${what} must be at least ${NAME_KEY_BYTES} bytes`);
    }
  } else if (key instanceof Uint8Array) {
    if (key.length < NAME_KEY_BYTES) throw new RangeError(`${what} must be at least ${NAME_KEY_BYTES} bytes`);
  } else {
    throw new TypeError(`${what} must be a Buffer or a secret KeyObject`);
  }
}
