import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { EntryNameMemo, entryKey } from '../../src/keys/entry-names.js';
import { NameKeyring } from '../../src/keys/tenant-names.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';

describe('EntryNameMemo', () => {
  test('one id under other tenants, classes, resources and scopes gets names of its own, on a miss and on a hit', async () => {
    const policy = await loadDefaultPolicy();
    const phi = policy.dataClass('encrypted-phi')!;
    const record = policy.dataClass('full-patient-record')!;
    const session = policy.dataClass('session-token')!;
    const keyring = new NameKeyring(randomBytes(32));
    const memo = new EntryNameMemo(100);
    // More variants of one id than the memo keeps under it: the oldest are named again, never confused.
    const variants = [
      { tenant: 'st-marys', dataClass: phi, resource: 'lab', scope: { user: 'dr.ada' } },
      { tenant: 'st-judes', dataClass: phi, resource: 'lab', scope: { user: 'dr.ada' } },
      { tenant: 'st-marys', dataClass: record, resource: 'lab', scope: { user: 'dr.ada' } },
      { tenant: 'st-marys', dataClass: phi, resource: 'note', scope: { user: 'dr.ada' } },
      { tenant: 'st-marys', dataClass: phi, resource: 'lab', scope: { user: 'dr.bob' } },
      { tenant: 'st-marys', dataClass: phi, resource: 'lab', scope: {} },
      { tenant: 'st-marys', dataClass: phi, resource: 'lab', scope: { user: '' } },
      { tenant: 'st-marys', dataClass: session, resource: 'lab', scope: { session: 's1' } },
      { tenant: 'st-marys', dataClass: session, resource: 'lab', scope: { session: 's2' } },
      { tenant: 'st-marys', dataClass: session, resource: 'lab', scope: { session: 's1', user: 'dr.ada' } },
    ];
    const expected = variants.map((v) =>
      entryKey(keyring.forTenant(v.tenant), v.dataClass, v.resource, 'MRN1', v.scope),
    );
    for (let pass = 0; pass < 3; pass++) {
      variants.forEach((v, i) => {
        const names = memo.of(
          keyring.forTenant(v.tenant),
          v.tenant,
          v.dataClass,
          v.resource,
          'MRN1',
          v.scope,
        );
        assert.equal(names.storeKey, expected[i], `variant ${i}, pass ${pass}`);
      });
    }
    // A scope part the class does not use is not part of the name, and no user names the entry as an empty one.
    assert.equal(expected[7], expected[9]);
    assert.equal(expected[5], expected[6]);
    assert.equal(new Set(expected).size, variants.length - 2);
  });
});
