import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KeyUriError, kekIdentity, parseKeyUri } from '../../src/keys/key-uri.js';

const AWS_KEY = 'aws-kms://arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const GCP_KEY = 'gcp-kms://projects/st-marys-prod/locations/europe-west1/keyRings/phicache/cryptoKeys/cache';
const PKCS11_KEY =
  'pkcs11:token=phicache;object=cache-kek?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=env:HSM_PIN';

/** A refusal that does not quote the URI: it may be the very secret that was refused. */
const refusedWithout = (secret: string) => (error: unknown) =>
  error instanceof KeyUriError && error instanceof RangeError && !error.message.includes(secret);

describe('parseKeyUri', () => {
  test('aws-kms: a key ARN and an alias ARN, with region and account', () => {
    const key = parseKeyUri(AWS_KEY);
    assert.equal(key.scheme, 'aws-kms');
    assert.deepEqual(key.scheme === 'aws-kms' && [key.arn, key.region, key.account, key.resource], [
      AWS_KEY.slice('aws-kms://'.length),
      'eu-west-1',
      '111122223333',
      'key/1234abcd-12ab-34cd-56ef-1234567890ab',
    ]);
    const alias = parseKeyUri('aws-kms://arn:aws-us-gov:kms:us-gov-west-1:111122223333:alias/phicache/cache');
    assert.equal(alias.scheme === 'aws-kms' && alias.resource, 'alias/phicache/cache');
    const mrk = parseKeyUri(`aws-kms://arn:aws:kms:us-east-1:111122223333:key/mrk-${'a'.repeat(32)}`);
    assert.equal(mrk.scheme, 'aws-kms');
  });

  test('gcp-kms: a CryptoKey resource name', () => {
    const key = parseKeyUri(GCP_KEY);
    assert.deepEqual(key.scheme === 'gcp-kms' && [key.project, key.location, key.keyRing, key.cryptoKey], [
      'st-marys-prod',
      'europe-west1',
      'phicache',
      'cache',
    ]);
    assert.equal(key.scheme === 'gcp-kms' && key.name, GCP_KEY.slice('gcp-kms://'.length));
  });

  test('hcvault: host, port, a mount of one or more segments, the key name and non-secret parameters', () => {
    const key = parseKeyUri('hcvault://vault.internal:8200/transit/keys/phicache-cache');
    assert.deepEqual(key.scheme === 'hcvault' && [key.host, key.port, key.mount, key.key], [
      'vault.internal',
      8200,
      'transit',
      'phicache-cache',
    ]);
    const nested = parseKeyUri(
      'hcvault://127.0.0.1:8200/team-a/transit/keys/k?auth=approle&role-id-source=env:ROLE',
    );
    assert.deepEqual(nested.scheme === 'hcvault' && [nested.mount, nested.params], [
      'team-a/transit',
      { auth: 'approle', 'role-id-source': 'env:ROLE' },
    ]);
  });

  test('pkcs11: RFC 7512 path and query attributes, percent-decoded', () => {
    const key = parseKeyUri(PKCS11_KEY);
    assert.deepEqual(key.scheme === 'pkcs11' && [key.token, key.object, key.modulePath, key.pinSource], [
      'phicache',
      'cache-kek',
      '/usr/lib/softhsm/libsofthsm2.so',
      'env:HSM_PIN',
    ]);
    const spaced = parseKeyUri(
      'pkcs11:token=My%20Token;object=kek;slot-id=3?module-path=/opt/hsm/lib.so&pin-source=file:/run/secrets/pin',
    );
    assert.deepEqual(spaced.scheme === 'pkcs11' && [spaced.token, spaced.path['slot-id'], spaced.pinSource], [
      'My Token',
      '3',
      'file:/run/secrets/pin',
    ]);
  });

  test('local: with or without a domain', () => {
    assert.deepEqual(parseKeyUri('local:'), { scheme: 'local', uri: 'local:' });
    assert.deepEqual(parseKeyUri('local:audit'), { scheme: 'local', uri: 'local:audit', domain: 'audit' });
  });

  test('refuses a URI that carries a secret, without echoing it', () => {
    const secret = 'S3cr3t-1234';
    for (const uri of [
      `pkcs11:token=t;object=o?module-path=/lib.so&pin-value=${secret}`,
      `pkcs11:token=t;object=o?module-path=/lib.so&PIN-VALUE=${secret}`,
      `hcvault://vault:8200/transit/keys/k?token=${secret}`,
      `hcvault://admin:${secret}@vault:8200/transit/keys/k`,
      `hcvault://${secret}@vault:8200/transit/keys/k`,
      `hcvault://vault:8200/transit/keys/k?secret-id=${secret}`,
    ]) {
      assert.throws(() => parseKeyUri(uri), refusedWithout(secret), uri);
    }
  });

  test('refuses malformed URIs of every scheme, naming the expected form and not the input', () => {
    const bad = [
      'aws-kms://arn:aws:kms:eu-west-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab', // short account
      'aws-kms://arn:aws:s3:::bucket-zz9',
      'aws-kms:arn:aws:kms:eu-west-1:111122223333:alias/x',
      'gcp-kms://projects/p-zz9/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1',
      'gcp-kms://projects/p-zz9/keyRings/r/cryptoKeys/k',
      'hcvault://vault/transit/keys/k', // no port
      'hcvault://vault:8200/keys/k', // no mount
      'hcvault://vault:8200/transit/keys/../k',
      'hcvault://vault:8200/transit/keys/k#zz9',
      'pkcs11:token=t;object=o?module-path=/lib.so', // no pin-source
      'pkcs11:token=t;object=o?module-path=lib.so&pin-source=env:P', // relative module path
      'pkcs11:token=t;object=o?module-path=/lib.so&pin-source=zz9', // not env: or file:
      'pkcs11:object=o?module-path=/lib.so&pin-source=env:P', // no token
      'pkcs11:token=t;object=o;color=zz9?module-path=/lib.so&pin-source=env:P',
      'pkcs11:token=%zz;object=o?module-path=/lib.so&pin-source=env:P',
      'local:prod-zz9',
      'kms://zz9',
      'aws-kms://arn:aws:kms:eu-west-1:111122223333:alias/x zz9',
      '',
    ];
    for (const uri of bad) {
      assert.throws(
        () => parseKeyUri(uri),
        (error: unknown) => {
          return error instanceof KeyUriError && !error.message.includes('zz9');
        },
        uri,
      );
    }
    // @ts-expect-error a URI is a string
    assert.throws(() => parseKeyUri(42), TypeError);
  });
});

describe('kekIdentity', () => {
  test('the same key is the same KEK whatever the spelling of the host; local: is per domain', () => {
    const a = parseKeyUri('hcvault://Vault.Internal:8200/transit/keys/k');
    const b = parseKeyUri('hcvault://vault.internal:8200/transit/keys/k');
    assert.equal(kekIdentity(a, 'cache'), kekIdentity(b, 'audit'));
    assert.notEqual(kekIdentity(parseKeyUri('local:'), 'cache'), kekIdentity(parseKeyUri('local:'), 'audit'));
    assert.equal(
      kekIdentity(parseKeyUri('local:cache'), 'audit'),
      kekIdentity(parseKeyUri('local:'), 'cache'),
    );
  });
});
