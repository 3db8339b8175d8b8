import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  type EnvelopeBinding,
  type EnvelopeHeader,
  MIN_ENVELOPE_BYTES,
  openEnvelope,
  type ParsedEnvelope,
  parseEnvelope,
  sealEnvelope,
} from '../../src/crypto/envelope.js';
import { NoncePool } from '../../src/crypto/nonce-pool.js';
import { PhiCacheError, type PhiCacheErrorCode } from '../../src/errors.js';

const pool = new NoncePool();
const dek = randomBytes(32);
const header: EnvelopeHeader = {
  expiresAt: 1_767_225_600_123,
  epoch: 0xdead_beef,
  dekId: Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
  kid: 'aws-kms://arn:aws:kms:eu-west-1:111122223333:key/abcd#v7',
};
const binding: EnvelopeBinding = {
  tenant: 'hospital-a',
  className: 'patient-demographics',
  storeKey: 'pc:e:Vq3xk2uS0cTtQm6rQ0yQk9bY8x3nX0XrK7tJm2l5AbC',
};
const plaintext = Buffer.from('{"name":"Jane Roe","mrn":"MRN-00123456","dob":"1970-01-01"}');

function seal(
  overrides: { header?: Partial<EnvelopeHeader>; binding?: Partial<EnvelopeBinding> } = {},
): Buffer {
  return sealEnvelope(
    dek,
    { ...header, ...overrides.header },
    { ...binding, ...overrides.binding },
    plaintext,
    pool.take(),
  );
}

function open(bytes: Uint8Array, b: EnvelopeBinding = binding, key: Buffer = dek): Buffer {
  return openEnvelope(key, parseEnvelope(bytes), b);
}

function rejects(fn: () => unknown, code: PhiCacheErrorCode): PhiCacheError {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => {
    caught = e;
    return e instanceof PhiCacheError && e.code === code;
  });
  return caught as PhiCacheError;
}

