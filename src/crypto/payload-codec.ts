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
  return Buffer.from(payloadText(json, createdAt, expiresAt, tags), 'utf8');
}

function payloadText(json: string, createdAt: number, expiresAt: number, tags: readonly string[]): string {
  return `{"createdAt":${createdAt},"expiresAt":${expiresAt},"tags":${JSON.stringify(tags)},"v":${json}}`;
}

/** The scratch buffer starts at 4 KiB and grows up to 64 KiB; a larger payload gets a buffer of its own. */
const SCRATCH_START_BYTES = 4 * 1024;
const SCRATCH_MAX_BYTES = 64 * 1024;

/**
 * Encodes payloads into one buffer that a cache reuses for every write, so that sealing a value allocates no
 * plaintext buffer: each write encodes, seals and zeroes its bytes in one synchronous step, so no other write ever
 * finds them there, and the buffer holds only zeros between writes.
 */
export class PayloadEncoder {
  #scratch: Buffer = Buffer.alloc(SCRATCH_START_BYTES);

  /** Calls `use` with the encoded payload (see encodePayload), which is zeroed when `use` returns or throws. */
  with<T>(
    json: string,
    createdAt: number,
    expiresAt: number,
    tags: readonly string[],
    use: (plaintext: Buffer) => T,
  ): T {
    const text = payloadText(json, createdAt, expiresAt, tags);
    // A UTF-16 code unit never takes more than 3 bytes of UTF-8, so a text within a third of the buffer fits.
    const needed = text.length * 3;
    if (needed > this.#scratch.length && needed <= SCRATCH_MAX_BYTES) {
      this.#scratch = Buffer.alloc(Math.min(SCRATCH_MAX_BYTES, Math.max(needed, 2 * this.#scratch.length)));
    }
    const plaintext =
      needed <= this.#scratch.length
        ? this.#scratch.subarray(0, this.#scratch.write(text, 0, 'utf8'))
        : Buffer.from(text, 'utf8');
    try {
      return use(plaintext);
    } finally {
      plaintext.fill(0);
    }
  }
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
