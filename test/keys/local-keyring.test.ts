import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { PhiCacheError } from '../../src/errors.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';

const home = () => mkdtemp(join(tmpdir(), 'phicache-keyring-'));
const hasCode = (code: string) => (error: unknown) => error instanceof PhiCacheError && error.code === code;

describe('LocalKeyring', () => {
  test('refuses to run with NODE_ENV=production', async () => {
    await assert.rejects(
      LocalKeyring.open({ home: await home(), env: { NODE_ENV: 'production' } }),
      hasCode('ERR_KEYRING_PRODUCTION'),
    );
  });

  test('refuses production also when PHICACHE_HOME comes from the environment', async () => {
    await assert.rejects(
      LocalKeyring.open({ env: { NODE_ENV: 'production', PHICACHE_HOME: await home() } }),
      hasCode('ERR_KEYRING_PRODUCTION'),
    );
  });

  test('generates, wraps and unwraps a 256-bit data key under a versioned kid', async () => {
    const keyring = await LocalKeyring.open({ home: await home(), env: {} });
    const context = { 'phicache:tenant': 't1', 'phicache:dek': 'abc' };
    const key = await keyring.generateDataKey(context);
    assert.equal(key.plaintext.length, 32);
    assert.equal(key.kid, 'local:cache:v1');
    assert.ok(!key.wrapped.includes(key.plaintext), 'the wrapped key must not contain the key');
    assert.deepEqual(await keyring.unwrapDataKey(key, context), key.plaintext);
  });

  test('PHI-TENANT-01 a wrapped key does not unwrap under another context (tenant, class, epoch)', async () => {
    const keyring = await LocalKeyring.open({ home: await home(), env: {} });
    const key = await keyring.generateDataKey({ 'phicache:tenant': 't1' });
    await assert.rejects(
      keyring.unwrapDataKey(key, { 'phicache:tenant': 't2' }),
      hasCode('ERR_ENVELOPE_AUTH'),
    );
    const flipped = Buffer.from(key.wrapped);
    flipped[20]! ^= 1;
    await assert.rejects(
      keyring.unwrapDataKey({ kid: key.kid, wrapped: flipped }, { 'phicache:tenant': 't1' }),
      hasCode('ERR_ENVELOPE_AUTH'),
    );
  });

  test('an unknown kid is ERR_KEY_NOT_FOUND', async () => {
    const keyring = await LocalKeyring.open({ home: await home(), env: {} });
    const key = await keyring.generateDataKey({});
    await assert.rejects(
      keyring.unwrapDataKey({ kid: 'local:cache:v9', wrapped: key.wrapped }, {}),
      hasCode('ERR_KEY_NOT_FOUND'),
    );
    await assert.rejects(
      keyring.unwrapDataKey({ kid: 'other', wrapped: key.wrapped }, {}),
      hasCode('ERR_KEY_NOT_FOUND'),
    );
  });

  test('the keyring persists: a second open unwraps what the first wrapped and derives the same name secret', async () => {
    const dir = await home();
    const first = await LocalKeyring.open({ home: dir, env: {} });
    const key = await first.generateDataKey({ a: 'b' });
    const second = await LocalKeyring.open({ home: dir, env: {} });
    assert.deepEqual(await second.unwrapDataKey(key, { a: 'b' }), key.plaintext);
    assert.deepEqual(await second.nameSecret(), await first.nameSecret());
    assert.equal((await first.nameSecret()).length, 32);
  });

  test('processes racing to create the keyring end up sharing one', async () => {
    const dir = await home();
    const rings = await Promise.all(
      Array.from({ length: 8 }, () => LocalKeyring.open({ home: dir, env: {} })),
    );
    const secrets = await Promise.all(rings.map((ring) => ring.nameSecret()));
    for (const secret of secrets) assert.deepEqual(secret, secrets[0]);
  });

  test('the keyring file is private (mode 0600) and domains are separate files', async () => {
    const dir = await home();
    const cache = await LocalKeyring.open({ home: dir, env: {} });
    const backup = await LocalKeyring.open({ home: dir, env: {}, domain: 'backup' });
    assert.equal((await stat(join(dir, 'keyring', 'cache.json'))).mode & 0o777, 0o600);
    assert.equal(backup.currentKid(), 'local:backup:v1');
    const key = await cache.generateDataKey({});
    await assert.rejects(backup.unwrapDataKey(key, {}), hasCode('ERR_KEY_NOT_FOUND'));
  });

  test('a damaged keyring file is ERR_KEYRING_CORRUPT, with no file content in the message', async () => {
    const dir = await home();
    await LocalKeyring.open({ home: dir, env: {} });
    const path = join(dir, 'keyring', 'cache.json');
    const original = await readFile(path, 'utf8');
    await writeFile(path, original.slice(0, 40));
    await assert.rejects(LocalKeyring.open({ home: dir, env: {} }), (error: unknown) => {
      return (
        error instanceof PhiCacheError && error.code === 'ERR_KEYRING_CORRUPT' && !error.message.includes('{')
      );
    });
    await writeFile(path, JSON.stringify({ format: 'phicache-local-keyring', formatVersion: 1, keks: [] }));
    await assert.rejects(LocalKeyring.open({ home: dir, env: {} }), hasCode('ERR_KEYRING_CORRUPT'));
  });
});
