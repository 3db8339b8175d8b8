import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodePayload, encodePayload, PayloadEncoder } from '../../src/crypto/payload-codec.js';

const isZero = (bytes: Buffer) => bytes.every((byte) => byte === 0);
const TAGS = ['phc:s:a', 'phc:t:b'];

describe('PayloadEncoder', () => {
  test('encodes exactly what encodePayload encodes, for small, growing and oversized values', () => {
    const encoder = new PayloadEncoder();
    for (const size of [0, 10, 3_000, 20_000, 70_000, 10]) {
      const json = JSON.stringify({ note: 'é€😀'.repeat(size) });
      const seen = encoder.with(json, 1000, 301_000, TAGS, (plaintext) => Buffer.from(plaintext));
      assert.deepEqual(seen, encodePayload(json, 1000, 301_000, TAGS));
      assert.deepEqual(decodePayload(seen).v, JSON.parse(json));
    }
  });

  test('the plaintext is zeroed once the step that uses it returns, and when it throws', () => {
    const encoder = new PayloadEncoder();
    for (const size of [100, 70_000]) {
      const json = JSON.stringify({ note: 'x'.repeat(size) });
      let held: Buffer | undefined;
      encoder.with(json, 1, 2, TAGS, (plaintext) => {
        held = plaintext;
        assert.ok(!isZero(plaintext));
      });
      assert.ok(held !== undefined && isZero(held), `zeroed after use (${size})`);
      assert.throws(
        () =>
          encoder.with(json, 1, 2, TAGS, (plaintext) => {
            held = plaintext;
            throw new Error('seal failed');
          }),
        /seal failed/,
      );
      assert.ok(isZero(held), `zeroed after a throw (${size})`);
    }
  });
});
