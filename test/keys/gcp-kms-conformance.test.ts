import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { checkedKekProvider } from '../../src/keys/checked-provider.js';
import { openKekProvider } from '../../src/keys/providers/gcp-kms.js';
import { describeKekProvider } from '../../src/testing/key-provider-suite.js';
import { startFakeGcpKms } from '../harness/fake-gcp-kms.js';

const gcp = async () => {
  const kms = await startFakeGcpKms();
  // Another instance: a client of its own on the same key.
  const open = () => openKekProvider(kms.keyUri(), { domain: 'cache', endpoint: kms.endpoint });
  return { provider: await open(), openPeer: open, close: () => kms.close() };
};

describeKekProvider('Cloud KMS (official client, REST, local server)', gcp);
describeKekProvider('Cloud KMS, checked', async () => {
  const made = await gcp();
  return {
    ...made,
    provider: checkedKekProvider(made.provider),
    openPeer: async () => checkedKekProvider(await made.openPeer()),
  };
});

const CONTEXT = { 'phicache:tenant': 't-1', 'phicache:class': 'encrypted-phi' };

test('under its deadline, a throttled Cloud KMS is retried and answers; one that never answers is unavailable', async () => {
  const kms = await startFakeGcpKms();
  try {
    const opened = await openKekProvider(kms.keyUri(), { domain: 'cache', endpoint: kms.endpoint });
    const provider = checkedKekProvider(opened, 10_000);
    kms.inject('throttle', { count: 2, method: 'encrypt' });
    const key = await provider.generateDataKey(CONTEXT);
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);

    const short = checkedKekProvider(opened, 300);
    kms.inject('hang', { method: 'decrypt' });
    await assert.rejects(short.unwrapDataKey(key, CONTEXT), (error: unknown) => {
      assert.ok(error instanceof PhiCacheError);
      assert.equal(error.code, 'ERR_KEY_SERVICE_UNAVAILABLE');
      return true;
    });
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext, 'the next call is served');
  } finally {
    await kms.close();
  }
});
