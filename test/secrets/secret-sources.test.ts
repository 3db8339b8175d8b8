/**
 * Secret references: env:, file:, aws-sm:// through the official SDK against a local Secrets Manager that checks
 * SigV4, and vault-kv:// against a local Vault; each with its faults mapped to the port's codes, under a
 * deadline, and with no value in any message.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { openSecretSource } from '../../src/secrets/open-secret-source.js';
import { type FakeSecretsManager, startFakeSecretsManager } from '../harness/fake-secrets-aws.js';
import { type FakeVault, startFakeVault } from '../harness/fake-secrets-vault.js';

const PASSWORD = 'Correct-Horse-Battery-Staple-42';

/** Rejects with `code`, and the message, hint and cause chain's messages never hold the secret. */
async function rejectsWith(reading: Promise<unknown>, code: string, ...secrets: string[]): Promise<void> {
  const error = await reading.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof PhiCacheError, `a PhiCacheError, not ${String(error)}`);
  assert.equal(error.code, code);
  for (const secret of [PASSWORD, ...secrets]) {
    assert.ok(!`${error.message} ${error.hint}`.includes(secret), 'no secret in the message or hint');
  }
}

describe('env: and file:', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-secrets-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('env: reads the variable anew at each read, without its trailing line break', async () => {
    const environment: Record<string, string> = { REDIS_PASSWORD: `${PASSWORD}\n` };
    const source = openSecretSource('env:REDIS_PASSWORD', { environment });
    assert.equal(source.reference, 'env:REDIS_PASSWORD');
    assert.deepEqual(await source.read(), Buffer.from(PASSWORD));
    environment.REDIS_PASSWORD = 'rotated';
    assert.equal((await source.read()).toString(), 'rotated');
    await rejectsWith(openSecretSource('env:ABSENT', { environment }).read(), 'ERR_KEY_NOT_FOUND');
    environment.REDIS_PASSWORD = '\r\n';
    await rejectsWith(source.read(), 'ERR_KEY_NOT_FOUND');
  });

  test('file: reads the file anew at each read, as a rotated mount updates it', async () => {
    const file = join(dir, 'password');
    await writeFile(file, `${PASSWORD}\r\n`);
    const source = openSecretSource(`file:${file}`);
    assert.deepEqual(await source.read(), Buffer.from(PASSWORD));
    await writeFile(file, 'rotated');
    assert.equal((await source.read()).toString(), 'rotated');
    await rejectsWith(openSecretSource(`file:${join(dir, 'absent')}`).read(), 'ERR_KEY_NOT_FOUND');
  });

  test('bad references are TypeErrors that do not repeat what was given', () => {
    assert.throws(
      () => openSecretSource(PASSWORD),
      (e: unknown) => {
        assert.ok(e instanceof TypeError);
        assert.ok(!e.message.includes(PASSWORD));
        return true;
      },
    );
    assert.throws(() => openSecretSource('env:not a name'), TypeError);
    assert.throws(
      () => openSecretSource('vault-kv://user:pw@vault:8200/secret/data/redis#password'),
      TypeError,
    );
    assert.throws(() => openSecretSource('vault-kv://vault:8200/secret/redis#password'), TypeError);
    assert.throws(
      () => openSecretSource('vault-kv://vault.example:8200/secret/data/r?scheme=http#p'),
      TypeError,
    );
    assert.throws(() => openSecretSource('aws-sm://name#'), TypeError);
    assert.throws(() => openSecretSource('env:X', { timeoutMs: 0 }), RangeError);
    assert.throws(() => openSecretSource('file:/x', { timeoutMs: Number.NaN }), RangeError);
  });
});

