import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  type EnvelopeBinding,
  type EnvelopeHeader,
  openEnvelope,
  parseEnvelope,
  sealEnvelope,
} from '../../src/crypto/envelope.js';
import { NoncePool } from '../../src/crypto/nonce-pool.js';
import { PhiCacheError, type PhiCacheErrorCode } from '../../src/errors.js';

// Deterministic by default so that CI failures reproduce; set PHICACHE_FUZZ_SEED to explore other inputs.
const SEED = Number(process.env.PHICACHE_FUZZ_SEED ?? 0x5eed_2026) >>> 0;
const RANDOM_CASES = 110_000;

type EnvelopeCode = 'ERR_ENVELOPE_MALFORMED' | 'ERR_ENVELOPE_VERSION' | 'ERR_ENVELOPE_AUTH';
const ENVELOPE_CODES: readonly PhiCacheErrorCode[] = [
  'ERR_ENVELOPE_MALFORMED',
  'ERR_ENVELOPE_VERSION',
  'ERR_ENVELOPE_AUTH',
];
const MALFORMED: readonly EnvelopeCode[] = ['ERR_ENVELOPE_MALFORMED'];
const VERSION: readonly EnvelopeCode[] = ['ERR_ENVELOPE_VERSION'];
const AUTH: readonly EnvelopeCode[] = ['ERR_ENVELOPE_AUTH'];
const MALFORMED_OR_AUTH: readonly EnvelopeCode[] = ['ERR_ENVELOPE_MALFORMED', 'ERR_ENVELOPE_AUTH'];

/** sfc32 seeded through splitmix32: small, fast, and the same stream on every platform. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  const split = (): number => {
    s = (s + 0x9e37_79b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85eb_ca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2_ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split();
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) >>> 0;
    return t;
  };
}

const next = prng(SEED);
const int = (n: number): number => Math.floor((next() / 2 ** 32) * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
function randomBytes(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) {
    const r = next();
    out[i] = r;
    if (i + 1 < n) out[i + 1] = r >>> 8;
    if (i + 2 < n) out[i + 2] = r >>> 16;
    if (i + 3 < n) out[i + 3] = r >>> 24;
  }
  return out;
}

const key = (label: string): Buffer => createHash('sha256').update(`fuzz-${SEED}-${label}`).digest();
const dek = key('dek');
const otherDek = key('other-dek');
const binding: EnvelopeBinding = { tenant: 'tenant-a', className: 'labs', storeKey: 'pc:e:store-key-a' };
const pool = new NoncePool();

interface Base {
  readonly bytes: Buffer;
  readonly kidLength: number;
}

// Every base differs from every other in every header field, so that a swap always changes the bytes.
const bases: Base[] = [1, 14, 57, 128].flatMap((kidLength, k) =>
  [0, 1, 16, 100, 333].map((ptLength, p): Base => {
    const i = k * 5 + p;
    const header: EnvelopeHeader = {
      expiresAt: 1_700_000_000_000 + i * 1_000_003,
      epoch: 0x1000 + i,
      dekId: key(`dek-id-${i}`).subarray(0, 16),
      kid: `${String.fromCharCode(0x41 + i)}${'k'.repeat(kidLength - 1)}`,
    };
    return {
      bytes: sealEnvelope(dek, header, binding, randomBytes(ptLength), pool.take()),
      kidLength,
    };
  }),
);

function sealFor(b: Partial<EnvelopeBinding>, key: Buffer = dek): Buffer {
  const header: EnvelopeHeader = {
    expiresAt: 1_700_000_000_000 + int(1e9),
    epoch: next(),
    dekId: randomBytes(16),
    kid: `kms/v${int(1000)}`,
  };
  return sealEnvelope(key, header, { ...binding, ...b }, randomBytes(int(300)), pool.take());
}

/** What a parser that is neither lenient nor over-strict must say about one flipped bit of a valid envelope. */
function expectAfterFlip(base: Base, flipped: Buffer, offset: number): readonly EnvelopeCode[] {
  const headerEnd = 35 + base.kidLength;
  if (offset < 4 || offset === 5) return MALFORMED;
  if (offset === 4) return flipped[4]! > 1 ? VERSION : MALFORMED;
  if (offset >= 6 && offset < 14) return flipped.readUInt32BE(6) > 0x1f_ffff ? MALFORMED : AUTH;
  if (offset === 34) return MALFORMED_OR_AUTH;
  if (offset >= 35 && offset < headerEnd) {
    const c = flipped[offset]!;
    return c >= 0x21 && c <= 0x7e ? AUTH : MALFORMED;
  }
  return AUTH;
}