describe('envelope', () => {
  it('round-trips with a Buffer DEK and a KeyObject DEK, for empty and 1 MiB plaintexts', () => {
    assert.deepEqual(open(seal()), plaintext);
    const keyObject = createSecretKey(dek);
    for (const pt of [Buffer.alloc(0), randomBytes(1024 * 1024)]) {
      const env = sealEnvelope(keyObject, header, binding, pt, pool.take());
      assert.deepEqual(openEnvelope(keyObject, parseEnvelope(env), binding), pt);
      assert.deepEqual(openEnvelope(dek, parseEnvelope(env), binding), pt);
    }
  });

  it('keeps every header field, at the documented offsets', () => {
    const env = seal();
    const k = header.kid.length;
    assert.equal(env.length, 35 + k + 12 + plaintext.length + 16);
    assert.deepEqual([...env.subarray(0, 6)], [0x89, 0x50, 0x48, 0x43, 1, 1]);
    assert.equal(env.readUIntBE(6, 2) * 2 ** 48 + env.readUIntBE(8, 6), header.expiresAt);
    assert.equal(env.readUInt32BE(14), header.epoch);
    assert.deepEqual(env.subarray(18, 34), header.dekId);
    assert.equal(env[34], k);
    assert.equal(env.toString('latin1', 35, 35 + k), header.kid);

    const parsed = parseEnvelope(env);
    assert.equal(parsed.header.expiresAt, header.expiresAt);
    assert.equal(parsed.header.epoch, header.epoch);
    assert.deepEqual(parsed.header.dekId, header.dekId);
    assert.equal(parsed.header.kid, header.kid);
    assert.ok(Object.isFrozen(parsed) && Object.isFrozen(parsed.header));

    const edges = seal({ header: { expiresAt: 2 ** 53 - 1, epoch: 0, kid: 'k'.repeat(128) } });
    assert.equal(parseEnvelope(edges).header.expiresAt, 2 ** 53 - 1);
    assert.equal(parseEnvelope(edges).header.kid, 'k'.repeat(128));
  });

  it('uses a fresh nonce each time, so equal inputs seal to different bytes', () => {
    assert.notDeepEqual(seal(), seal());
  });

  it('parses a Uint8Array view at an offset without copying the body', () => {
    const env = seal();
    const backing = new Uint8Array(env.length + 10);
    backing.set(env, 7);
    assert.deepEqual(open(new Uint8Array(backing.buffer, 7, env.length)), plaintext);
  });

  it('PHI-AAD-01 a ciphertext moved to another store key or class fails authentication', () => {
    const env = seal();
    rejects(() => open(env, { ...binding, storeKey: `${binding.storeKey}x` }), 'ERR_ENVELOPE_AUTH');
    rejects(() => open(env, { ...binding, className: 'patient-notes' }), 'ERR_ENVELOPE_AUTH');
    // Re-splitting the binding strings must not help: the binding is canonically encoded.
    const resplit = seal({ binding: { className: 'patient', storeKey: `-demographics${binding.storeKey}` } });
    rejects(() => open(resplit, binding), 'ERR_ENVELOPE_AUTH');
    rejects(() => open(env, binding, randomBytes(32)), 'ERR_ENVELOPE_AUTH');
  });

  it('PHI-AAD-01 a changed header field (expiry, epoch, DEK id, kid) fails authentication', () => {
    const env = seal();
    const k = header.kid.length;
    const variants: [string, (b: Buffer) => void][] = [
      ['expiresAt extended', (b) => b.writeUIntBE(header.expiresAt + 3_600_000, 8, 6)],
      ['epoch', (b) => b.writeUInt32BE(1, 14)],
      ['dekId', (b) => b.writeUInt8(b.readUInt8(33) ^ 1, 33)],
      ['kid version', (b) => (b[35 + k - 1] = 0x38)],
    ];
    for (const [what, mutate] of variants) {
      const copy = Buffer.from(env);
      mutate(copy);
      assert.notDeepEqual(copy, env, what);
      rejects(() => open(copy), 'ERR_ENVELOPE_AUTH');
    }
    // A shorter kid that is a prefix of the real one moves the header end; still refused.
    const shorter = Buffer.concat([
      env.subarray(0, 34),
      Buffer.from([k - 1]),
      env.subarray(35, 35 + k - 1),
      env.subarray(35 + k),
    ]);
    rejects(() => open(shorter), 'ERR_ENVELOPE_AUTH');
  });

  it("PHI-TENANT-01 another tenant's ciphertext fails authentication, even under the same DEK", () => {
    const other = seal({ binding: { tenant: 'hospital-b' } });
    rejects(() => open(other), 'ERR_ENVELOPE_AUTH');
    assert.deepEqual(open(other, { ...binding, tenant: 'hospital-b' }), plaintext);
    rejects(() => open(seal(), { ...binding, tenant: 'hospital-a\0' }), 'ERR_ENVELOPE_AUTH');
  });

  it('says nothing of the plaintext, tenant, class or store key when it refuses', () => {
    const secrets = [
      binding.tenant,
      binding.className,
      binding.storeKey,
      'Jane',
      'MRN-00123456',
      'hospital-b',
    ];
    const env = seal({ binding: { tenant: 'hospital-b' } });
    const errors = [
      rejects(() => open(env), 'ERR_ENVELOPE_AUTH'),
      rejects(() => open(Buffer.concat([Buffer.from('MRN-00123456'), env])), 'ERR_ENVELOPE_MALFORMED'),
    ];
    for (const e of errors) {
      const text = `${e.message} ${e.hint} ${String(e.cause)} ${e.stack}`;
      for (const s of secrets) assert.ok(!text.includes(s), `error text includes ${s}`);
    }
  });

  it('refuses malformed bytes with ERR_ENVELOPE_MALFORMED and newer versions with ERR_ENVELOPE_VERSION', () => {
    const env = seal();
    const k = header.kid.length;
    const with_ = (offset: number, value: number): Buffer => {
      const copy = Buffer.from(env);
      copy[offset] = value;
      return copy;
    };
    const expiry = Buffer.from(env);
    expiry.writeUInt32BE(0x20_0000, 6);
    const cases: [string, Uint8Array, PhiCacheErrorCode][] = [
      ['empty', Buffer.alloc(0), 'ERR_ENVELOPE_MALFORMED'],
      ['json', Buffer.from('{"value":"Jane"}'), 'ERR_ENVELOPE_MALFORMED'],
      ['magic', with_(0, 0x88), 'ERR_ENVELOPE_MALFORMED'],
      ['version 0', with_(4, 0), 'ERR_ENVELOPE_MALFORMED'],
      ['version 2', with_(4, 2), 'ERR_ENVELOPE_VERSION'],
      ['version 2, short', Buffer.from([0x89, 0x50, 0x48, 0x43, 2]), 'ERR_ENVELOPE_VERSION'],
      ['algorithm', with_(5, 2), 'ERR_ENVELOPE_MALFORMED'],
      ['expiry beyond 2^53', expiry, 'ERR_ENVELOPE_MALFORMED'],
      ['kid length 0', with_(34, 0), 'ERR_ENVELOPE_MALFORMED'],
      ['kid length 129', with_(34, 129), 'ERR_ENVELOPE_MALFORMED'],
      ['kid length past the end', with_(34, 128), 'ERR_ENVELOPE_MALFORMED'],
      ['kid with a space', with_(35, 0x20), 'ERR_ENVELOPE_MALFORMED'],
      ['kid with DEL', with_(36, 0x7f), 'ERR_ENVELOPE_MALFORMED'],
      ['kid with a high byte', with_(35 + k - 1, 0xe9), 'ERR_ENVELOPE_MALFORMED'],
      ['no room for the tag', env.subarray(0, 35 + k + 12 + 15), 'ERR_ENVELOPE_MALFORMED'],
      ['under the minimum', env.subarray(0, MIN_ENVELOPE_BYTES - 1), 'ERR_ENVELOPE_MALFORMED'],
    ];
    for (const [what, bytes, code] of cases) {
      const e = rejects(() => open(bytes), code);
      assert.ok(e.message.length > 0, what);
    }
    rejects(() => parseEnvelope(env, env.length - 1), 'ERR_ENVELOPE_MALFORMED');
    assert.equal(parseEnvelope(env, env.length).header.kid, header.kid);
  });

  it('refuses a 20 MB value by its size, quickly and without copying it', () => {
    assert.ok(20_000_000 > DEFAULT_MAX_ENVELOPE_BYTES);
    const huge = new Uint8Array(20_000_000);
    huge.set(seal().subarray(0, 64));
    const before = process.memoryUsage().arrayBuffers;
    let fastest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const start = process.hrtime.bigint();
      rejects(() => parseEnvelope(huge), 'ERR_ENVELOPE_MALFORMED');
      fastest = Math.min(fastest, Number(process.hrtime.bigint() - start) / 1e6);
    }
    const grown = process.memoryUsage().arrayBuffers - before;
    // A copy or a scan of 20 MB takes milliseconds; the size check takes microseconds.
    assert.ok(fastest < 1, `fastest refusal took ${fastest} ms`);
    assert.ok(grown < 1024 * 1024, `array buffers grew by ${grown} bytes`);
  });

  it('refuses misuse by the caller with TypeError or RangeError', () => {
    const nonce = pool.take();
    const bad: [string, () => unknown, ErrorConstructor][] = [
      ['short DEK', () => sealEnvelope(randomBytes(31), header, binding, plaintext, nonce), RangeError],
      [
        'AES-128 KeyObject',
        () => sealEnvelope(createSecretKey(randomBytes(16)), header, binding, plaintext, nonce),
        RangeError,
      ],
      ['short nonce', () => sealEnvelope(dek, header, binding, plaintext, randomBytes(11)), RangeError],
      ['short dekId', () => seal({ header: { dekId: randomBytes(15) } }), RangeError],
      ['empty kid', () => seal({ header: { kid: '' } }), RangeError],
      ['long kid', () => seal({ header: { kid: 'k'.repeat(129) } }), RangeError],
      ['kid with a space', () => seal({ header: { kid: 'local v1' } }), RangeError],
      ['kid not ASCII', () => seal({ header: { kid: 'clé/v1' } }), RangeError],
      ['negative expiry', () => seal({ header: { expiresAt: -1 } }), RangeError],
      ['fractional expiry', () => seal({ header: { expiresAt: 1.5 } }), RangeError],
      ['unsafe expiry', () => seal({ header: { expiresAt: 2 ** 53 } }), RangeError],
      ['epoch over uint32', () => seal({ header: { epoch: 2 ** 32 } }), RangeError],
      ['empty tenant', () => seal({ binding: { tenant: '' } }), RangeError],
      [
        'string plaintext',
        () => sealEnvelope(dek, header, binding, 'Jane' as unknown as Uint8Array, nonce),
        TypeError,
      ],
      ['string envelope', () => parseEnvelope('envelope' as unknown as Uint8Array), TypeError],
      ['tiny maxBytes', () => parseEnvelope(seal(), 10), RangeError],
      ['short DEK on open', () => openEnvelope(randomBytes(16), parseEnvelope(seal()), binding), RangeError],
    ];
    for (const [what, fn, type] of bad) assert.throws(fn, type, what);
  });

  it('opens only what parseEnvelope made, so the header read is the header authenticated', () => {
    const parsed = parseEnvelope(seal());
    // @ts-expect-error only parseEnvelope makes a ParsedEnvelope
    const typed: ParsedEnvelope = { header: parsed.header };
    assert.throws(() => openEnvelope(dek, typed, binding), TypeError);
    const forged = { header: { ...parsed.header, expiresAt: 2 ** 52 } } as unknown as ParsedEnvelope;
    assert.throws(() => openEnvelope(dek, forged, binding), TypeError);
    assert.throws(() => openEnvelope(dek, { ...parsed }, binding), TypeError);
    assert.deepEqual(openEnvelope(dek, parsed, binding), plaintext);
  });
});
