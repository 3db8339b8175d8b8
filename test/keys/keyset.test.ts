import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { openAuditKeys } from '../../src/audit/audit-keys.js';
import { PhiCacheError } from '../../src/errors.js';
import { Keyset } from '../../src/keys/keyset.js';

const hasCode = (code: string) => (error: unknown) => error instanceof PhiCacheError && error.code === code;

async function fixture() {
  const dir = await mkdtemp(join(tmpdir(), 'phicache-keyset-'));
  const env = { PHICACHE_HOME: join(dir, 'home') };
  const path = join(dir, 'keyset.json');
  const keyset = await Keyset.create({ keks: { cache: 'local:', audit: 'local:', backup: 'local:' }, env });
  await keyset.writeTo(path);
  return { dir, env, path, keyset };
}

/** The file with one change made by `edit`, written next to it. */
/** The keyset file's JSON, loosely: the tests edit it into shapes the reader must refuse. */
interface KeysetDoc {
  formatVersion: number;
  allowSharedKek: boolean;
  keks: Record<string, string>;
  cache: { nameSecret: unknown };
  audit: { publicKey: string; signingSeed: unknown; streamRoot: unknown };
}

async function edited(path: string, edit: (json: KeysetDoc) => void): Promise<string> {
  const json = JSON.parse(await readFile(path, 'utf8')) as KeysetDoc;
  edit(json);
  const out = `${path}.edited-${Math.random().toString(36).slice(2)}.json`;
  await writeFile(out, JSON.stringify(json));
  return out;
}

describe('Keyset', () => {
  test('every instance that opens the same file gets the same name secret and the same audit signing key', async () => {
    const { env, path, keyset } = await fixture();
    const first = await Keyset.open(path, { env });
    const second = await Keyset.open(path, { env });
    assert.deepEqual(await first.cache.nameSecret(), await second.cache.nameSecret());
    assert.equal((await first.cache.nameSecret()).length, 32);
    const keys = await openAuditKeys({ keyset: first.audit });
    const again = await openAuditKeys({ keyset: second.audit });
    assert.equal(keys.signingKid, keyset.signingKid);
    assert.equal(again.signingKid, keyset.signingKid);
    assert.deepEqual(keys.streamKey(7), again.streamKey(7));
    // The public key in the file is the one the seed gives: an auditor needs nothing else.
    const message = Buffer.from('checkpoint');
    assert.ok(
      verify(null, message, (await Keyset.read(path)).publicKey, sign(null, message, keys.signingKey)),
    );
  });

  test('the file holds the KEK URIs and versioned format, and no secret in clear', async () => {
    const { path, keyset } = await fixture();
    const json = JSON.parse(await readFile(path, 'utf8'));
    assert.deepEqual(
      [json.format, json.formatVersion, json.keks],
      ['phicache-keyset', 1, { cache: 'local:', audit: 'local:', backup: 'local:' }],
    );
    assert.equal(json.id, keyset.id);
    assert.equal(json.allowSharedKek, false);
    const keys = await openAuditKeys({
      keyset: await keyset.openAudit({ env: { PHICACHE_HOME: join(path, '..', 'home') } }),
    });
    const text = await readFile(path, 'utf8');
    assert.ok(!text.includes(keys.streamKey(0).toString('base64')));
  });

  test('one KEK for two domains is refused unless allowSharedKek', async () => {
    const env = { PHICACHE_HOME: await mkdtemp(join(tmpdir(), 'phicache-keyset-')) };
    await assert.rejects(
      Keyset.create({ keks: { cache: 'local:', audit: 'local:cache' }, env }),
      (error: unknown) => {
        return error instanceof RangeError && /cache and audit domains name the same KEK/.test(error.message);
      },
    );
    await assert.rejects(
      Keyset.create({ keks: { cache: 'local:backup', audit: 'local:', backup: 'local:' }, env }),
      RangeError,
    );
    const shared = await Keyset.create({
      keks: { cache: 'local:', audit: 'local:cache' },
      env,
      allowSharedKek: true,
    });
    const path = join(env.PHICACHE_HOME, 'shared.json');
    await shared.writeTo(path);
    assert.equal((await Keyset.read(path)).id, shared.id);
    // The same file with the permission removed is refused when read.
    const denied = await edited(path, (json) => {
      json.allowSharedKek = false;
    });
    await assert.rejects(Keyset.read(denied), hasCode('ERR_KEYRING_CORRUPT'));
  });

  test('a secret moved to another slot, or copied from another keyset, does not unwrap', async () => {
    const { env, path } = await fixture();
    const swapped = await edited(path, (json) => {
      [json.audit.signingSeed, json.audit.streamRoot] = [json.audit.streamRoot, json.audit.signingSeed];
    });
    const opened = await Keyset.open(swapped, { env });
    await assert.rejects(openAuditKeys({ keyset: opened.audit }), hasCode('ERR_ENVELOPE_AUTH'));

    // Another keyset under the very same KEKs: its name secret is bound to its own keyset id.
    const second = await Keyset.create({ keks: { cache: 'local:', audit: 'local:' }, env });
    const grafted = await edited(path, (json) => {
      json.cache.nameSecret = (second.toJSON() as KeysetDoc).cache.nameSecret;
    });
    await assert.rejects(
      (await Keyset.open(grafted, { env })).cache.nameSecret(),
      hasCode('ERR_ENVELOPE_AUTH'),
    );
  });

  test('a swapped public key, an unknown format version or a bad URI in the file is refused when read', async () => {
    const { path } = await fixture();
    const other = await fixture();
    const swappedKey = await edited(path, (json) => {
      json.audit.publicKey = (other.keyset.toJSON() as KeysetDoc).audit.publicKey;
    });
    await assert.rejects(Keyset.read(swappedKey), hasCode('ERR_KEYRING_CORRUPT'));
    const future = await edited(path, (json) => {
      json.formatVersion = 2;
    });
    await assert.rejects(Keyset.read(future), (error: unknown) => {
      return hasCode('ERR_KEYRING_CORRUPT')(error) && /version 2/.test((error as Error).message);
    });
    const secretUri = await edited(path, (json) => {
      json.keks.cache = 'pkcs11:token=t;object=o?module-path=/lib.so&pin-value=zz9-1234';
    });
    await assert.rejects(Keyset.read(secretUri), (error: unknown) => {
      return hasCode('ERR_KEYRING_CORRUPT')(error) && !(error as Error).message.includes('zz9-1234');
    });
    await writeFile(`${path}.not-json`, '{');
    await assert.rejects(Keyset.read(`${path}.not-json`), hasCode('ERR_KEYRING_CORRUPT'));
  });

  test('an existing file is never overwritten', async () => {
    const { path, keyset } = await fixture();
    const before = await readFile(path, 'utf8');
    await assert.rejects(keyset.writeTo(path), hasCode('ERR_CLI_USAGE'));
    assert.equal(await readFile(path, 'utf8'), before);
  });

  test('on local: KEKs the keyset, like the keyring, refuses NODE_ENV=production', async () => {
    const { env, path } = await fixture();
    await assert.rejects(
      Keyset.open(path, { env: { ...env, NODE_ENV: 'production' } }),
      hasCode('ERR_KEYRING_PRODUCTION'),
    );
  });
});
