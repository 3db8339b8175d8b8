import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError, type PhiCacheErrorCode } from '../../src/errors.js';
import type { EncryptionContext, KeyDomain } from '../../src/keys/key-provider.js';
import { crc32c } from '../../src/keys/providers/gcp-crc32c.js';
import { openKekProvider, parseGcpKmsUri } from '../../src/keys/providers/gcp-kms.js';
import { type FakeGcpKms, startFakeGcpKms } from '../harness/fake-gcp-kms.js';

const CONTEXT: EncryptionContext = {
  'phicache:tenant': 'tenant-alpha',
  'phicache:class': 'encrypted-phi',
  'phicache:epoch': '482000',
  'phicache:dek': '00112233445566778899aabbccddeeff',
};

function rejectsWith(code: PhiCacheErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof PhiCacheError, `expected a PhiCacheError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const value of Object.values(CONTEXT)) {
      assert.equal(error.message.includes(value), false, 'no context value in a message');
    }
    return true;
  };
}

describe('Cloud KMS adapter against the local wire-protocol server', () => {
  let kms: FakeGcpKms;
  let keys = 0;
  /** A fresh key per test, so versions and faults of one test never reach another. */
  const open = async (domain: KeyDomain = 'cache') => {
    keys += 1;
    const short = `key-${keys}`;
    const uri = kms.keyUri(short);
    return { short, uri, provider: await openKekProvider(uri, { domain, endpoint: kms.endpoint }) };
  };
  const requestsOf = (method: string) => kms.requests.filter((r) => r.method === method).length;

  before(async () => {
    kms = await startFakeGcpKms();
  });
  after(() => kms.close());

  test('sends the associated data with the CRC32C of the plaintext and of the associated data', async () => {
    const { provider, uri } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    const sent = kms.requests.at(-1);
    assert.equal(sent?.method, 'encrypt');
    const body = sent.body as Record<string, string>;
    const plaintext = Buffer.from(body.plaintext as string, 'base64');
    const aad = Buffer.from(body.additionalAuthenticatedData as string, 'base64');
    assert.deepEqual(plaintext, key.plaintext);
    assert.equal(Number(body.plaintextCrc32c), crc32c(plaintext));
    assert.equal(Number(body.additionalAuthenticatedDataCrc32c), crc32c(aad));
    assert.ok(aad.includes(Buffer.from('tenant-alpha')), 'the context is in the associated data');
    assert.equal(key.kid, `${uri}/cryptoKeyVersions/1`);

    await provider.unwrapDataKey(key, CONTEXT);
    const decrypt = kms.requests.at(-1)?.body as Record<string, string>;
    assert.equal(Number(decrypt.ciphertextCrc32c), crc32c(key.wrapped));
    assert.equal(Number(decrypt.additionalAuthenticatedDataCrc32c), crc32c(aad));
  });

  test('the KEK domain is bound too: a cache data key does not open through the backup domain', async () => {
    const { provider, uri } = await open('cache');
    const key = await provider.generateDataKey(CONTEXT);
    const backup = await openKekProvider(uri, { domain: 'backup', endpoint: kms.endpoint });
    await assert.rejects(backup.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_ENVELOPE_AUTH'));
  });

  test('throttling is retried with backoff and the call succeeds', async () => {
    const { provider } = await open();
    const before = requestsOf('encrypt');
    kms.inject('throttle', { count: 2, method: 'encrypt' });
    kms.inject('unavailable', { count: 1, method: 'encrypt' });
    const key = await provider.generateDataKey(CONTEXT);
    assert.equal(requestsOf('encrypt') - before, 4, 'three refusals, then the answer');
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('throttling that lasts is ERR_KEY_SERVICE_UNAVAILABLE after a bounded number of attempts', async () => {
    const { provider } = await open();
    const before = requestsOf('encrypt');
    kms.inject('throttle', { count: 100, method: 'encrypt' });
    try {
      await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
      assert.equal(requestsOf('encrypt') - before, 5);
    } finally {
      kms.clearFaults();
    }
  });

  test('throttling stops being retried when the signal aborts', async () => {
    const { provider } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    const before = requestsOf('decrypt');
    kms.inject('throttle', { count: 100, method: 'decrypt' });
    try {
      const controller = new AbortController();
      const pending = provider.unwrapDataKey(key, CONTEXT, { signal: controller.signal });
      while (requestsOf('decrypt') === before) await new Promise((r) => setTimeout(r, 5));
      controller.abort(new Error('deadline'));
      await assert.rejects(pending, rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
      assert.ok(requestsOf('decrypt') - before < 5, 'the retries stopped at the deadline');

      const aborted = AbortSignal.abort(new Error('deadline'));
      const untouched = requestsOf('decrypt');
      await assert.rejects(
        provider.unwrapDataKey(key, CONTEXT, { signal: aborted }),
        rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'),
      );
      assert.equal(requestsOf('decrypt'), untouched, 'an aborted signal sends nothing');
    } finally {
      kms.clearFaults();
    }
  });

  test('permission denied is ERR_KEY_ACCESS_DENIED and is not retried', async () => {
    const { provider } = await open();
    const before = requestsOf('encrypt');
    kms.inject('deny', { method: 'encrypt' });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_ACCESS_DENIED'));
    assert.equal(requestsOf('encrypt') - before, 1);
  });

  test('a service that never answers: the aborted signal ends the call with ERR_KEY_SERVICE_UNAVAILABLE', async () => {
    const { provider } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    kms.inject('hang', { method: 'decrypt' });
    const controller = new AbortController();
    const pending = provider.unwrapDataKey(key, CONTEXT, { signal: controller.signal });
    while (kms.requests.at(-1)?.method !== 'decrypt') await new Promise((r) => setTimeout(r, 5));
    controller.abort(new Error('deadline'));
    await assert.rejects(pending, rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('a malformed answer is ERR_KEY_SERVICE_UNAVAILABLE', async () => {
    const { provider } = await open();
    kms.inject('malformed', { method: 'encrypt' });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('a ciphertext damaged on the way fails its CRC32C check and the encrypt is retried', async () => {
    const { provider } = await open();
    const before = requestsOf('encrypt');
    kms.inject('corrupt', { method: 'encrypt' });
    const key = await provider.generateDataKey(CONTEXT);
    assert.equal(requestsOf('encrypt') - before, 2);
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('a plaintext damaged on the way fails its CRC32C check: never handed out as the data key', async () => {
    const { provider } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    kms.inject('corrupt', { method: 'decrypt' });
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
    kms.inject('corrupt', { count: 5, method: 'decrypt' });
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('an encrypt whose plaintext checksum the service did not verify is not accepted', async () => {
    const { provider } = await open();
    kms.inject('unverified', { count: 5, method: 'encrypt' });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('one invalid ciphertext is ERR_ENVELOPE_AUTH and the next call works', async () => {
    const { provider } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    await assert.rejects(
      provider.unwrapDataKey({ kid: key.kid, wrapped: Buffer.alloc(40, 1) }, CONTEXT),
      rejectsWith('ERR_ENVELOPE_AUTH'),
    );
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('rotation: new keys follow the new primary, old ones still open and rewrap onto it', async () => {
    const { provider, short, uri } = await open();
    const old = await provider.generateDataKey(CONTEXT);
    kms.addVersion(short, true);
    const fresh = await provider.generateDataKey(CONTEXT);
    assert.equal(fresh.kid, `${uri}/cryptoKeyVersions/2`);
    assert.equal(provider.currentKid(), fresh.kid);
    assert.deepEqual(await provider.unwrapDataKey(old, CONTEXT), old.plaintext);
    const rewrapped = await provider.rewrapDataKey(old, CONTEXT);
    assert.equal(rewrapped.kid, fresh.kid);
    assert.deepEqual(await provider.unwrapDataKey(rewrapped, CONTEXT), old.plaintext);
  });

  test('describes versions with their states', async () => {
    const { provider, short, uri } = await open();
    kms.addVersion(short, true);
    const disabled = kms.addVersion(short, false);
    const destroyed = kms.addVersion(short, false);
    kms.setState(short, disabled, 'DISABLED');
    kms.setState(short, destroyed, 'DESTROYED');
    const description = await provider.describeKek();
    assert.equal(description.uri, uri);
    assert.equal(description.current, `${uri}/cryptoKeyVersions/2`);
    assert.deepEqual(
      description.versions.map((v) => [v.kid.slice(uri.length), v.state]),
      [
        ['/cryptoKeyVersions/1', 'decrypt-only'],
        ['/cryptoKeyVersions/2', 'active'],
        ['/cryptoKeyVersions/3', 'disabled'],
        ['/cryptoKeyVersions/4', 'destroyed'],
      ],
    );
  });

  test('createVersion makes a version that is not primary; a wrap naming it encrypts under it and moves nothing', async () => {
    const { provider, uri } = await open();
    const created = requestsOf('createCryptoKeyVersion');
    const made = await provider.createVersion!();
    assert.equal(made, `${uri}/cryptoKeyVersions/2`);
    assert.equal(requestsOf('createCryptoKeyVersion'), created + 1);
    const unnamed = await provider.generateDataKey(CONTEXT);
    assert.equal(unnamed.kid, `${uri}/cryptoKeyVersions/1`, 'the primary, not the new version, encrypts');

    const named = await provider.generateDataKey(CONTEXT, { kid: made });
    assert.equal(named.kid, made);
    assert.equal(
      provider.currentKid(),
      `${uri}/cryptoKeyVersions/1`,
      'a named wrap says nothing of the primary',
    );
    const description = await provider.describeKek();
    assert.equal(description.current, `${uri}/cryptoKeyVersions/1`);
    assert.deepEqual(
      description.versions.map((v) => [v.kid.slice(uri.length), v.state]),
      [
        ['/cryptoKeyVersions/1', 'active'],
        ['/cryptoKeyVersions/2', 'pending'],
      ],
    );
  });

  test('a wrap naming a disabled version is ERR_KEY_DISABLED; one naming a version never made is ERR_KEY_NOT_FOUND', async () => {
    const { provider, short, uri } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    const made = await provider.createVersion!();
    kms.setState(short, 2, 'DISABLED');
    await assert.rejects(provider.generateDataKey(CONTEXT, { kid: made }), rejectsWith('ERR_KEY_DISABLED'));
    await assert.rejects(
      provider.rewrapDataKey(key, CONTEXT, { kid: made }),
      rejectsWith('ERR_KEY_DISABLED'),
    );
    await assert.rejects(
      provider.generateDataKey(CONTEXT, { kid: `${uri}/cryptoKeyVersions/7` }),
      rejectsWith('ERR_KEY_NOT_FOUND'),
    );
    const before = kms.requests.length;
    await assert.rejects(
      provider.generateDataKey(CONTEXT, { kid: `${kms.keyUri('other')}/cryptoKeyVersions/1` }),
      rejectsWith('ERR_KEY_NOT_FOUND'),
    );
    assert.equal(kms.requests.length, before, 'a version of another key is refused without a call');
  });

  test('a data key under a disabled or destroyed version is ERR_KEY_DISABLED', async () => {
    const { provider, short } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    kms.addVersion(short, true);
    kms.setState(short, 1, 'DISABLED');
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_KEY_DISABLED'));
    kms.setState(short, 1, 'DESTROYED');
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_KEY_DISABLED'));
  });

  test('an unknown key is ERR_KEY_NOT_FOUND at open; a kid of another key is refused without a call', async () => {
    const missing = `${kms.keyUri('key-known').replace(/key-known$/, 'key-missing')}`;
    await assert.rejects(
      openKekProvider(missing, { domain: 'cache', endpoint: kms.endpoint }),
      rejectsWith('ERR_KEY_NOT_FOUND'),
    );
    const { provider } = await open();
    const key = await provider.generateDataKey(CONTEXT);
    const before = kms.requests.length;
    const otherKid = key.kid.replace(/key-\d+/, 'key-other');
    await assert.rejects(
      provider.unwrapDataKey({ kid: otherKid, wrapped: key.wrapped }, CONTEXT),
      rejectsWith('ERR_KEY_NOT_FOUND'),
    );
    assert.equal(kms.requests.length, before);
  });

  test('least privilege: encrypt and decrypt on the one key serve everything; only describing reads metadata', async () => {
    kms.grant(['encrypt', 'decrypt']);
    try {
      const { provider } = await open();
      const key = await provider.generateDataKey(CONTEXT);
      assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
      const rewrapped = await provider.rewrapDataKey(key, CONTEXT);
      assert.deepEqual(await provider.unwrapDataKey(rewrapped, CONTEXT), key.plaintext);
      await assert.rejects(provider.describeKek(), rejectsWith('ERR_KEY_ACCESS_DENIED'));
    } finally {
      kms.grant(undefined);
    }
  });

  test('key URIs: a key, in Tink syntax; versions and other shapes are refused', () => {
    const name = 'projects/p-1/locations/europe-west1/keyRings/ring/cryptoKeys/cache';
    assert.equal(parseGcpKmsUri(`gcp-kms://${name}`), name);
    for (const bad of [
      name,
      `gcp-kms://${name}/cryptoKeyVersions/1`,
      'gcp-kms://projects/p/locations/l/keyRings/r',
      `gcp-kms://${name}?x=1`,
      'aws-kms://arn:aws:kms:eu-west-1:1:key/k',
    ]) {
      assert.throws(() => parseGcpKmsUri(bad), TypeError, bad);
    }
  });

  test('plain http is for loopback only: a bearer token never travels unencrypted', async () => {
    await assert.rejects(
      openKekProvider(kms.keyUri('key-http'), { domain: 'cache', endpoint: 'http://kms.example.org:8080' }),
      RangeError,
    );
  });
});
