import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NONCE_BYTES, NoncePool } from '../../src/crypto/nonce-pool.js';

describe('NoncePool', () => {
  it('hands out 200,000 nonces of 12 bytes with no duplicate', () => {
    const pool = new NoncePool();
    const seen = new Set<string>();
    for (let i = 0; i < 200_000; i++) {
      const nonce = pool.take();
      assert.equal(nonce.length, NONCE_BYTES);
      seen.add(nonce.toString('latin1'));
    }
    assert.equal(seen.size, 200_000);
  });

  it('never changes a nonce it handed out when it refills', () => {
    const pool = new NoncePool(4);
    const taken = Array.from({ length: 4 }, () => pool.take());
    const copies = taken.map((n) => Buffer.from(n));
    const later = Array.from({ length: 40 }, () => pool.take());
    taken.forEach((n, i) => {
      assert.deepEqual(n, copies[i]);
    });
    for (const n of later) assert.notEqual(n.buffer, taken[0]!.buffer);
    assert.equal(new Set([...taken, ...later].map((n) => n.toString('hex'))).size, 44);
  });

  it('refuses refill sizes that are not integers from 1 to 2^20 with RangeError', () => {
    for (const n of [0, -1, 1.5, Number.NaN, 2 ** 20 + 1]) {
      assert.throws(() => new NoncePool(n), RangeError, String(n));
    }
  });
});
