import { randomFillSync } from 'node:crypto';

/** The AES-GCM nonce length: 96 bits, the only length GCM uses without hashing it first. */
export const NONCE_BYTES = 12;

const DEFAULT_NONCES_PER_REFILL = 4096;
const MAX_NONCES_PER_REFILL = 1 << 20;

/**
 * Fresh random GCM nonces drawn from a pooled CSPRNG buffer.
 *
 * `crypto.randomBytes(12)` pays a call into OpenSSL for every nonce, a sizeable share of a whole seal; one
 * `randomFillSync` of 48 KiB costs about as much as a few calls. Random nonces rather than a counter, because DEKs
 * are shared by every instance of the fleet and instances do not coordinate. Each refill allocates a new buffer,
 * so a nonce already handed out is never overwritten, and the read offset only moves forward, so no nonce is
 * handed out twice.
 */
export class NoncePool {
  readonly #bytesPerRefill: number;
  #pool: Buffer = Buffer.alloc(0);
  #offset = 0;

  constructor(noncesPerRefill: number = DEFAULT_NONCES_PER_REFILL) {
    if (
      !Number.isSafeInteger(noncesPerRefill) ||
      noncesPerRefill < 1 ||
      noncesPerRefill > MAX_NONCES_PER_REFILL
    ) {
      throw new RangeError(`noncesPerRefill must be an integer from 1 to ${MAX_NONCES_PER_REFILL}`);
    }
    this.#bytesPerRefill = noncesPerRefill * NONCE_BYTES;
  }

  /** 12 random bytes never returned before. The caller owns them: the pool never writes them again. */
  take(): Buffer {
    if (this.#offset === this.#pool.length) {
      // allocUnsafeSlow keeps the pool out of Node's shared 8 KiB slab, whose other slices belong to others.
      this.#pool = randomFillSync(Buffer.allocUnsafeSlow(this.#bytesPerRefill));
      this.#offset = 0;
    }
    const start = this.#offset;
    this.#offset = start + NONCE_BYTES;
    return this.#pool.subarray(start, this.#offset);
  }
}