describe('aws-sm:// through @aws-sdk/client-secrets-manager (local wire-protocol server, SigV4 checked)', () => {
  let aws: FakeSecretsManager;
  const arn = 'arn:aws:secretsmanager:us-east-1:111122223333:secret:phicache/redis-AbCdEf';
  const open = (reference: string, timeoutMs = 5_000) =>
    openSecretSource(reference, {
      timeoutMs,
      aws: { endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials },
    });
  before(async () => {
    aws = await startFakeSecretsManager();
  });
  after(() => aws.close());

  test('a SecretString, a JSON field of one, and a SecretBinary (a CA bundle) come back as bytes', async () => {
    aws.secrets.set(arn, JSON.stringify({ username: 'redis-user-xq7', password: PASSWORD }));
    aws.secrets.set('phicache/redis-ca', Buffer.from('-----BEGIN CERTIFICATE-----\n'));
    aws.secrets.set('phicache/auth', `${PASSWORD}\n`);
    assert.equal((await open(`aws-sm://${arn}#password`).read()).toString(), PASSWORD);
    assert.equal((await open('aws-sm://phicache/auth').read()).toString(), PASSWORD);
    assert.equal((await open('aws-sm://phicache/redis-ca').read()).toString(), '-----BEGIN CERTIFICATE-----');
  });

  test('a request signed with another secret key is refused: the fake checks SigV4', async () => {
    const wrong = openSecretSource('aws-sm://phicache/auth', {
      aws: {
        endpoint: aws.endpoint,
        region: aws.region,
        credentials: { accessKeyId: aws.credentials.accessKeyId, secretAccessKey: 'not-the-key' },
      },
    });
    await rejectsWith(wrong.read(), 'ERR_KEY_ACCESS_DENIED');
  });

  test('throttling is retried by the SDK within the deadline, and then the value arrives', async () => {
    aws.throttleNext = 2;
    const before = aws.requests;
    assert.equal((await open('aws-sm://phicache/auth').read()).toString(), PASSWORD);
    assert.equal(aws.requests - before, 3, 'two throttled attempts, then the answer');
  });

  test('faults map to the port codes, with no value in the messages', async () => {
    await rejectsWith(open('aws-sm://phicache/absent').read(), 'ERR_KEY_NOT_FOUND');
    await rejectsWith(open(`aws-sm://${arn}#absent-field`).read(), 'ERR_KEY_NOT_FOUND', 'redis-user-xq7');
    await rejectsWith(open('aws-sm://phicache/auth#password').read(), 'ERR_KEY_NOT_FOUND');
    aws.throttleNext = 100;
    await rejectsWith(open('aws-sm://phicache/auth').read(), 'ERR_KEY_SERVICE_UNAVAILABLE');
    aws.throttleNext = 0;
    for (const [fault, code] of [
      ['deny', 'ERR_KEY_ACCESS_DENIED'],
      ['deleted', 'ERR_KEY_DISABLED'],
      ['malformed', 'ERR_KEY_SERVICE_UNAVAILABLE'],
    ] as const) {
      aws.fault = fault;
      await rejectsWith(open('aws-sm://phicache/auth').read(), code);
    }
    aws.fault = undefined;
  });

  test('a service that never answers fails at the deadline, and so does a caller that gives up', async () => {
    aws.fault = 'hang';
    try {
      await rejectsWith(open('aws-sm://phicache/auth', 300).read(), 'ERR_KEY_SERVICE_UNAVAILABLE');
      const caller = new AbortController();
      const reading = open('aws-sm://phicache/auth', 60_000).read({ signal: caller.signal });
      caller.abort();
      await rejectsWith(reading, 'ERR_KEY_SERVICE_UNAVAILABLE');
    } finally {
      aws.fault = undefined;
    }
  });
});

describe('vault-kv:// over the Vault HTTP API (local server)', () => {
  let vault: FakeVault;
  const TOKEN = 'hvs.fake-token-for-tests';
  const environment = { VAULT_TOKEN: TOKEN };
  const reference = () => `vault-kv://${vault.host}/secret/data/phicache/redis?scheme=http#password`;
  const open = (ref = reference(), timeoutMs = 5_000) => openSecretSource(ref, { environment, timeoutMs });
  before(async () => {
    vault = await startFakeVault(TOKEN);
    vault.secrets.set('secret/data/phicache/redis', { username: 'phicache', password: PASSWORD });
  });
  after(() => vault.close());

  test('reads one field with the token from token-source (default env:VAULT_TOKEN)', async () => {
    assert.equal((await open().read()).toString(), PASSWORD);
    assert.equal(open().reference, `vault-kv://${vault.host}/secret/data/phicache/redis#password`);
    const other = `vault-kv://${vault.host}/secret/data/phicache/redis?scheme=http&token-source=env:OTHER#password`;
    assert.equal(
      (await openSecretSource(other, { environment: { OTHER: TOKEN } }).read()).toString(),
      PASSWORD,
    );
  });

  test('faults map to the port codes, with neither value nor token in the messages', async () => {
    await rejectsWith(
      openSecretSource(reference(), { environment: { VAULT_TOKEN: 'wrong' } }).read(),
      'ERR_KEY_ACCESS_DENIED',
      TOKEN,
    );
    await rejectsWith(open(reference().replace('#password', '#absent')).read(), 'ERR_KEY_NOT_FOUND', TOKEN);
    await rejectsWith(open(reference().replace('redis?', 'absent?')).read(), 'ERR_KEY_NOT_FOUND', TOKEN);
    for (const [fault, code] of [
      ['deny', 'ERR_KEY_ACCESS_DENIED'],
      ['sealed', 'ERR_KEY_SERVICE_UNAVAILABLE'],
      ['destroyed', 'ERR_KEY_DISABLED'],
      ['malformed', 'ERR_KEY_SERVICE_UNAVAILABLE'],
    ] as const) {
      vault.fault = fault;
      await rejectsWith(open().read(), code, TOKEN);
    }
    vault.fault = 'hang';
    await rejectsWith(open(reference(), 300).read(), 'ERR_KEY_SERVICE_UNAVAILABLE', TOKEN);
    vault.fault = undefined;
  });
});

describe('opt-in: the real AWS Secrets Manager', () => {
  // PHICACHE_TEST_AWS_SECRET names a secret (ARN or name, #field allowed) the SDK's default credentials can read.
  const reference = process.env.PHICACHE_TEST_AWS_SECRET;
  test('reads the named secret through the default credential chain', {
    skip: !reference && 'set PHICACHE_TEST_AWS_SECRET (and AWS credentials) to run against the real service',
  }, async () => {
    const bytes = await openSecretSource(`aws-sm://${reference}`, { timeoutMs: 10_000 }).read();
    assert.ok(bytes.length > 0);
    bytes.fill(0);
  });
});
