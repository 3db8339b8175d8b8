import { canonicalRecordBody } from './canonical-record.js';
import { type AuditRecord, type Checkpoint, recordLineBody, sha256Hex } from './record.js';

/**
 * A line parsed once: a well-formed record, a checkpoint, or neither. `hash` is the SHA-256 of the line's own
 * bytes without its hash and MAC (undefined when the line does not end as the writer ends every record), and
 * `canonical` says whether the line is byte for byte what the writer would write for the values it holds: no
 * escape where none is needed, no repeated key, the writer's key order, no whitespace. A reader that keeps the
 * first of two repeated keys, or a grep for a key hash written with an escape, would otherwise see other values
 * than the verifier.
 */
export type ParsedLine =
  | {
      readonly kind: 'record';
      readonly record: AuditRecord;
      readonly hash: string | undefined;
      readonly canonical: boolean;
    }
  | { readonly kind: 'checkpoint'; readonly checkpoint: Checkpoint; readonly canonical: boolean }
  | { readonly kind: 'bad' };

const BAD: ParsedLine = { kind: 'bad' };

export function parseLine(text: string, cache?: Map<string, ParsedLine>): ParsedLine {
  const known = cache?.get(text);
  if (known !== undefined) return known;
  let parsed = BAD;
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const fields = value as Record<string, unknown>;
      const record = asRecord(fields);
      if (record !== undefined) {
        const body = recordLineBody(text);
        parsed = {
          kind: 'record',
          record,
          hash: body === undefined ? undefined : sha256Hex(body),
          canonical: body !== undefined && isCanonicalBody(fields, body),
        };
      } else {
        const checkpoint = asCheckpoint(fields);
        // Checkpoints are written with JSON.stringify in the writer's key order: the line must be exactly that.
        if (checkpoint !== undefined)
          parsed = { kind: 'checkpoint', checkpoint, canonical: JSON.stringify(fields) === text };
      }
    }
  } catch {
    // Not JSON: reported by the caller as an unparseable line.
  }
  if (cache !== undefined) {
    if (cache.size > 1_000_000) cache.clear();
    cache.set(text, parsed);
  }
  return parsed;
}

/** The body the line holds, written the writer's way, is the very text the line's hash covers. */
function isCanonicalBody(fields: Record<string, unknown>, body: string): boolean {
  const { hash: _hash, mac: _mac, ...rest } = fields;
  try {
    return canonicalRecordBody(rest) === body;
  } catch {
    // A number that is not a safe integer, or a value canonical JSON cannot hold.
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

function asRecord(value: Record<string, unknown>): AuditRecord | undefined {
  const ok =
    Number.isSafeInteger(value.seq) &&
    (value.seq as number) > 0 &&
    Number.isSafeInteger(value.mk) &&
    typeof value.chain === 'string' &&
    (value.stream === 'access' || value.stream === 'admin') &&
    typeof value.ts === 'string' &&
    !Number.isNaN(Date.parse(value.ts)) &&
    typeof value.prev === 'string' &&
    typeof value.hash === 'string' &&
    HEX64.test(value.hash) &&
    typeof value.mac === 'string';
  return ok ? (value as unknown as AuditRecord) : undefined;
}

function asCheckpoint(value: Record<string, unknown>): Checkpoint | undefined {
  const ok =
    value.type === 'checkpoint' &&
    Number.isSafeInteger(value.seq) &&
    (value.seq as number) >= 0 &&
    typeof value.chain === 'string' &&
    (value.stream === 'access' || value.stream === 'admin') &&
    typeof value.head === 'string' &&
    typeof value.ts === 'string' &&
    !Number.isNaN(Date.parse(value.ts)) &&
    Number.isSafeInteger(value.everyMs) &&
    typeof value.prevCheckpoint === 'string' &&
    typeof value.sig === 'string';
  return ok ? (value as unknown as Checkpoint) : undefined;
}
