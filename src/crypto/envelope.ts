import { createCipheriv, createDecipheriv, KeyObject } from 'node:crypto';
import { PhiCacheError } from '../errors.js';
import { canonicalEncodeAfter } from './canonical.js';
import { NONCE_BYTES } from './nonce-pool.js';

/**
 * The versioned binary envelope that holds one sealed cache value (promise 4), AES-256-GCM.
 *
 * offset      size  field
 * 0           4     magic 0x89 'P' 'H' 'C'
 * 4           1     format version (1)
 * 5           1     algorithm id (1 = AES-256-GCM, 96-bit nonce, 128-bit tag)
 * 6           8     expiresAt, uint64 BE, integer ms since the Unix epoch, at most 2^53 - 1
 * 14          4     DEK epoch, uint32 BE
 * 18          16    DEK id
 * 34          1     kid length K, 1..128
 * 35          K     kid: KEK id with version, ASCII 0x21..0x7e
 * 35+K        12    nonce
 * 47+K        N     ciphertext (N >= 0)
 * 47+K+N      16    GCM tag
 *
 * AAD = bytes 0 .. 35+K (the header exactly as stored) || canonicalEncode(['phicache/envelope/v1', tenant,
 * className, storeKey]). A changed header byte, or a ciphertext moved to another store key, tenant or class,
 * fails authentication.
 */

export const ENVELOPE_VERSION = 1;
export const ENVELOPE_ALG_AES_256_GCM = 1;
export const DEFAULT_MAX_ENVELOPE_BYTES = 16 * 1024 * 1024 + 1024;
export const DEK_BYTES = 32;
export const DEK_ID_BYTES = 16;
export const KID_MAX_BYTES = 128;
export const TAG_BYTES = 16;

// The high bit in the first byte marks binary, so text or JSON written to the same key never parses (as in PNG).
const MAGIC_0 = 0x89;
const MAGIC_1 = 0x50;
const MAGIC_2 = 0x48;
const MAGIC_3 = 0x43;
const OFF_VERSION = 4;
const OFF_ALG = 5;
const OFF_EXPIRES_HI = 6;
const OFF_EXPIRES_LO = 10;
const OFF_EPOCH = 14;
const OFF_DEK_ID = 18;
const OFF_KID_LEN = 34;
const OFF_KID = 35;
export const MIN_ENVELOPE_BYTES = OFF_KID + 1 + NONCE_BYTES + TAG_BYTES;

const BINDING_CONTEXT = 'phicache/envelope/v1';
const TWO_POW_32 = 2 ** 32;
// The high 32 bits of a safe integer.
const MAX_EXPIRES_HI = 0x1f_ffff;
const KID_MIN_CHAR = 0x21;
const KID_MAX_CHAR = 0x7e;
const GCM = 'aes-256-gcm';
const GCM_OPTIONS = { authTagLength: TAG_BYTES } as const;

export interface EnvelopeHeader {
  /** Integer ms since the Unix epoch; checked by the caller after a successful open (promise 3). */
  readonly expiresAt: number;
  /** uint32: the DEK epoch. */
  readonly epoch: number;
  /** Exactly 16 bytes. */
  readonly dekId: Buffer;
  /** KEK id including its version: 1..128 characters of ASCII 0x21..0x7e. */
  readonly kid: string;
}

/** Where the value lives. None of it is stored in the envelope; all of it is authenticated. */
export interface EnvelopeBinding {
  readonly tenant: string;
  readonly className: string;
  readonly storeKey: string;
}

/**
 * A structurally valid envelope, not yet authenticated: its header says which DEK to fetch, and means nothing
 * more until `openEnvelope` succeeds. Only `parseEnvelope` makes one, so the header read here is always the one
 * that open authenticates. It holds views of the parsed bytes (no copy of the ciphertext); changing those bytes
 * before open makes open fail.
 */
