/**
 * An injective byte encoding of a short list of parts, used for AEAD associated data and for HMAC key names.
 *
 * Layout: uint32 BE count of parts, then for each part a 1-byte type tag, a uint32 BE length and the bytes
 * (strings as UTF-8, numbers as uint64 BE). Since every part states its type and its length, no caller string
 * can forge structure: ('ab', 'c') and ('a', 'bc') differ, and braces, colons or NULs are only bytes. The leading
 * count makes encodings prefix-free, so the encoding of a list followed by anything stays unambiguous.
 */

export type CanonicalPart = string | Uint8Array | number;

const TAG_STRING = 0x01;
const TAG_BYTES = 0x02;
const TAG_NUMBER = 0x03;
const COUNT_BYTES = 4;
const PART_HEADER_BYTES = 5;
const NUMBER_BYTES = 8;
const MAX_PART_BYTES = 0xffff_ffff;
const TWO_POW_32 = 2 ** 32;

// A lone surrogate becomes U+FFFD in UTF-8, so '\uD800' and '\uDC00' would encode alike. In a `u` regex a
// well-formed pair is one code point outside category Cs, so only lone surrogates match.
const LONE_SURROGATE = /\p{Cs}/u;

export function canonicalEncode(parts: readonly CanonicalPart[]): Buffer {
  return canonicalEncodeAfter(0, parts);
}

/**
 * The same encoding placed after `headroom` bytes the caller fills in itself, so that a fixed prefix (the
 * envelope header before the binding) costs no second buffer and no concatenation. Internal to src/crypto.
 */
export function canonicalEncodeAfter(headroom: number, parts: readonly CanonicalPart[]): Buffer {
  if (!Array.isArray(parts)) throw new TypeError('canonical parts must be an array');
  let size = headroom + COUNT_BYTES;
  for (const part of parts) size += PART_HEADER_BYTES + partLength(part);

  const out = Buffer.allocUnsafe(size);
  let offset = headroom;
  out.writeUInt32BE(parts.length, offset);
  offset += COUNT_BYTES;
  for (const part of parts) {
    if (typeof part === 'string') {
      out[offset] = TAG_STRING;
      const written = out.write(part, offset + PART_HEADER_BYTES, 'utf8');
      out.writeUInt32BE(written, offset + 1);
      offset += PART_HEADER_BYTES + written;
    } else if (typeof part === 'number') {
      out[offset] = TAG_NUMBER;
      out.writeUInt32BE(NUMBER_BYTES, offset + 1);
      out.writeUInt32BE(Math.floor(part / TWO_POW_32), offset + 5);
      out.writeUInt32BE(part >>> 0, offset + 9);
      offset += PART_HEADER_BYTES + NUMBER_BYTES;
    } else {
      out[offset] = TAG_BYTES;
      out.writeUInt32BE(part.length, offset + 1);
      out.set(part, offset + PART_HEADER_BYTES);
      offset += PART_HEADER_BYTES + part.length;
    }
  }
  return out;
}

/** Validates one part and returns its encoded length without the part header. */
function partLength(part: unknown): number {
  let length: number;
  if (typeof part === 'string') {
    if (LONE_SURROGATE.test(part)) throw new TypeError('canonical string parts must be well-formed UTF-16');
    length = Buffer.byteLength(part, 'utf8');
  } else if (typeof part === 'number') {
    if (!Number.isSafeInteger(part) || part < 0) {
      throw new RangeError('canonical number parts must be safe non-negative integers');
    }
    length = NUMBER_BYTES;
  } else if (part instanceof Uint8Array) {
    length = part.length;
  } else {
    throw new TypeError('canonical parts must be strings, Uint8Arrays or numbers');
  }
  if (length > MAX_PART_BYTES) throw new RangeError('a canonical part must be under 4 GiB');
  return length;
}
