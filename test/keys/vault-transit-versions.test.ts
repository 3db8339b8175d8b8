import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import type { EncryptionContext } from '../../src/keys/key-provider.js';
import { VaultTransit } from '../../src/keys/providers/vault-transit.js';
import { type FakeVault, startFakeVault } from '../harness/fake-vault.js';

const URI = 'hcvault://vault.internal:8200/transit/keys/phicache-cache';
const CONTEXT: EncryptionContext = {
  'phicache:tenant': 't-1',
  'phicache:class': 'phi',
  'phicache:epoch': '7',
};

const code = (expected: string) => (error: unknown) => {
  assert.ok(error instanceof PhiCacheError, `expected a PhiCacheError, got ${String(error)}`);
  assert.equal(error.code, expected);
  return true;
};

/** The version Vault sealed under, from its own ciphertext (`vault:v<N>:…`). */
const sealedUnder = (wrapped: Buffer) => /^vault:v([0-9]+):/.exec(wrapped.toString('utf8'))?.[1];

describe('Vault Transit adapter: versions made by createVersion, and wraps that name a version', () => {
  let vault: FakeVault;
  before(async () => {
    vault = await startFakeVault();
  });
  after(() => vault.close());

  let keys = 0;
  const fresh = async () => {
    const name = `v${++keys}`;
    vault.createKey(name);
    const uri = URI.replace('phicache-cache', name);
    const provider = await VaultTransit.open(uri, {
      domain: 'cache',
      endpoint: vault.endpoint,
      env: { VAULT_TOKEN: vault.rootToken },
    });
    return { name, uri, provider };
  };

  test('createVersion rotates the key in Vault, and this instance keeps sealing under the version before it', async () => {
    const { uri, provider } = await fresh();
    const seen = vault.requests.length;
    const made = await provider.createVersion();
    assert.equal(made, `${uri}:v2`);
    assert.deepEqual(vault.requests.slice(seen), ['rotate']);
    assert.equal(provider.currentKid(), `${uri}:v1`);

    // Vault's latest is v2 now; the default wraps ask for v1 by name, or Vault would seal under v2.
    const key = await provider.generateDataKey(CONTEXT);
    assert.equal(key.kid, `${uri}:v1`);
    assert.equal(sealedUnder(key.wrapped), '1');
    const rewrapped = await provider.rewrapDataKey(key, CONTEXT);
    assert.equal(sealedUnder(rewrapped.wrapped), '1');

    const named = await provider.generateDataKey(CONTEXT, { kid: made });
    assert.equal(sealedUnder(named.wrapped), '2');
    const moved = await provider.rewrapDataKey(key, CONTEXT, { kid: made });
    assert.equal(sealedUnder(moved.wrapped), '2');
    assert.deepEqual(await provider.unwrapDataKey(moved, CONTEXT), key.plaintext);
    assert.equal(provider.currentKid(), `${uri}:v1`, 'naming a version does not make it current');

    assert.deepEqual(
      (await provider.describeKek()).versions.map((v) => [v.kid, v.state]),
      [
        [`${uri}:v1`, 'active'],
        [`${uri}:v2`, 'pending'],
      ],
    );
  });

  test('a rotation done in Vault itself is still followed; the version this instance made still waits', async () => {
    const { name, uri, provider } = await fresh();
    await provider.createVersion();
    vault.rotate(name);
    const description = await provider.describeKek();
    assert.equal(description.current, `${uri}:v3`);
    assert.deepEqual(
      description.versions.map((v) => v.state),
      ['decrypt-only', 'decrypt-only', 'active'],
    );
    const key = await provider.generateDataKey(CONTEXT);
    assert.equal(sealedUnder(key.wrapped), '3');
  });

  test('a named version Vault does not have is ERR_KEY_NOT_FOUND, and a kid of another key is refused unsent', async () => {
    const { uri, provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    await assert.rejects(provider.generateDataKey(CONTEXT, { kid: `${uri}:v9` }), code('ERR_KEY_NOT_FOUND'));
    await assert.rejects(
      provider.rewrapDataKey(key, CONTEXT, { kid: `${uri}:v9` }),
      code('ERR_KEY_NOT_FOUND'),
    );
    const seen = vault.requests.length;
    for (const kid of [`${uri}:v0`, `${uri}:vx`, 'hcvault://vault.internal:8200/transit/keys/other:v1']) {
      await assert.rejects(provider.generateDataKey(CONTEXT, { kid }), code('ERR_KEY_NOT_FOUND'));
    }
    assert.equal(vault.requests.length, seen, 'nothing was sent for a kid that names no version of this key');
  });
});
