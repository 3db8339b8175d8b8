import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import type { CachedDek } from '../../src/keys/dek-cache.js';
import { withLiveKey } from '../../src/keys/live-key.js';

function dek(evicted: boolean): CachedDek {
  return {
    tenant: 't',
    className: 'c',
    gen: 0,
    epoch: 1,
    id: 'aa',
    kid: 'k',
    key: Buffer.alloc(32, evicted ? 0 : 7),
    loadedAt: 0,
    sealed: 0,
    evicted,
  };
}

describe('a data key is used only while it is live', () => {
  test('a key evicted while the caller waited is fetched again; the one used is live', async () => {
    const fetched = [dek(true), dek(true), dek(false)];
    let calls = 0;
    const { dek: used, result } = await withLiveKey(
      async () => fetched[calls++]!,
      (key) => key.key[0],
    );
    assert.equal(calls, 3);
    assert.equal(used.evicted, false);
    assert.equal(result, 7, 'never the zeros of an evicted key');
  });

  test('a key evicted every time gives up with a typed error, and never uses it', async () => {
    let used = false;
    await assert.rejects(
      withLiveKey(
        async () => dek(true),
        () => {
          used = true;
        },
      ),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_KEY_SERVICE_UNAVAILABLE',
    );
    assert.equal(used, false);
  });
});