function flipBits(bytes: Buffer, count: number): Buffer {
  const out = Buffer.from(bytes);
  const bits = new Set<number>();
  while (bits.size < Math.min(count, bytes.length * 8)) bits.add(int(bytes.length * 8));
  for (const bit of bits) out[bit >>> 3]! ^= 1 << (bit & 7);
  return out;
}

function headerEnd(base: Base): number {
  return 35 + base.kidLength;
}

function twoBases(): [Base, Base] {
  const a = int(bases.length);
  const b = (a + 1 + int(bases.length - 1)) % bases.length;
  return [bases[a]!, bases[b]!];
}

type Generated = { readonly bytes: Uint8Array; readonly expect?: readonly EnvelopeCode[] };

const FIELDS: readonly (readonly [number, number])[] = [
  [6, 14],
  [14, 18],
  [18, 34],
];

const generators: Record<string, () => Generated> = {
  'random bytes': () => ({ bytes: randomBytes(int(601)) }),
  'random after a valid prefix': () => {
    const bytes = randomBytes(6 + int(595));
    bases[0]!.bytes.copy(bytes, 0, 0, 6);
    return { bytes };
  },
  'random body under a valid header': () => {
    const base = pick(bases);
    const end = headerEnd(base);
    return { bytes: Buffer.concat([base.bytes.subarray(0, end), randomBytes(28 + int(400))]), expect: AUTH };
  },
  'one bit flipped': () => {
    const base = pick(bases);
    const bit = int(base.bytes.length * 8);
    const bytes = Buffer.from(base.bytes);
    bytes[bit >>> 3]! ^= 1 << (bit & 7);
    return { bytes, expect: expectAfterFlip(base, bytes, bit >>> 3) };
  },
  'several bits flipped': () => ({ bytes: flipBits(pick(bases).bytes, 2 + int(15)) }),
  'bits flipped in the body': () => {
    const base = pick(bases);
    const start = headerEnd(base);
    const body = flipBits(base.bytes.subarray(start), 1 + int(8));
    return { bytes: Buffer.concat([base.bytes.subarray(0, start), body]), expect: AUTH };
  },
  truncated: () => {
    const base = pick(bases);
    const length = int(base.bytes.length);
    const expect = length < headerEnd(base) + 28 ? MALFORMED : AUTH;
    return { bytes: base.bytes.subarray(0, length), expect };
  },
  extended: () => ({ bytes: Buffer.concat([pick(bases).bytes, randomBytes(1 + int(64))]), expect: AUTH }),
  prefixed: () => ({ bytes: Buffer.concat([randomBytes(1 + int(8)), pick(bases).bytes]) }),
  'header field swapped from another envelope': () => {
    const [a, b] = twoBases();
    const [from, to] = pick(FIELDS);
    const bytes = Buffer.from(a.bytes);
    b.bytes.copy(bytes, from, from, to);
    return { bytes, expect: AUTH };
  },
  'kid swapped from another envelope': () => {
    const [a, b] = twoBases();
    const bytes = Buffer.concat([
      a.bytes.subarray(0, 34),
      b.bytes.subarray(34, headerEnd(b)),
      a.bytes.subarray(headerEnd(a)),
    ]);
    return { bytes, expect: AUTH };
  },
  'header of one, body of another': () => {
    const [a, b] = twoBases();
    return {
      bytes: Buffer.concat([a.bytes.subarray(0, headerEnd(a)), b.bytes.subarray(headerEnd(b))]),
      expect: AUTH,
    };
  },
  'sealed under another DEK': () => ({ bytes: sealFor({}, otherDek), expect: AUTH }),
  "another tenant's ciphertext": () => ({ bytes: sealFor({ tenant: 'tenant-b' }), expect: AUTH }),
  'another class': () => ({ bytes: sealFor({ className: 'notes' }), expect: AUTH }),
  'another store key': () => ({ bytes: sealFor({ storeKey: 'pc:e:store-key-b' }), expect: AUTH }),
};

