import assert from 'node:assert/strict';
import { createHmac, createSecretKey, hkdfSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { canonicalEncode } from '../../src/crypto/canonical.js';
import { deriveTenantNameKey, hmacName } from '../../src/crypto/key-name.js';

const nameSecret = Buffer.alloc(32, 7);
const parts = ['patient-demographics', 'Patient', 'MRN-00123456', 'user:dr.smith'];

describe('hmacName', () => {
  it('is base64url(HMAC-SHA256(key, canonical(parts))): 43 characters, no padding, no braces', () => {
    const key = randomBytes(32);
    const name = hmacName(key, parts);
    const expected = createHmac('sha256', key).update(canonicalEncode(parts)).digest('base64url');
    assert.equal(name, expected);
    assert.match(name, /^[A-Za-z0-9_-]{43}$/);
  });

  it('gives the same name for a Buffer key and the equal KeyObject', () => {
    const key = randomBytes(32);
    assert.equal(hmacName(key, parts), hmacName(createSecretKey(key), parts));
  });

  it('changes when any one part changes, and when parts are re-split', () => {
    const key = randomBytes(32);
    const names = new Set([hmacName(key, parts)]);
    parts.forEach((_, i) => {
      const changed = parts.map((p, j) => (j === i ? `${p}x` : p));
      names.add(hmacName(key, changed));
    });
    names.add(hmacName(key, ['patient-demographicsPatient', 'MRN-00123456', 'user:dr.smith']));
    names.add(hmacName(key, [...parts, '']));
    assert.equal(names.size, parts.length + 3);
  });

  it('contains no substring of its inputs', () => {
    const key = deriveTenantNameKey(nameSecret, 'hospital-a');
    const inputs = ['MRN00123456', 'SmithJohn', 'hospitala', 'Patient-Observation'];
    const name = hmacName(key, inputs);
    for (const input of inputs) {
      for (let i = 0; i + 5 <= input.length; i++) {
        assert.ok(!name.includes(input.slice(i, i + 5)), `name contains ${input.slice(i, i + 5)}`);
      }
    }
  });

  it('refuses keys shorter than 32 bytes, non-secret keys and an empty part list', () => {
    assert.throws(() => hmacName(randomBytes(31), parts), RangeError);
    assert.throws(() => hmacName(createSecretKey(randomBytes(16)), parts), RangeError);
    assert.throws(() => hmacName('secret' as unknown as Buffer, parts), TypeError);
    assert.throws(() => hmacName(randomBytes(32), []), RangeError);
  });
});

describe('deriveTenantNameKey', () => {
  it('is HKDF-SHA256(secret, salt phicache/name-key/v1, info canonical([tenant]), 32 bytes)', () => {
    const expected = Buffer.from(
      hkdfSync('sha256', nameSecret, 'phicache/name-key/v1', canonicalEncode(['hospital-a']), 32),
    );
    const key = deriveTenantNameKey(nameSecret, 'hospital-a');
    assert.equal(key.length, 32);
    assert.deepEqual(key, expected);
    assert.deepEqual(deriveTenantNameKey(nameSecret, 'hospital-a'), key);
  });

  it("PHI-TENANT-01 another tenant's name key is unrelated, so the same reference gets another name", () => {
    const tenants = ['hospital-a', 'hospital-b', 'hospital-a ', 'Hospital-A', 'hospital-a\0'];
    const keys = tenants.map((t) => deriveTenantNameKey(nameSecret, t));
    assert.equal(new Set(keys.map((k) => k.toString('hex'))).size, tenants.length);
    const names = keys.map((k) => hmacName(k, parts));
    assert.equal(new Set(names).size, tenants.length);
    // Another name secret gives other keys for the same tenant.
    assert.notDeepEqual(deriveTenantNameKey(Buffer.alloc(32, 8), 'hospital-a'), keys[0]);
  });

  it('refuses a short secret and an empty or non-string tenant', () => {
    assert.throws(() => deriveTenantNameKey(Buffer.alloc(16), 'hospital-a'), RangeError);
    assert.throws(() => deriveTenantNameKey(nameSecret, ''), RangeError);
    assert.throws(() => deriveTenantNameKey(nameSecret, 42 as unknown as string), TypeError);
  });
});
