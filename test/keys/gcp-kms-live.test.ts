import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { openKekProvider } from '../../src/keys/providers/gcp-kms.js';

/**
 * Opt-in: runs against real Cloud KMS when PHICACHE_TEST_GCP_KMS_KEY names a symmetric key
 * (`gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K`) and Application Default Credentials can use it
 * (`gcloud auth application-default login`, or GOOGLE_APPLICATION_CREDENTIALS). The caller needs
 * roles/cloudkms.cryptoKeyEncrypterDecrypter on the key, plus roles/cloudkms.viewer for the description.
 *
 *     PHICACHE_TEST_GCP_KMS_KEY=gcp-kms://… node --test build/test/keys/gcp-kms-live.test.js
 */
const uri = process.env.PHICACHE_TEST_GCP_KMS_KEY;
const CONTEXT = { 'phicache:tenant': 'live-test', 'phicache:class': 'encrypted-phi', 'phicache:epoch': '1' };

test('real Cloud KMS: wrap, unwrap, refuse another context, rewrap, describe', {
  skip:
    !uri && 'set PHICACHE_TEST_GCP_KMS_KEY (and Application Default Credentials) to run against Cloud KMS',
}, async () => {
  const provider = await openKekProvider(uri as string, { domain: 'cache' });
  const key = await provider.generateDataKey(CONTEXT);
  assert.equal(key.kid, provider.currentKid());
  assert.match(key.kid, /\/cryptoKeyVersions\/\d+$/);
  assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  await assert.rejects(
    provider.unwrapDataKey(key, { ...CONTEXT, 'phicache:tenant': 'other' }),
    (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_AUTH',
  );
  const rewrapped = await provider.rewrapDataKey(key, CONTEXT);
  assert.deepEqual(await provider.unwrapDataKey(rewrapped, CONTEXT), key.plaintext);
  const description = await provider.describeKek();
  assert.equal(description.versions.find((v) => v.kid === description.current)?.state, 'active');
});