describe('envelope fuzz', () => {
  it('every valid base envelope opens (the fuzz would prove nothing otherwise)', () => {
    for (const base of bases) {
      const parsed = parseEnvelope(base.bytes);
      assert.equal(parsed.header.kid.length, base.kidLength);
      assert.ok(openEnvelope(dek, parsed, binding) instanceof Buffer);
    }
  });

  it(`PHI-AAD-01 over 100,000 corrupt, foreign or misplaced envelopes all fail with an envelope code (seed ${SEED})`, (t) => {
    t.diagnostic(`seed ${SEED} (set PHICACHE_FUZZ_SEED to change it)`);
    const started = process.hrtime.bigint();
    const byCode = new Map<string, number>();
    const byKind = new Map<string, number>();
    let cases = 0;

    const check = (kind: string, bytes: Uint8Array, expect?: readonly EnvelopeCode[]): void => {
      const where = `seed ${SEED}, case ${cases} (${kind}, ${bytes.length} bytes)`;
      cases++;
      let opened: Buffer | undefined;
      let error: unknown;
      try {
        opened = openEnvelope(dek, parseEnvelope(bytes), binding);
      } catch (e) {
        error = e;
      }
      assert.equal(opened, undefined, `${where}: returned plaintext`);
      assert.ok(error instanceof PhiCacheError, `${where}: threw ${String(error)}`);
      assert.ok(ENVELOPE_CODES.includes(error.code), `${where}: threw ${error.code}`);
      if (expect !== undefined) {
        assert.ok(expect.includes(error.code as EnvelopeCode), `${where}: ${error.code}, expected ${expect}`);
      }
      byCode.set(error.code, (byCode.get(error.code) ?? 0) + 1);
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    };

    // Exhaustive over each base: every single bit flip and every truncation.
    for (const base of bases) {
      for (let bit = 0; bit < base.bytes.length * 8; bit++) {
        const bytes = Buffer.from(base.bytes);
        bytes[bit >>> 3]! ^= 1 << (bit & 7);
        check('every bit flipped', bytes, expectAfterFlip(base, bytes, bit >>> 3));
      }
      for (let length = 0; length < base.bytes.length; length++) {
        check(
          'every truncation',
          base.bytes.subarray(0, length),
          length < headerEnd(base) + 28 ? MALFORMED : AUTH,
        );
      }
    }

    const kinds = Object.keys(generators);
    for (let i = 0; i < RANDOM_CASES; i++) {
      const kind = kinds[i % kinds.length]!;
      const { bytes, expect } = generators[kind]!();
      check(kind, bytes, expect);
    }

    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    t.diagnostic(`${cases} cases in ${seconds.toFixed(2)} s`);
    t.diagnostic(`by code: ${JSON.stringify(Object.fromEntries(byCode))}`);
    t.diagnostic(`by kind: ${JSON.stringify(Object.fromEntries(byKind))}`);

    assert.ok(cases >= 100_000, `only ${cases} cases`);
    for (const code of ENVELOPE_CODES) assert.ok((byCode.get(code) ?? 0) > 0, `no case gave ${code}`);
    for (const kind of [...kinds, 'every bit flipped', 'every truncation']) {
      assert.ok((byKind.get(kind) ?? 0) >= 1000, `too few cases of ${kind}`);
    }
  });
});
