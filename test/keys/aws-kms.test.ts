import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { PhiCacheError, type PhiCacheErrorCode } from '../../src/errors.js';
import type { EncryptionContext, KekProvider } from '../../src/keys/key-provider.js';
import { openKekProvider } from '../../src/keys/providers/aws-kms.js';
import { describeKekProvider } from '../../src/testing/key-provider-suite.js';
import { type FakeKms, startFakeKms } from '../harness/fake-kms.js';

const CONTEXT: EncryptionContext = {
  'phicache:tenant': 't-1',
  'phicache:class': 'encrypted-phi',
  'phicache:epoch': '482000',
  'phicache:dek': '00112233445566778899aabbccddeeff',
};

/** Opens the adapter on a key of the fake, through the official SDK, signing with the fake's credentials. */
async function open(
  fake: FakeKms,
  keyArn: string,
  domain: 'cache' | 'backup' = 'cache',
): Promise<KekProvider> {
  return openKekProvider(`aws-kms://${keyArn}`, {
    domain,
    endpoint: fake.endpoint,
    env: {
      AWS_ACCESS_KEY_ID: fake.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: fake.credentials.secretAccessKey,
    },
  });
}

function rejectsWith(code: PhiCacheErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof PhiCacheError, `expected a PhiCacheError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

describeKekProvider(
  'aws-kms (official SDK against the local KMS)',
  async () => {
    const fake = await startFakeKms();
    return { provider: await open(fake, fake.createKey()), close: () => fake.close() };
  },
  { createsVersions: false },
);

describeKekProvider(
  'aws-kms through an alias ARN',
  async () => {
    const fake = await startFakeKms();
    const alias = fake.createAlias('phicache-cache', fake.createKey());
    return { provider: await open(fake, alias), close: () => fake.close() };
  },
  { createsVersions: false },
);

describe('aws-kms adapter', () => {
  let fake: FakeKms;
  // A server per test, so that faults one test injects never reach the next.
  beforeEach(async () => {
    fake = await startFakeKms();
  });
  afterEach(() => fake.close());

  test('a request signed with the wrong secret is refused by the server: ERR_KEY_ACCESS_DENIED', async () => {
    const provider = await openKekProvider(`aws-kms://${fake.createKey()}`, {
      domain: 'cache',
      endpoint: fake.endpoint,
      env: { AWS_ACCESS_KEY_ID: fake.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: 'not-the-secret' },
    });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_ACCESS_DENIED'));
  });

  test('the domain is bound into the context: a cache data key does not open as a backup key', async () => {
    const keyArn = fake.createKey();
    const cache = await open(fake, keyArn, 'cache');
    const backup = await open(fake, keyArn, 'backup');
    const key = await cache.generateDataKey(CONTEXT);
    await assert.rejects(backup.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_ENVELOPE_AUTH'));
    assert.deepEqual(await cache.unwrapDataKey(key, CONTEXT), key.plaintext);
    await assert.rejects(cache.generateDataKey({ ...CONTEXT, 'phicache:domain': 'backup' }), TypeError);
  });

  test('a blob wrapped under another key is refused, not decrypted: ERR_ENVELOPE_AUTH', async () => {
    const first = await open(fake, fake.createKey());
    const second = await open(fake, fake.createKey());
    const key = await first.generateDataKey(CONTEXT);
    await assert.rejects(
      second.unwrapDataKey({ kid: second.currentKid(), wrapped: key.wrapped }, CONTEXT),
      rejectsWith('ERR_ENVELOPE_AUTH'),
    );
  });

  test('rewrap is server-side ReEncrypt onto the newest key material after a rotation', async () => {
    const keyArn = fake.createKey();
    const provider = await open(fake, keyArn);
    const key = await provider.generateDataKey(CONTEXT);
    fake.rotate(keyArn);
    const decrypts = fake.calls.get('Decrypt') ?? 0;
    const rewrapped = await provider.rewrapDataKey(key, CONTEXT);
    assert.equal(fake.materialOf(key.wrapped), 0);
    assert.equal(fake.materialOf(rewrapped.wrapped), 1);
    assert.equal(fake.calls.get('Decrypt') ?? 0, decrypts, 'the plaintext key never came to the process');
    assert.deepEqual(await provider.unwrapDataKey(rewrapped, CONTEXT), key.plaintext);
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext, 'old blobs still open');
  });

  test('an alias resolves to its key, and keys keep unwrapping after the alias moves', async () => {
    const firstKey = fake.createKey();
    const alias = fake.createAlias('moving', firstKey);
    const provider = await open(fake, alias);
    assert.equal(provider.currentKid(), firstKey);
    const key = await provider.generateDataKey(CONTEXT);
    assert.equal(key.kid, firstKey);
    const secondKey = fake.createKey();
    fake.createAlias('moving', secondKey);
    const next = await provider.generateDataKey(CONTEXT);
    assert.equal(next.kid, secondKey);
    assert.equal(provider.currentKid(), secondKey);
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('describes the key: state and creation date from DescribeKey, disabled when KMS says so', async () => {
    const keyArn = fake.createKey();
    const provider = await open(fake, keyArn);
    const described = await provider.describeKek();
    assert.deepEqual(described, {
      uri: `aws-kms://${keyArn}`,
      current: keyArn,
      versions: [{ kid: keyArn, state: 'active', createdAt: '2023-11-14T22:13:20.000Z' }],
    });
    fake.setKeyState(keyArn, 'PendingDeletion');
    assert.equal((await provider.describeKek()).versions[0]?.state, 'disabled');
  });

  test('a disabled key is ERR_KEY_DISABLED, and so is one pending deletion (KMSInvalidStateException)', async () => {
    const keyArn = fake.createKey();
    const provider = await open(fake, keyArn);
    const key = await provider.generateDataKey(CONTEXT);
    fake.setKeyState(keyArn, 'Disabled');
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_DISABLED'));
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_KEY_DISABLED'));
    fake.setKeyState(keyArn, 'PendingDeletion');
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_KEY_DISABLED'));
    fake.setKeyState(keyArn, 'Enabled');
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('an unknown key is ERR_KEY_NOT_FOUND', async () => {
    const provider = await open(
      fake,
      `arn:aws:kms:us-east-1:111122223333:key/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`,
    );
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_NOT_FOUND'));
  });

  test('a kid that is no KMS key ARN is ERR_KEY_NOT_FOUND without a call to KMS', async () => {
    const provider = await open(fake, fake.createKey());
    const key = await provider.generateDataKey(CONTEXT);
    const decrypts = fake.calls.get('Decrypt') ?? 0;
    for (const kid of ['local:cache:v1', 'arn:aws:kms:us-east-1:111122223333:alias/phicache-cache']) {
      await assert.rejects(
        provider.unwrapDataKey({ kid, wrapped: key.wrapped }, CONTEXT),
        rejectsWith('ERR_KEY_NOT_FOUND'),
      );
      await assert.rejects(
        provider.rewrapDataKey({ kid, wrapped: key.wrapped }, CONTEXT),
        rejectsWith('ERR_KEY_NOT_FOUND'),
      );
    }
    assert.equal(fake.calls.get('Decrypt') ?? 0, decrypts);
  });

  test('a wrap may name only the current key: any other kid is ERR_KEY_NOT_FOUND with a hint, without a call', async () => {
    const keyArn = fake.createKey();
    const provider = await open(fake, keyArn);
    assert.equal(
      provider.createVersion,
      undefined,
      'AWS KMS cannot make a version that waits to be promoted',
    );
    const named = await provider.generateDataKey(CONTEXT, { kid: keyArn });
    assert.equal(named.kid, keyArn);
    assert.equal((await provider.rewrapDataKey(named, CONTEXT, { kid: keyArn })).kid, keyArn);

    const other = fake.createKey();
    const calls = [...fake.calls.values()].reduce((sum, count) => sum + count, 0);
    for (const kid of [other, `${keyArn}:2`, 'local:cache:v1']) {
      await assert.rejects(provider.generateDataKey(CONTEXT, { kid }), (error: unknown) => {
        rejectsWith('ERR_KEY_NOT_FOUND')(error);
        assert.match((error as PhiCacheError).hint, /rotates its material inside the key/);
        return true;
      });
      await assert.rejects(provider.rewrapDataKey(named, CONTEXT, { kid }), rejectsWith('ERR_KEY_NOT_FOUND'));
    }
    assert.equal(
      [...fake.calls.values()].reduce((sum, count) => sum + count, 0),
      calls,
    );
  });

  test('through an alias, a wrap naming the current key goes to that key, not to wherever the alias points now', async () => {
    const first = fake.createKey();
    const alias = fake.createAlias('phicache-named', first);
    const provider = await open(fake, alias);
    assert.equal(provider.currentKid(), first);
    const second = fake.createKey();
    fake.createAlias('phicache-named', second);
    // Not yet noticed by the adapter: its current kid is still the first key, and naming it goes there.
    const named = await provider.generateDataKey(CONTEXT, { kid: first });
    assert.equal(named.kid, first);
    assert.deepEqual(await provider.unwrapDataKey(named, CONTEXT), named.plaintext);
    // A wrap that names nothing follows the alias, and the first key is then no longer the current one.
    assert.equal((await provider.generateDataKey(CONTEXT)).kid, second, 'the alias moved');
    await assert.rejects(provider.generateDataKey(CONTEXT, { kid: first }), rejectsWith('ERR_KEY_NOT_FOUND'));
  });

  test('faults are mapped: access denied, and outages the retries could not cure', async () => {
    const provider = await open(fake, fake.createKey());
    fake.inject('access-denied', { operation: 'GenerateDataKey' });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_ACCESS_DENIED'));
    fake.inject('internal', { operation: 'GenerateDataKey', times: 4 });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
    fake.inject('dependency-timeout', { operation: 'GenerateDataKey', times: 4 });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
    fake.inject('malformed-json', { operation: 'GenerateDataKey' });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
    fake.inject('short-plaintext', { operation: 'GenerateDataKey' });
    await assert.rejects(provider.generateDataKey(CONTEXT), rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
    const key = await provider.generateDataKey(CONTEXT);
    assert.equal(key.plaintext.length, 32, 'the service answers again once the faults are spent');
  });

  test('one damaged blob is ERR_ENVELOPE_AUTH, and the next good one still unwraps', async () => {
    const provider = await open(fake, fake.createKey());
    const key = await provider.generateDataKey(CONTEXT);
    const damaged = Buffer.from(key.wrapped);
    damaged[20]! ^= 0x40;
    await assert.rejects(
      provider.unwrapDataKey({ kid: key.kid, wrapped: damaged }, CONTEXT),
      rejectsWith('ERR_ENVELOPE_AUTH'),
    );
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('a throttled call is retried by the SDK with backoff and succeeds within its deadline', async () => {
    const provider = await open(fake, fake.createKey());
    const before = fake.calls.get('GenerateDataKey') ?? 0;
    fake.inject('throttle', { operation: 'GenerateDataKey', times: 2 });
    const key = await provider.generateDataKey(CONTEXT, { signal: AbortSignal.timeout(10_000) });
    assert.equal(key.plaintext.length, 32);
    assert.equal(
      (fake.calls.get('GenerateDataKey') ?? 0) - before,
      3,
      'two throttled attempts, then success',
    );
  });

  test('throttling that outlasts the retries is ERR_KEY_SERVICE_UNAVAILABLE', async () => {
    const provider = await open(fake, fake.createKey());
    fake.inject('throttle', { operation: 'Decrypt', times: 100 });
    const key = await provider.generateDataKey(CONTEXT);
    await assert.rejects(
      provider.unwrapDataKey(key, CONTEXT, { signal: AbortSignal.timeout(20_000) }),
      rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'),
    );
  });

  test('a call that never gets an answer is abandoned at its deadline: ERR_KEY_SERVICE_UNAVAILABLE', async () => {
    const provider = await open(fake, fake.createKey());
    fake.inject('hang', { operation: 'GenerateDataKey' });
    const started = performance.now();
    await assert.rejects(
      provider.generateDataKey(CONTEXT, { signal: AbortSignal.timeout(300) }),
      rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'),
    );
    // The SDK's own request timeout is 30 s: ending well before it proves the caller's deadline ended the call.
    assert.ok(performance.now() - started < 10_000);
  });

  test('the deadline also ends the SDK backoff between throttled attempts', async () => {
    const provider = await open(fake, fake.createKey());
    fake.inject('throttle', { operation: 'GenerateDataKey', times: 100 });
    const controller = new AbortController();
    const attempt = provider.generateDataKey(CONTEXT, { signal: controller.signal });
    // Abort once the first throttled answer has come back, so the SDK is between attempts.
    const before = fake.calls.get('GenerateDataKey') ?? 0;
    while ((fake.calls.get('GenerateDataKey') ?? 0) === before) await new Promise((r) => setTimeout(r, 5));
    controller.abort(new Error('deadline'));
    await assert.rejects(attempt, rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('error messages name the operation and exception, never key ids or context values', async () => {
    const keyArn = fake.createKey();
    const provider = await open(fake, keyArn);
    fake.setKeyState(keyArn, 'Disabled');
    const error = await provider.generateDataKey(CONTEXT).catch((e: unknown) => e);
    assert.ok(error instanceof PhiCacheError);
    assert.equal(error.message, 'AWS KMS GenerateDataKey failed with DisabledException');
  });

  test('a URI that is not a KMS key or alias ARN is a TypeError that does not echo it', async () => {
    for (const uri of [
      'aws-kms://arn:aws:kms:us-east-1:111122223333:secret-name',
      'aws-kms://key/x',
      'gcp-kms://x',
    ]) {
      await assert.rejects(
        openKekProvider(uri, { domain: 'cache', endpoint: fake.endpoint }),
        (error: unknown) => {
          assert.ok(error instanceof TypeError);
          assert.equal(error.message.includes('secret-name'), false);
          return true;
        },
      );
    }
  });
});

/**
 * Opt-in: against a real AWS KMS key. Set PHICACHE_TEST_AWS_KMS_URI=aws-kms://arn:aws:kms:… and credentials the
 * SDK's default chain finds (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, …).
 */
const realUri = process.env.PHICACHE_TEST_AWS_KMS_URI;
test('real AWS KMS: generate, unwrap, rewrap and describe under the key in PHICACHE_TEST_AWS_KMS_URI', {
  skip: !realUri && 'set PHICACHE_TEST_AWS_KMS_URI and AWS credentials to run against a real KMS key',
}, async () => {
  const provider = await openKekProvider(realUri!, { domain: 'cache' });
  const signal = () => AbortSignal.timeout(10_000);
  const key = await provider.generateDataKey(CONTEXT, { signal: signal() });
  assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT, { signal: signal() }), key.plaintext);
  await assert.rejects(
    provider.unwrapDataKey(key, { ...CONTEXT, 'phicache:tenant': 't-2' }, { signal: signal() }),
    rejectsWith('ERR_ENVELOPE_AUTH'),
  );
  const rewrapped = await provider.rewrapDataKey(key, CONTEXT, { signal: signal() });
  assert.deepEqual(await provider.unwrapDataKey(rewrapped, CONTEXT, { signal: signal() }), key.plaintext);
  const described = await provider.describeKek({ signal: signal() });
  assert.equal(described.versions[0]?.state, 'active');
});
