import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import type { KekProvider, KekProviderOpenOptions } from '../../src/keys/key-provider.js';
import { KeyUriError } from '../../src/keys/key-uri.js';
import { openKekProvider } from '../../src/keys/open-provider.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';

const home = () => mkdtemp(join(tmpdir(), 'phicache-open-'));
const hasCode = (code: string) => (error: unknown) => error instanceof PhiCacheError && error.code === code;
const AWS_KEY = 'aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/phicache-cache';

describe('openKekProvider', () => {
  test('local: opens the development keyring of the domain; local:<domain> names the keyring', async () => {
    const env = { PHICACHE_HOME: await home() };
    const audit = await openKekProvider('local:', { domain: 'audit', env });
    assert.ok(audit instanceof LocalKeyring);
    assert.equal(audit.currentKid(), 'local:audit:v1');
    const named = await openKekProvider('local:backup', { domain: 'cache', env });
    assert.equal(named.currentKid(), 'local:backup:v1');
  });

  test('local: refuses NODE_ENV=production, as the keyring does', async () => {
    await assert.rejects(
      openKekProvider('local:', {
        domain: 'cache',
        env: { NODE_ENV: 'production', PHICACHE_HOME: await home() },
      }),
      hasCode('ERR_KEYRING_PRODUCTION'),
    );
  });

  test('each scheme loads its adapter module and hands it the URI and the options', async () => {
    const cases = [
      [AWS_KEY, './providers/aws-kms.js', 'aws-kms'],
      [
        'gcp-kms://projects/p-12345/locations/global/keyRings/r/cryptoKeys/k',
        './providers/gcp-kms.js',
        'gcp-kms',
      ],
      ['hcvault://127.0.0.1:8200/transit/keys/k', './providers/vault-transit.js', 'hcvault'],
      ['pkcs11:token=t;object=o?module-path=/lib.so&pin-source=env:PIN', './providers/pkcs11.js', 'pkcs11'],
    ] as const;
    for (const [uri, specifier, name] of cases) {
      const seen: unknown[] = [];
      const options: KekProviderOpenOptions = { domain: 'audit', endpoint: 'http://127.0.0.1:1' };
      const provider = await openKekProvider(uri, options, async (loaded) => ({
        openKekProvider: async (u: string, o: KekProviderOpenOptions) => {
          seen.push(loaded, u, o);
          return { name } as KekProvider;
        },
      }));
      assert.equal(provider.name, name);
      assert.deepEqual(seen, [specifier, uri, options]);
    }
  });

  test('a scheme whose adapter module is absent is ERR_PEER_MISSING; the SDK missing inside it passes through', async () => {
    const absent = Object.assign(new Error("Cannot find module '/x/build/src/keys/providers/aws-kms.js'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    await assert.rejects(
      openKekProvider(AWS_KEY, { domain: 'cache' }, async () => {
        throw absent;
      }),
      (error: unknown) => hasCode('ERR_PEER_MISSING')(error) && (error as Error).message.includes('aws-kms'),
    );
    const sdkMissing = new PhiCacheError(
      'ERR_PEER_MISSING',
      'the optional peer dependency @aws-sdk/client-kms is not installed',
    );
    await assert.rejects(
      openKekProvider(AWS_KEY, { domain: 'cache' }, async () => ({
        openKekProvider: async () => {
          throw sdkMissing;
        },
      })),
      (error: unknown) => error === sdkMissing,
    );
  });

  test('a URI carrying a secret is refused before any adapter module is loaded', async () => {
    let loaded = false;
    await assert.rejects(
      openKekProvider(
        'pkcs11:token=t;object=o?module-path=/lib.so&pin-value=1234',
        { domain: 'cache' },
        async () => {
          loaded = true;
          return {};
        },
      ),
      KeyUriError,
    );
    assert.equal(loaded, false);
  });

  test('an adapter that opens a provider of another name is refused', async () => {
    await assert.rejects(
      openKekProvider(AWS_KEY, { domain: 'cache' }, async () => ({
        openKekProvider: async () => ({ name: 'local' }) as KekProvider,
      })),
      hasCode('ERR_INTERNAL'),
    );
  });
});