export interface ParsedEnvelope {
  readonly header: EnvelopeHeader;
  // Makes a hand-built object a type error too, not only a TypeError at run time.
  readonly [parsedBrand]: true;
}

declare const parsedBrand: unique symbol;

class Parsed implements ParsedEnvelope {
  declare readonly [parsedBrand]: true;
  readonly header: EnvelopeHeader;
  readonly #headerBytes: Buffer;
  readonly #nonce: Buffer;
  readonly #ciphertext: Buffer;
  readonly #tag: Buffer;

  constructor(header: EnvelopeHeader, headerBytes: Buffer, nonce: Buffer, ciphertext: Buffer, tag: Buffer) {
    this.header = header;
    this.#headerBytes = headerBytes;
    this.#nonce = nonce;
    this.#ciphertext = ciphertext;
    this.#tag = tag;
    Object.freeze(this);
  }

  static open(
    dek: Buffer | KeyObject,
    envelope: unknown,
    binding: EnvelopeBinding | PreparedBinding,
  ): Buffer {
    if (typeof envelope !== 'object' || envelope === null || !(#headerBytes in envelope)) {
      throw new TypeError('openEnvelope takes an envelope returned by parseEnvelope');
    }
    const headerBytes = envelope.#headerBytes;
    const aad = bindingAad(headerBytes.length, binding);
    headerBytes.copy(aad, 0);
    const decipher = createDecipheriv(GCM, dek, envelope.#nonce, GCM_OPTIONS);
    decipher.setAAD(aad);
    decipher.setAuthTag(envelope.#tag);
    const plaintext = decipher.update(envelope.#ciphertext);
    try {
      decipher.final();
    } catch (cause) {
      // GCM hands out plaintext before it checks the tag; unauthenticated plaintext must not linger.
      plaintext.fill(0);
      throw new PhiCacheError('ERR_ENVELOPE_AUTH', 'envelope failed authentication', { cause });
    }
    return plaintext;
  }
}

/**
 * A binding encoded once, for a place that is sealed and opened many times (a hot entry): the canonical encoding
 * checks and encodes three strings, which costs more than copying its bytes into the AAD of each call. Only
 * `PreparedBinding.of` makes one, so its bytes are always the encoding of a checked binding.
 */
export class PreparedBinding {
  /**
   * The encoding's bytes, one character each (latin1): a short string costs a fraction of a buffer of its own,
   * whose backing store measured about 900 bytes of memory per binding, and a slice of Node's shared pool would keep
   * a whole 8 KiB pool alive as long as the memo holds it.
   */
  readonly #bytes: string;

  private constructor(bytes: string) {
    this.#bytes = bytes;
    Object.freeze(this);
  }

  /** Encodes and checks `binding` as seal and open would, once. */
  static of(binding: EnvelopeBinding): PreparedBinding {
    return new PreparedBinding(encodeBinding(0, binding).toString('latin1'));
  }

  /** The AAD buffer: `headroom` bytes for the caller's header, then the binding's encoding. */
  after(headroom: number): Buffer {
    const aad = Buffer.allocUnsafe(headroom + this.#bytes.length);
    aad.write(this.#bytes, headroom, 'latin1');
    return aad;
  }
}

/**
 * Seals `plaintext` into a new envelope. `nonce` must be fresh (take it from a `NoncePool`): reusing a nonce
 * under the same DEK breaks GCM.
 */
export function sealEnvelope(
  dek: Buffer | KeyObject,
  header: EnvelopeHeader,
  binding: EnvelopeBinding | PreparedBinding,
  plaintext: Uint8Array,
  nonce: Buffer,
): Buffer {
  assertDek(dek);
  assertHeader(header);
  if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be a Uint8Array');
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
    throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`);
  }

  const { kid, expiresAt } = header;
  const headerLength = OFF_KID + kid.length;
  const aad = bindingAad(headerLength, binding);
  aad[0] = MAGIC_0;
  aad[1] = MAGIC_1;
  aad[2] = MAGIC_2;
  aad[3] = MAGIC_3;
  aad[OFF_VERSION] = ENVELOPE_VERSION;
  aad[OFF_ALG] = ENVELOPE_ALG_AES_256_GCM;
  aad.writeUInt32BE(Math.floor(expiresAt / TWO_POW_32), OFF_EXPIRES_HI);
  aad.writeUInt32BE(expiresAt >>> 0, OFF_EXPIRES_LO);
  aad.writeUInt32BE(header.epoch, OFF_EPOCH);
  aad.set(header.dekId, OFF_DEK_ID);
  aad[OFF_KID_LEN] = kid.length;
  aad.write(kid, OFF_KID, 'latin1');

  const cipher = createCipheriv(GCM, dek, nonce, GCM_OPTIONS);
  cipher.setAAD(aad);
  const ciphertext = cipher.update(plaintext);
  cipher.final();
  const tag = cipher.getAuthTag();
  return Buffer.concat(
    [aad.subarray(0, headerLength), nonce, ciphertext, tag],
    headerLength + NONCE_BYTES + ciphertext.length + TAG_BYTES,
  );
}

/**
 * Checks the structure of stored bytes without trusting any of it: magic, version, algorithm, every length,
 * the kid charset, a safe-integer expiry, and the size bounds (checked first, so an oversized value costs
 * nothing). Never reads out of bounds and copies only the header (at most 163 bytes).
 */
export function parseEnvelope(
  bytes: Uint8Array,
  maxBytes: number = DEFAULT_MAX_ENVELOPE_BYTES,
): ParsedEnvelope {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('envelope bytes must be a Uint8Array');
  if (!Number.isSafeInteger(maxBytes) || maxBytes < MIN_ENVELOPE_BYTES) {
    throw new RangeError(`maxBytes must be an integer of at least ${MIN_ENVELOPE_BYTES}`);
  }
  const size = bytes.length;
  if (size > maxBytes) throw malformed(`envelope is ${size} bytes, over the limit of ${maxBytes}`);
  if (size < OFF_ALG) throw malformed(`envelope is ${size} bytes, too short`);
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1 || bytes[2] !== MAGIC_2 || bytes[3] !== MAGIC_3) {
    throw malformed('not a phicache envelope (bad magic)');
  }
  const version = bytes[OFF_VERSION]!;
  if (version > ENVELOPE_VERSION) {
    throw new PhiCacheError(
      'ERR_ENVELOPE_VERSION',
      `envelope format version ${version} is newer than this reader`,
    );
  }
  if (version !== ENVELOPE_VERSION) throw malformed(`envelope format version ${version} does not exist`);
  if (size < MIN_ENVELOPE_BYTES) throw malformed(`envelope is ${size} bytes, too short`);
  if (bytes[OFF_ALG] !== ENVELOPE_ALG_AES_256_GCM) throw malformed('unknown envelope algorithm');

  const kidLength = bytes[OFF_KID_LEN]!;
  if (kidLength === 0 || kidLength > KID_MAX_BYTES) throw malformed('envelope kid length out of range');
  const headerLength = OFF_KID + kidLength;
  const bodyStart = headerLength + NONCE_BYTES;
  if (size < bodyStart + TAG_BYTES) throw malformed(`envelope is ${size} bytes, too short for its header`);
  for (let i = OFF_KID; i < headerLength; i++) {
    const c = bytes[i]!;
    if (c < KID_MIN_CHAR || c > KID_MAX_CHAR)
      throw malformed('envelope kid has a byte outside ASCII 0x21..0x7e');
  }

  // The header is copied so that the decoded fields and the authenticated bytes cannot drift apart.
  const headerBytes = Buffer.allocUnsafe(headerLength);
  headerBytes.set(bytes.subarray(0, headerLength));
  const expiresHi = headerBytes.readUInt32BE(OFF_EXPIRES_HI);
  if (expiresHi > MAX_EXPIRES_HI) throw malformed('envelope expiry is beyond the safe integer range');
  const header: EnvelopeHeader = Object.freeze({
    expiresAt: expiresHi * TWO_POW_32 + headerBytes.readUInt32BE(OFF_EXPIRES_LO),
    epoch: headerBytes.readUInt32BE(OFF_EPOCH),
    dekId: headerBytes.subarray(OFF_DEK_ID, OFF_DEK_ID + DEK_ID_BYTES),
    kid: headerBytes.toString('latin1', OFF_KID, headerLength),
  });

  const view = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, size);
  const tagStart = size - TAG_BYTES;
  return new Parsed(
    header,
    headerBytes,
    view.subarray(headerLength, bodyStart),
    view.subarray(bodyStart, tagStart),
    view.subarray(tagStart, size),
  );
}

/** Authenticates and decrypts. Any failure (altered bytes, wrong DEK, wrong binding) is ERR_ENVELOPE_AUTH. */
export function openEnvelope(
  dek: Buffer | KeyObject,
  envelope: ParsedEnvelope,
  binding: EnvelopeBinding | PreparedBinding,
): Buffer {
  assertDek(dek);
  return Parsed.open(dek, envelope, binding);
}

function bindingAad(headroom: number, binding: EnvelopeBinding | PreparedBinding): Buffer {
  if (binding instanceof PreparedBinding) return binding.after(headroom);
  return encodeBinding(headroom, binding);
}

function encodeBinding(headroom: number, binding: EnvelopeBinding): Buffer {
  if (typeof binding !== 'object' || binding === null) throw new TypeError('binding must be an object');
  const { tenant, className, storeKey } = binding;
  assertNonEmptyString(tenant, 'binding.tenant');
  assertNonEmptyString(className, 'binding.className');
  assertNonEmptyString(storeKey, 'binding.storeKey');
  return canonicalEncodeAfter(headroom, [BINDING_CONTEXT, tenant, className, storeKey]);
}

function malformed(message: string): PhiCacheError {
  return new PhiCacheError('ERR_ENVELOPE_MALFORMED', message);
}

function assertDek(dek: unknown): void {
  if (dek instanceof KeyObject) {
    if (dek.type !== 'secret' || dek.symmetricKeySize !== DEK_BYTES) {
      throw new RangeError(`a DEK must be a secret key of ${DEK_BYTES} bytes`);
    }
  } else if (!(dek instanceof Uint8Array) || dek.length !== DEK_BYTES) {
    throw new RangeError(`a DEK must be a secret key of ${DEK_BYTES} bytes`);
  }
}

function assertHeader(header: EnvelopeHeader): void {
  if (typeof header !== 'object' || header === null) throw new TypeError('header must be an object');
  const { expiresAt, epoch, dekId, kid } = header;
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
    throw new RangeError('header.expiresAt must be a safe non-negative integer (ms since the epoch)');
  }
  if (!Number.isInteger(epoch) || epoch < 0 || epoch > 0xffff_ffff) {
    throw new RangeError('header.epoch must be a uint32');
  }
  if (!(dekId instanceof Uint8Array) || dekId.length !== DEK_ID_BYTES) {
    throw new RangeError(`header.dekId must be ${DEK_ID_BYTES} bytes`);
  }
  if (typeof kid !== 'string') throw new TypeError('header.kid must be a string');
  if (kid.length === 0 || kid.length > KID_MAX_BYTES) {
    throw new RangeError(`header.kid must be 1..${KID_MAX_BYTES} characters`);
  }
  for (let i = 0; i < kid.length; i++) {
    const c = kid.charCodeAt(i);
    if (c < KID_MIN_CHAR || c > KID_MAX_CHAR) throw new RangeError('header.kid must be ASCII 0x21..0x7e');
  }
}

function assertNonEmptyString(value: unknown, what: string): void {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  if (value.length === 0) throw new RangeError(`${what} must not be empty`);
}
