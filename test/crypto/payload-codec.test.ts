import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodePayload, encodePayload } from '../../src/crypto/payload-codec.js';
import { PhiCacheError } from '../../src/errors.js';

const malformed = (error: unknown) =>
  error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_MALFORMED';

describe('the sealed payload', () => {
  test('round-trips the value text exactly as the policy serialized it', () => {
    const json = JSON.stringify({ hba1c: 7.9, notes: ['a', 'b'], nested: { x: null } });
    const payload = decodePayload(encodePayload(json, 1000, 301_000, ['phc:s:a', 'phc:t:b']));
    assert.deepEqual(payload, {
      v: JSON.parse(json),
      createdAt: 1000,
      expiresAt: 301_000,
      tags: ['phc:s:a', 'phc:t:b'],
    });
  });

  test('a plaintext that opened but is not a phicache payload is malformed, never a value', () => {
    const bad = [
      'not json',
      '[1,2]',
      'null',
      '{"createdAt":1,"expiresAt":2,"tags":[]}',
      '{"v":1,"createdAt":"1","expiresAt":2,"tags":[]}',
      '{"v":1,"createdAt":1,"expiresAt":2.5,"tags":[]}',
      '{"v":1,"createdAt":1,"expiresAt":2,"tags":[3]}',
      '{"v":1,"createdAt":1,"expiresAt":2}',
    ];
    for (const text of bad) assert.throws(() => decodePayload(Buffer.from(text)), malformed, text);
  });

  test('the error says nothing of the plaintext', () => {
    try {
      decodePayload(Buffer.from('{"v":"MRN00482913"'));
      assert.fail('expected a throw');
    } catch (error) {
      assert.doesNotMatch(String((error as Error).message), /MRN/);
    }
  });
});
