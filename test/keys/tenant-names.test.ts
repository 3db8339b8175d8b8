import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { deriveTenantNameKey, hmacName } from '../../src/crypto/key-name.js';
import { NameKeyring } from '../../src/keys/tenant-names.js';

const CLASS = 'encrypted-phi';

describe('NameKeyring', () => {
  test('a working set of 10,000 names is computed once and hits the memo on the second pass', () => {
    const keyring = new NameKeyring(randomBytes(32));
    const names = keyring.forTenant('st-marys');
    const first = Array.from({ length: 10_000 }, (_, i) =>
      names.entry(CLASS, 'lab', `MRN${i}`, 'dr.ada', ''),
    );
    assert.equal(keyring.stats().computed, 10_000);
    const second = Array.from({ length: 10_000 }, (_, i) =>
      names.entry(CLASS, 'lab', `MRN${i}`, 'dr.ada', ''),
    );
    // The old memo was cleared whole at 8,192 names, so this pass computed every name again.
    assert.equal(keyring.stats().computed, 10_000, 'no HMAC on the second pass');
    assert.deepEqual(second, first);
  });

  test('names are the same HMACs as before the memo was shared: memo hits and misses give one answer', () => {
    const secret = randomBytes(32);
    const keyring = new NameKeyring(Buffer.from(secret), { maxNames: 2 });
    const key = deriveTenantNameKey(secret, 'st-marys');
    const names = keyring.forTenant('st-marys');
    const expected = {
      entry: `phc:e:${CLASS}:${hmacName(key, ['entry', CLASS, 'lab', 'MRN1', 'u', 's'])}`,
      reference: `hmac-sha256:${hmacName(key, ['reference', CLASS, 'lab', 'MRN1'])}`,
      tag: `phc:t:${hmacName(key, ['tag', 'patient', 'p1'])}`,
      scope: `phc:s:${hmacName(key, ['scope', 'user', 'u'])}`,
      tenantTag: `phc:s:${hmacName(key, ['tenant'])}`,
      keysTag: `phc:s:${hmacName(key, ['tenant-keys'])}`,
    };
    for (let pass = 0; pass < 2; pass++) {
      assert.equal(names.entry(CLASS, 'lab', 'MRN1', 'u', 's'), expected.entry);
      assert.equal(names.reference(CLASS, 'lab', 'MRN1'), expected.reference);
      assert.equal(names.tag('patient', 'p1'), expected.tag);
      assert.equal(names.scope('user', 'u'), expected.scope);
      assert.equal(names.tenantTag, expected.tenantTag);
      assert.equal(names.keysTag, expected.keysTag);
    }
  });

  test('PHI-TENANT-01 tenants share one memo but never a name', () => {
    const keyring = new NameKeyring(randomBytes(32));
    const a = keyring.forTenant('a');
    const b = keyring.forTenant('b');
    assert.notEqual(a.reference(CLASS, 'lab', 'MRN1'), b.reference(CLASS, 'lab', 'MRN1'));
    assert.notEqual(a.tenantTag, b.tenantTag);
    // Tenant ids that would run together without their length prefix still get distinct names.
    const ab = keyring.forTenant('ab');
    const abc = keyring.forTenant('abc');
    assert.notEqual(ab.tag('c', 'x'), abc.tag('', 'x'));
    // Four names through the shared memo; the two tenant tags live on each tenant's own object.
    assert.equal(keyring.stats().computed, 4);
  });

  test('1,000 tenants x 200 names stay within the name and tenant bounds, and names stay right after eviction', () => {
    const keyring = new NameKeyring(randomBytes(32), { maxNames: 20_000, maxTenants: 500 });
    const firstOfEach: string[] = [];
    for (let t = 0; t < 1_000; t++) {
      const names = keyring.forTenant(`tenant-${t}`);
      for (let i = 0; i < 200; i++) {
        const name = names.reference(CLASS, 'lab', `MRN${i}`);
        if (i === 0) firstOfEach.push(name);
      }
      assert.ok(keyring.stats().names <= 20_000);
      assert.ok(keyring.stats().tenants <= 500);
    }
    assert.deepEqual(keyring.stats(), { tenants: 500, names: 20_000, computed: 200_000 });
    // Tenant 0's key and names were dropped; derived again, they are the same names.
    assert.equal(keyring.forTenant('tenant-0').reference(CLASS, 'lab', 'MRN0'), firstOfEach[0]);
  });

  test('close() zeroes the secret, drops every name and refuses new tenants', () => {
    const secret = randomBytes(32);
    const keyring = new NameKeyring(secret);
    keyring.forTenant('st-marys').reference(CLASS, 'lab', 'MRN1');
    keyring.close();
    assert.ok(secret.every((byte) => byte === 0));
    assert.deepEqual({ ...keyring.stats(), computed: 0 }, { tenants: 0, names: 0, computed: 0 });
    assert.throws(() => keyring.forTenant('st-marys'), TypeError);
  });

  test('options are validated at construction', () => {
    const secret = randomBytes(32);
    assert.throws(() => new NameKeyring(secret, { maxNames: 0 }), RangeError);
    assert.throws(() => new NameKeyring(secret, { maxTenants: 1.5 }), RangeError);
  });
});
