import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { frame, frameCarries, unframe } from '../../src/store/redis/tag-index.js';

const envelope = Buffer.from('sealed bytes');

describe('the RedisStore frame says exactly which tags its write carries', () => {
  test('the same tags in any order, and repeated tags count once', () => {
    const framed = frame(envelope, ['a', 'b', 'c'], [1, 2, 3]);
    assert.deepEqual(unframe(framed), envelope);
    assert.equal(frameCarries(framed, ['a', 'b', 'c']), true);
    assert.equal(frameCarries(framed, ['c', 'a', 'b']), true);
    assert.equal(frameCarries(framed, ['a', 'b', 'c', 'a']), true);
  });

  test('fewer, more or other tags than framed are refused', () => {
    const framed = frame(envelope, ['a', 'b'], [1, 2]);
    assert.equal(frameCarries(framed, ['a']), false);
    assert.equal(frameCarries(framed, ['a', 'b', 'c']), false);
    assert.equal(frameCarries(framed, ['a', 'c']), false);
    assert.equal(frameCarries(framed, []), false);
  });

  test('a frame edited to repeat one fingerprint in place of another is refused', () => {
    const framed = frame(envelope, ['a', 'b'], [1, 2]);
    // Copy the first tag's fingerprint over the second's: the count still matches two tags.
    framed.copy(framed, 3 + 16, 3, 3 + 8);
    assert.equal(frameCarries(framed, ['a', 'b']), false);
    assert.equal(frameCarries(framed, ['a']), false);
  });

  test('an unframed value carries no tags', () => {
    assert.equal(frameCarries(envelope, []), true);
    assert.equal(frameCarries(envelope, ['a']), false);
  });
});
