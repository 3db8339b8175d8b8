import { PhiCacheError } from '../errors.js';

/** What one envelope seals: the value and the facts a reader must trust only when they come from inside it. */
export interface SealedPayload {
  /** The cached value as plain JSON data. */
  readonly v: unknown;
  /** When the data was read from its source, in ms: a fill's start, not its end (see PhiCache.getOrSet). */
  readonly createdAt: number;
  /** The sealed expiry, in ms: authoritative over any store TTL. */
  readonly expiresAt: number;
  /** Every store tag name the entry was written with: the purges that must reach it. */
  readonly tags: readonly string[];
}

/**
 * The plaintext of an envelope. `json` is the value already serialized by the policy decision (the exact text the
 * policy checked), so the value is stringified once per write.
 */
export function encodePayload(
  json: string,
  createdAt: number,
  expiresAt: number,
  tags: readonly string[],
): Buffer {
  return Buffer.from(
    `{"createdAt":${createdAt},"expiresAt":${expiresAt},"tags":${JSON.stringify(tags)},"v":${json}}`,
    'utf8',
  );
}

/**
 * Parses and checks a plaintext that authenticated: a payload that opened but is not ours is damage (a key
 * misused elsewhere), reported as ERR_ENVELOPE_MALFORMED, never as a value.
 */
export function decodePayload(plaintext: Buffer): SealedPayload {
  let parsed: unknown;
  try {
    parsed = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw malformed();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed();
  const { v, createdAt, expiresAt, tags } = parsed as Record<string, unknown>;
  if (
    v === undefined ||
    !Number.isSafeInteger(createdAt) ||
    !Number.isSafeInteger(expiresAt) ||
    !Array.isArray(tags) ||
    !tags.every((tag) => typeof tag === 'string')
  ) {
    throw malformed();
  }
  return { v, createdAt: createdAt as number, expiresAt: expiresAt as number, tags: tags as string[] };
}

function malformed(): PhiCacheError {
  return new PhiCacheError('ERR_ENVELOPE_MALFORMED', 'the sealed payload is not a phicache payload');
}
