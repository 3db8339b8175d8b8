import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { checkedKekProvider } from '../../src/keys/checked-provider.js';
import type { EncryptionContext } from '../../src/keys/key-provider.js';
import { VaultTransit, type VaultTransitOptions } from '../../src/keys/providers/vault-transit.js';
import { type FakeVault, startFakeVault } from '../harness/fake-vault.js';

const URI = 'hcvault://vault.internal:8200/transit/keys/phicache-cache';
const CONTEXT: EncryptionContext = {
  'phicache:tenant': 't-1',
  'phicache:class': 'phi',
  'phicache:epoch': '7',
};
const FAST_RETRY = { attempts: 5, baseMs: 1, capMs: 5 };

const code = (expected: string) => (error: unknown) => {
  assert.ok(error instanceof PhiCacheError, `expected a PhiCacheError, got ${String(error)}`);
  assert.equal(error.code, expected);
  return true;
};

describe('Vault Transit adapter: faults, versions and auth', () => {
  let vault: FakeVault;
  before(async () => {
    vault = await startFakeVault();
  });
  after(() => vault.close());

  /** A fresh key per test, so that rotations and faults do not leak between tests. */
  let keys = 0;
  const fresh = async (options: Partial<VaultTransitOptions> = {}) => {
    const name = `k${++keys}`;
    vault.createKey(name);
    vault.clearFaults();
    const provider = await VaultTransit.open(URI.replace('phicache-cache', name), {
      domain: 'cache',
      endpoint: vault.endpoint,
      env: { VAULT_TOKEN: vault.rootToken },
      retry: FAST_RETRY,
      ...options,
    });
    return { name, provider };
  };

  test('throttling (429) and a sealed node (503) are retried, and the call then succeeds', async () => {
    const { provider } = await fresh();
    vault.inject('datakey', 'throttle', 2);
    vault.inject('datakey', 'sealed', 1);
    const seen = vault.requests.length;
    const key = await provider.generateDataKey(CONTEXT);
    assert.deepEqual(vault.requests.slice(seen), ['datakey', 'datakey', 'datakey', 'datakey']);
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('throttling that outlasts the retries is ERR_KEY_SERVICE_UNAVAILABLE, after exactly the allowed attempts', async () => {
    const { provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    vault.inject('decrypt', 'throttle');
    const seen = vault.requests.length;
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), code('ERR_KEY_SERVICE_UNAVAILABLE'));
    assert.equal(vault.requests.slice(seen).filter((r) => r === 'decrypt').length, FAST_RETRY.attempts);
  });

  test('throttling stops being retried once the caller aborts: the backoff ends with the signal', async () => {
    const { provider } = await fresh({ retry: { attempts: 1000, baseMs: 1, capMs: 2 } });
    vault.inject('datakey', 'throttle');
    const controller = new AbortController();
    const call = provider.generateDataKey(CONTEXT, { signal: controller.signal });
    while (vault.requests.filter((r) => r === 'datakey').length < 3)
      await new Promise((r) => setImmediate(r));
    controller.abort(new Error('deadline'));
    await assert.rejects(call, code('ERR_KEY_SERVICE_UNAVAILABLE'));
    const attempts = vault.requests.filter((r) => r === 'datakey').length;
    assert.ok(attempts < 1000, 'the retries stopped well before the attempt budget');
  });

  test('an abort signal cancels a request Vault never answers', async () => {
    const { provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    vault.inject('decrypt', 'hang');
    const controller = new AbortController();
    const call = provider.unwrapDataKey(key, CONTEXT, { signal: controller.signal });
    const seen = vault.requests.length;
    while (!vault.requests.slice(seen).includes('decrypt')) await new Promise((r) => setImmediate(r));
    controller.abort(new Error('deadline'));
    await assert.rejects(call, code('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('through the checked wrapper, a hanging Vault is cut off at the deadline', async () => {
    const { provider } = await fresh();
    vault.inject('datakey', 'hang');
    const checked = checkedKekProvider(provider, 50);
    await assert.rejects(checked.generateDataKey(CONTEXT), code('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('a Vault that has gone away (connection refused) is ERR_KEY_SERVICE_UNAVAILABLE', async () => {
    const gone = await startFakeVault();
    gone.createKey('k');
    const provider = await VaultTransit.open(URI.replace('phicache-cache', 'k'), {
      domain: 'cache',
      endpoint: gone.endpoint,
      env: { VAULT_TOKEN: gone.rootToken },
      retry: FAST_RETRY,
    });
    await gone.close();
    await assert.rejects(provider.generateDataKey(CONTEXT), code('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('a malformed answer is ERR_KEY_SERVICE_UNAVAILABLE, never a key', async () => {
    const { provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    vault.inject('datakey', 'malformed', 1);
    await assert.rejects(provider.generateDataKey(CONTEXT), code('ERR_KEY_SERVICE_UNAVAILABLE'));
    vault.inject('decrypt', 'malformed', 1);
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), code('ERR_KEY_SERVICE_UNAVAILABLE'));
  });

  test('permission denied (403) is ERR_KEY_ACCESS_DENIED, and a token without decrypt cannot unwrap', async () => {
    const { name, provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    vault.inject('datakey', 'deny', 1);
    await assert.rejects(provider.generateDataKey(CONTEXT), code('ERR_KEY_ACCESS_DENIED'));
    const writeOnly = await VaultTransit.open(URI.replace('phicache-cache', name), {
      domain: 'cache',
      endpoint: vault.endpoint,
      env: { VAULT_TOKEN: vault.issueToken([`transit/keys/${name}`, `transit/datakey/plaintext/${name}`]) },
    });
    await writeOnly.generateDataKey(CONTEXT);
    await assert.rejects(writeOnly.unwrapDataKey(key, CONTEXT), code('ERR_KEY_ACCESS_DENIED'));
  });

  test('a wrong context, another domain or a damaged ciphertext is ERR_ENVELOPE_AUTH, and the service stays up', async () => {
    const { name, provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    await assert.rejects(
      provider.unwrapDataKey(key, { ...CONTEXT, 'phicache:epoch': '8' }),
      code('ERR_ENVELOPE_AUTH'),
    );
    const backup = await VaultTransit.open(URI.replace('phicache-cache', name), {
      domain: 'backup',
      endpoint: vault.endpoint,
      env: { VAULT_TOKEN: vault.rootToken },
    });
    await assert.rejects(backup.unwrapDataKey(key, CONTEXT), code('ERR_ENVELOPE_AUTH'));
    const text = key.wrapped.toString('utf8');
    const body = text.slice(text.lastIndexOf(':') + 1);
    const swapped = body.startsWith('A') ? `B${body.slice(1)}` : `A${body.slice(1)}`;
    const damaged = Buffer.from(`${text.slice(0, text.lastIndexOf(':') + 1)}${swapped}`);
    await assert.rejects(
      provider.unwrapDataKey({ kid: key.kid, wrapped: damaged }, CONTEXT),
      code('ERR_ENVELOPE_AUTH'),
    );
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('a ciphertext whose version disagrees with its kid is refused before Vault is asked', async () => {
    const { provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    const seen = vault.requests.length;
    await assert.rejects(
      provider.unwrapDataKey({ kid: key.kid.replace(/:v1$/, ':v2'), wrapped: key.wrapped }, CONTEXT),
      code('ERR_ENVELOPE_AUTH'),
    );
    await assert.rejects(
      provider.unwrapDataKey(
        { kid: 'hcvault://vault.internal:8200/transit/keys/other:v1', wrapped: key.wrapped },
        CONTEXT,
      ),
      code('ERR_KEY_NOT_FOUND'),
    );
    assert.equal(vault.requests.length, seen);
  });

  test('rewrap moves a data key to the newest version; an archived version is ERR_KEY_DISABLED', async () => {
    const { name, provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    assert.match(key.kid, /:v1$/);
    vault.rotate(name);
    vault.rotate(name);
    const rewrapped = await provider.rewrapDataKey(key, CONTEXT);
    assert.match(rewrapped.kid, /:v3$/);
    assert.match(rewrapped.wrapped.toString('utf8'), /^vault:v3:/);
    assert.equal(provider.currentKid(), rewrapped.kid);
    vault.setMinDecryptionVersion(name, 3);
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), code('ERR_KEY_DISABLED'));
    assert.deepEqual(await provider.unwrapDataKey(rewrapped, CONTEXT), key.plaintext);
    const description = await provider.describeKek();
    assert.deepEqual(
      description.versions.map((v) => [v.kid.slice(v.kid.lastIndexOf(':') + 1), v.state]),
      [
        ['v1', 'disabled'],
        ['v2', 'disabled'],
        ['v3', 'active'],
      ],
    );
    assert.equal(description.current, rewrapped.kid);
    assert.equal(description.uri, URI.replace('phicache-cache', name));
  });

  test('a rotation seen by describeKek moves the current kid; older versions stay decrypt-only', async () => {
    const { name, provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    vault.rotate(name);
    const description = await provider.describeKek();
    assert.match(description.current, /:v2$/);
    assert.deepEqual(
      description.versions.map((v) => v.state),
      ['decrypt-only', 'active'],
    );
    const next = await provider.generateDataKey(CONTEXT);
    assert.equal(next.kid, provider.currentKid());
    assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
  });

  test('a deleted key is ERR_KEY_NOT_FOUND', async () => {
    const { name, provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    vault.deleteKey(name);
    await assert.rejects(provider.unwrapDataKey(key, CONTEXT), code('ERR_KEY_NOT_FOUND'));
    await assert.rejects(provider.generateDataKey(CONTEXT), code('ERR_KEY_NOT_FOUND'));
    await assert.rejects(
      VaultTransit.open(URI.replace('phicache-cache', 'never-made'), {
        domain: 'cache',
        endpoint: vault.endpoint,
        env: { VAULT_TOKEN: vault.rootToken },
      }),
      code('ERR_KEY_NOT_FOUND'),
    );
  });

  test('a key that cannot bind a context (not derived) is refused at open', async () => {
    vault.createKey('plain', { derived: false });
    await assert.rejects(
      VaultTransit.open(URI.replace('phicache-cache', 'plain'), {
        domain: 'cache',
        endpoint: vault.endpoint,
        env: { VAULT_TOKEN: vault.rootToken },
      }),
      (error: unknown) => error instanceof PhiCacheError && /derived=true/.test(error.hint),
    );
  });

  test('AppRole: an expired token leads to one fresh login and the call goes through', async () => {
    const name = `k${++keys}`;
    vault.createKey(name);
    vault.addAppRole(
      'role-expiry',
      'secret-expiry',
      [`transit/keys/${name}`, `transit/datakey/plaintext/${name}`],
      3600,
    );
    const provider = await VaultTransit.open(
      `${URI.replace('phicache-cache', name)}?role-id-source=env:R&secret-id-source=env:S`,
      { domain: 'cache', endpoint: vault.endpoint, env: { R: 'role-expiry', S: 'secret-expiry' } },
    );
    vault.expireAllTokens();
    const seen = vault.requests.length;
    await provider.generateDataKey(CONTEXT);
    assert.deepEqual(vault.requests.slice(seen), ['datakey', 'login', 'datakey']);
  });

  test('AppRole: the token is renewed after two thirds of its lease, by the injected clock', async () => {
    let seconds = 1_000_000;
    const clocked = await startFakeVault({ now: () => seconds });
    try {
      clocked.createKey('k');
      clocked.addAppRole('role', 'secret', ['transit/keys/k', 'transit/datakey/plaintext/k'], 60);
      const provider = await VaultTransit.open(
        `${URI.replace('phicache-cache', 'k')}?role-id-source=env:R&secret-id-source=env:S`,
        {
          domain: 'cache',
          endpoint: clocked.endpoint,
          env: { R: 'role', S: 'secret' },
          now: () => seconds * 1000,
        },
      );
      seconds += 30;
      await provider.generateDataKey(CONTEXT);
      seconds += 15; // 45 s of 60: past two thirds
      await provider.generateDataKey(CONTEXT);
      seconds += 30; // past the first lease's end (60 s); alive only because it was renewed
      await provider.generateDataKey(CONTEXT);
      assert.deepEqual(clocked.requests, ['login', 'read', 'datakey', 'renew', 'datakey', 'datakey']);
    } finally {
      await clocked.close();
    }
  });

  test('AppRole: wrong credentials are ERR_KEY_ACCESS_DENIED at open', async () => {
    await assert.rejects(
      VaultTransit.open(`${URI}?role-id-source=env:R&secret-id-source=env:S`, {
        domain: 'cache',
        endpoint: vault.endpoint,
        env: { R: 'nobody', S: 'wrong' },
      }),
      code('ERR_KEY_ACCESS_DENIED'),
    );
  });

  test('a token file rewritten by an agent is read again when Vault refuses the old token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-vault-'));
    try {
      const { name } = await fresh();
      const file = join(dir, 'token');
      await writeFile(file, `${vault.issueToken(['*'])}\n`);
      const provider = await VaultTransit.open(
        `${URI.replace('phicache-cache', name)}?token-source=file:${file}`,
        {
          domain: 'cache',
          endpoint: vault.endpoint,
        },
      );
      vault.expireAllTokens();
      await writeFile(file, `${vault.issueToken(['*'])}\n`);
      const key = await provider.generateDataKey(CONTEXT);
      assert.equal(key.plaintext.length, 32);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a missing token is ERR_KEY_ACCESS_DENIED naming the variable, never a value', async () => {
    await assert.rejects(
      VaultTransit.open(URI, { domain: 'cache', endpoint: vault.endpoint, env: {} }),
      (error: unknown) =>
        error instanceof PhiCacheError &&
        error.code === 'ERR_KEY_ACCESS_DENIED' &&
        /VAULT_TOKEN/.test(error.message),
    );
  });

  test("errors never carry the token, the context values or Vault's own text", async () => {
    const { provider } = await fresh();
    const key = await provider.generateDataKey(CONTEXT);
    const messages: string[] = [];
    for (const fault of ['throttle', 'deny', 'malformed'] as const) {
      vault.clearFaults();
      vault.inject('decrypt', fault);
      await provider
        .unwrapDataKey(key, CONTEXT)
        .catch((error: PhiCacheError) => messages.push(error.message));
    }
    vault.clearFaults();
    await provider
      .unwrapDataKey(key, { ...CONTEXT, 'phicache:tenant': 'tenant-secret-id' })
      .catch((error: PhiCacheError) => messages.push(error.message));
    assert.equal(messages.length, 4);
    for (const message of messages) {
      assert.ok(!message.includes(vault.rootToken));
      assert.ok(!message.includes('tenant-secret-id') && !message.includes('t-1'));
      assert.ok(!/rate limit|permission denied\n|cipher:/.test(message));
    }
  });
});

describe('Vault key URIs', () => {
  const open = (uri: string, endpoint?: string) =>
    VaultTransit.open(uri, { domain: 'cache', env: {}, ...(endpoint === undefined ? {} : { endpoint }) });

  test('a URI that would carry a credential is refused without echoing it', async () => {
    for (const uri of [
      `${URI}?token=hvs.SECRET`,
      `${URI}?secret-id=SECRET`,
      'hcvault://user:SECRET@vault.internal:8200/transit/keys/k',
    ]) {
      await assert.rejects(open(uri), (error: unknown) => {
        assert.ok(error instanceof TypeError);
        assert.ok(!error.message.includes('SECRET'));
        return true;
      });
    }
  });

  test('malformed URIs are TypeErrors', async () => {
    for (const uri of [
      'vault://h/transit/keys/k',
      'hcvault://h/transit/k',
      'hcvault://h/keys/k',
      'hcvault://h/transit/keys/',
      'hcvault://h/transit/keys/a/b',
      `${URI}?token-source=VAULT_TOKEN`,
      `${URI}?role-id-source=env:R`,
    ]) {
      await assert.rejects(open(uri), TypeError, uri);
    }
  });

  test('plain http is allowed on loopback only', async () => {
    await assert.rejects(open(URI, 'http://vault.internal:8200'), RangeError);
  });
});
