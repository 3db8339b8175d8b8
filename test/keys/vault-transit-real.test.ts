/**
 * Opt-in: the Vault adapter against a real Vault. Runs only when PHICACHE_VAULT_TEST_URI names a transit key
 * created with `vault write -f transit/keys/<name> type=aes256-gcm96 derived=true`, and its credentials are in the
 * environment (VAULT_TOKEN by default, or the sources the URI's query names). VAULT_ADDR, when set, is the
 * endpoint (for example http://127.0.0.1:8200 for `vault server -dev`).
 *
 *   PHICACHE_VAULT_TEST_URI=hcvault://127.0.0.1:8200/transit/keys/phicache-test VAULT_ADDR=http://127.0.0.1:8200 \
 *   VAULT_TOKEN=... node test/harness/run.mjs build/test/keys/vault-transit-real.test.js
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { VaultTransit } from '../../src/keys/providers/vault-transit.js';

const uri = process.env.PHICACHE_VAULT_TEST_URI;
const endpoint = process.env.VAULT_ADDR;

test('a real Vault: data key, unwrap, wrong context refused, rewrap to the current version, description', {
  skip: uri === undefined && 'set PHICACHE_VAULT_TEST_URI (and VAULT_TOKEN) to run against a real Vault',
}, async () => {
  const provider = await VaultTransit.open(uri!, {
    domain: 'cache',
    ...(endpoint === undefined ? {} : { endpoint }),
  });
  const context = { 'phicache:tenant': 't-opt-in', 'phicache:class': 'phi', 'phicache:epoch': '1' };
  const key = await provider.generateDataKey(context);
  assert.equal(key.plaintext.length, 32);
  assert.deepEqual(await provider.unwrapDataKey(key, context), key.plaintext);
  await assert.rejects(
    provider.unwrapDataKey(key, { ...context, 'phicache:tenant': 't-other' }),
    (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_ENVELOPE_AUTH',
  );
  const rewrapped = await provider.rewrapDataKey(key, context);
  assert.equal(rewrapped.kid, provider.currentKid());
  assert.deepEqual(await provider.unwrapDataKey(rewrapped, context), key.plaintext);
  const description = await provider.describeKek();
  assert.equal(description.current, provider.currentKid());
});
