import { secretErrors } from './secret-errors.js';

/** Larger than any password, token or CA bundle: a value this big is the wrong thing. */
export const MAX_SECRET_BYTES = 64 * 1024;

/**
 * The secret as stored, trailing line breaks dropped (`echo` and most editors add one). The input buffer is
 * zeroed when a copy is made, so only the returned buffer holds the secret.
 */
export function trimSecret(reference: string, bytes: Buffer): Buffer {
  if (bytes.length > MAX_SECRET_BYTES) {
    bytes.fill(0);
    throw secretErrors.notFound(reference, 'the value is too large to be a secret');
  }
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  if (end === 0) throw secretErrors.notFound(reference, 'the secret is empty');
  if (end === bytes.length) return bytes;
  const trimmed = Buffer.from(bytes.subarray(0, end));
  bytes.fill(0);
  return trimmed;
}

/**
 * One field of a secret that holds a JSON object (`aws-sm://name#password`, Vault's `#field`). The field must be
 * a string; the error names the field, never what the document holds.
 */
export function jsonField(reference: string, document: Buffer, field: string): Buffer {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document.toString('utf8'));
  } catch {
    throw secretErrors.notFound(reference, `the secret is not a JSON object, so it has no field ${field}`);
  } finally {
    document.fill(0);
  }
  return fieldOf(reference, parsed, field);
}

/** A string field of an object already parsed (Vault's `data.data`). */
export function fieldOf(reference: string, object: unknown, field: string): Buffer {
  const value =
    typeof object === 'object' && object !== null && Object.hasOwn(object, field)
      ? (object as Record<string, unknown>)[field]
      : undefined;
  if (typeof value !== 'string') {
    throw secretErrors.notFound(reference, `the secret has no string field ${field}`);
  }
  return Buffer.from(value, 'utf8');
}
