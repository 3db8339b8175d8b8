import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { checkedKeyProvider } from '../../src/keys/checked-provider.js';
import type { GeneratedDataKey, KeyCallOptions, KeyProvider } from '../../src/keys/key-provider.js';

/** A provider whose generateDataKey answers only when the test says, and reports the signal it was given. */
function slowProvider() {
  let answer!: (key: GeneratedDataKey) => void;
  const seen: { signal?: AbortSignal } = {};
  const provider: KeyProvider = {
    name: 'slow',
    currentKid: () => 'slow:v1',
    generateDataKey: (_context, options?: KeyCallOptions) => {
      if (options?.signal !== undefined) seen.signal = options.signal;
      return new Promise((resolve) => {
        answer = resolve;
      });
    },
    unwrapDataKey: async () => {
      throw new Error('socket hang up');
    },
    rewrapDataKey: async () => {
      throw new PhiCacheError('ERR_KEY_ACCESS_DENIED', 'denied');
    },
    describeKek: async () => ({ uri: 'local:slow', current: 'slow:v1', versions: [] }),
    nameSecret: async () => Buffer.alloc(32, 1),
  };
  return { provider, seen, answer: (key: GeneratedDataKey) => answer(key) };
}

describe('the checked key provider', () => {
  test('a call past its deadline is aborted, fails as unavailable, and a key that arrives later is zeroed', async () => {
    const slow = slowProvider();
    const checked = checkedKeyProvider(slow.provider, 20);
    await assert.rejects(
      checked.generateDataKey({}),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_KEY_SERVICE_UNAVAILABLE',
    );
    assert.equal(slow.seen.signal?.aborted, true, 'the adapter was told to stop');
    const late = { kid: 'slow:v1', wrapped: Buffer.alloc(60, 2), plaintext: Buffer.alloc(32, 9) };
    slow.answer(late);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(late.plaintext, Buffer.alloc(32, 0), 'nobody holds the late key, so it is zeroed');
  });

  test("the caller's own signal abandons the call", async () => {
    const slow = slowProvider();
    const checked = checkedKeyProvider(slow.provider, 60_000);
    const controller = new AbortController();
    const call = checked.generateDataKey({}, { signal: controller.signal });
    controller.abort(new Error('request ended'));
    await assert.rejects(call, PhiCacheError);
    assert.equal(slow.seen.signal?.aborted, true);
  });

  test('an untyped failure is an outage; the port codes pass through as they are', async () => {
    const checked = checkedKeyProvider(slowProvider().provider, 1000);
    await assert.rejects(
      checked.unwrapDataKey({ kid: 'slow:v1', wrapped: Buffer.alloc(60) }, {}),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_KEY_SERVICE_UNAVAILABLE',
    );
    await assert.rejects(
      checked.rewrapDataKey({ kid: 'slow:v1', wrapped: Buffer.alloc(60) }, {}),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_KEY_ACCESS_DENIED',
    );
  });
});
