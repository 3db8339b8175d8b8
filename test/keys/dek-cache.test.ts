import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { type CachedDek, DekCache } from '../../src/keys/dek-cache.js';

function dek(tenant: string, id: string, loadedAt = 0, epoch = 1): CachedDek {
  return {
    tenant,
    className: 'encrypted-phi',
    epoch,
    gen: 0,
    id,
    kid: 'local:cache:v1',
    key: randomBytes(32),
    loadedAt,
    sealed: 0,
    evicted: false,
  };
}

const isZero = (buffer: Buffer) => buffer.every((byte) => byte === 0);

describe('DekCache', () => {
  test('bounded by age: an old key is gone and zeroed', () => {
    const cache = new DekCache({ maxAgeMs: 1000 });
    const entry = dek('t', 'a', 0);
    cache.put(entry, true);
    assert.equal(cache.get('t', 'encrypted-phi', 'a', 999), entry);
    assert.equal(cache.get('t', 'encrypted-phi', 'a', 1000), undefined);
    assert.ok(isZero(entry.key));
    assert.equal(cache.takeForSealing('t', 'encrypted-phi', 1, 1000), undefined);
  });

  test('bounded by messages sealed: the budget is counted and then the key is retired and zeroed', () => {
    const cache = new DekCache({ maxMessages: 3 });
    const entry = dek('t', 'a');
    cache.put(entry, true);
    for (let i = 0; i < 3; i++) assert.equal(cache.takeForSealing('t', 'encrypted-phi', 1, 0), entry);
    assert.equal(entry.sealed, 3);
    assert.equal(cache.takeForSealing('t', 'encrypted-phi', 1, 0), undefined);
    assert.ok(isZero(entry.key));
    assert.equal(
      cache.isSpent('t', 'encrypted-phi', 'a'),
      true,
      'a spent key is never loaded for sealing again',
    );
    assert.equal(cache.isSpent('t', 'encrypted-phi', 'b'), false);
  });

  test('bounded by count: the least recently used key is evicted and zeroed', () => {
    const cache = new DekCache({ maxEntries: 2 });
    const a = dek('t', 'a');
    const b = dek('t', 'b');
    const c = dek('t', 'c');
    cache.put(a, false);
    cache.put(b, false);
    cache.get('t', 'encrypted-phi', 'a', 0);
    cache.put(c, false);
    assert.equal(cache.size, 2);
    assert.ok(isZero(b.key));
    assert.ok(!isZero(a.key));
    assert.equal(cache.get('t', 'encrypted-phi', 'b', 0), undefined);
  });

  test('a key loaded only for reading is never used for sealing', () => {
    const cache = new DekCache();
    cache.put(dek('t', 'a'), false);
    assert.equal(cache.takeForSealing('t', 'encrypted-phi', 1, 0), undefined);
  });

  test('PHI-TENANT-01 keys are held per tenant and evictTenant zeroes only that tenant', () => {
    const cache = new DekCache();
    const mine = dek('t1', 'same-id');
    const theirs = dek('t2', 'same-id');
    cache.put(mine, true);
    cache.put(theirs, true);
    assert.equal(cache.get('t1', 'encrypted-phi', 'same-id', 0), mine);
    assert.equal(cache.get('t2', 'encrypted-phi', 'same-id', 0), theirs);
    assert.equal(cache.evictTenant('t1'), 1);
    assert.ok(isZero(mine.key));
    assert.ok(!isZero(theirs.key));
  });

  test('options are validated', () => {
    assert.throws(() => new DekCache({ maxAgeMs: 0 }), RangeError);
    assert.throws(() => new DekCache({ maxMessages: 2 ** 31 }), RangeError);
    assert.throws(() => new DekCache({ maxEntries: 1.5 }), RangeError);
  });
});
