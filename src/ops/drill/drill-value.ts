import { createHash } from 'node:crypto';

/**
 * A drill value names its own entry and the version its writer gave it, and carries a digest of both with its
 * padding: a read that returns another entry's value, an older version, or altered content is caught by content
 * alone, whatever the cache did underneath. The content is synthetic (no PHI), sized like a small chart fragment.
 */
export interface DrillValue {
  readonly id: string;
  readonly version: number;
  readonly pad: string;
  readonly digest: string;
}

/** Why a value read back is wrong, or `undefined` when it is the one the driver expects. */
export type WrongValueReason =
  | 'not-a-drill-value'
  | 'digest-mismatch'
  | 'another-entry'
  | 'older-version'
  | 'unknown-version'
  | 'present-when-absent'
  | 'served-after-expiry';

const PAD = 'x'.repeat(200);

export function drillValue(id: string, version: number): DrillValue {
  return { id, version, pad: PAD, digest: digestOf(id, version, PAD) };
}

/**
 * What the driver knows of one entry: the version last written (0: none since the last purge or delete), and
 * until when a hit is allowed (the write's end plus its TTL; a read that starts later must miss).
 */
export interface ExpectedEntry {
  readonly version: number;
  readonly liveUntil: number;
}

/**
 * Judges a hit. A miss is never wrong (an entry may expire, be evicted or be purged); a hit must be exactly the
 * expected entry at exactly its latest version, and only while that version may still live. `readStartedAt` is
 * when the read began, on the clock `liveUntil` was computed with.
 */
export function judgeHit(
  id: string,
  value: unknown,
  expected: ExpectedEntry | undefined,
  readStartedAt: number,
): WrongValueReason | undefined {
  if (!isDrillValue(value)) return 'not-a-drill-value';
  if (value.digest !== digestOf(value.id, value.version, value.pad)) return 'digest-mismatch';
  if (value.id !== id) return 'another-entry';
  if (expected === undefined || expected.version === 0) return 'present-when-absent';
  if (value.version < expected.version) return 'older-version';
  if (value.version > expected.version) return 'unknown-version';
  // The sealed expiry is at most the write's end plus its TTL; one millisecond of slack for clock rounding.
  if (readStartedAt > expected.liveUntil + 1) return 'served-after-expiry';
  return undefined;
}

function isDrillValue(value: unknown): value is DrillValue {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.id === 'string' &&
    typeof v.version === 'number' &&
    typeof v.pad === 'string' &&
    typeof v.digest === 'string'
  );
}

function digestOf(id: string, version: number, pad: string): string {
  return createHash('sha256').update(`${id}\n${version}\n${pad}`).digest('base64url').slice(0, 22);
}
