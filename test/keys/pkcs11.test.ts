import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError, type PhiCacheErrorCode } from '../../src/errors.js';
import type { EncryptionContext } from '../../src/keys/key-provider.js';
import { createPkcs11Kek, openPkcs11KekProvider } from '../../src/keys/providers/pkcs11.js';
import {
  assertKekStaysInToken,
  SOFTHSM_MODULE,
  type SoftHsm,
  type SoftHsmToken,
  startSoftHsm,
  withAdminSession,
} from '../harness/softhsm.js';

const CONTEXT: EncryptionContext = {
  'phicache:tenant': 't-1',
  'phicache:class': 'encrypted-phi',
  'phicache:epoch': '7',
  'phicache:dek': 'aa',
};

function rejectsWith(code: PhiCacheErrorCode, secret?: string) {
  return (error: unknown) => {
    assert.ok(error instanceof PhiCacheError, `expected a PhiCacheError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (secret !== undefined) assert.equal(`${error.message} ${error.hint}`.includes(secret), false);
    return true;
  };
}

let hsm: SoftHsm;
let main: SoftHsmToken;
let rotating: SoftHsmToken;
let guarded: SoftHsmToken;
let versioned: SoftHsmToken;

before(async () => {
  hsm = await startSoftHsm();
  // Tokens are made before any provider initializes the library, which lists slots at C_Initialize.
  main = await hsm.createToken('phicache-main');
  rotating = await hsm.createToken('phicache-rotating');
  guarded = await hsm.createToken('phicache-guarded');
  versioned = await hsm.createToken('phicache-versioned');
  await createPkcs11Kek(main.uri('phicache-cache'), { env: main.env });
  await createPkcs11Kek(rotating.uri('phicache-cache'), { env: rotating.env });
  await createPkcs11Kek(guarded.uri('phicache-cache'), { env: guarded.env });
  await createPkcs11Kek(versioned.uri('phicache-cache'), { env: versioned.env });
});
after(() => hsm.stop());

const open = (token: SoftHsmToken, object = 'phicache-cache', env: Record<string, string> = token.env) =>
  openPkcs11KekProvider(token.uri(object), { domain: 'cache', env });

describe('PKCS#11 provider on SoftHSM2: faults', () => {
  test('a wrong PIN is ERR_KEY_ACCESS_DENIED, and the message holds no PIN', async () => {
    const wrong = 'not-the-pin-0000';
    await assert.rejects(
      open(guarded, 'phicache-cache', { PHICACHE_TEST_HSM_PIN: wrong }),
      rejectsWith('ERR_KEY_ACCESS_DENIED', wrong),
    );
  });

  test('a PIN variable that is not set is ERR_KEY_ACCESS_DENIED naming the variable', async () => {
    await assert.rejects(open(guarded, 'phicache-cache', {}), (error: unknown) => {
      rejectsWith('ERR_KEY_ACCESS_DENIED')(error);
      assert.match((error as Error).message, /PHICACHE_TEST_HSM_PIN/);
      return true;
    });
  });

  test('the PIN can come from a file (pin-source=file:), trailing newline ignored', async () => {
    const pinFile = join(hsm.dir, 'pin');
    await writeFile(pinFile, `${main.pin}\n`, { mode: 0o400 });
    const uri = main.uri('phicache-cache').replace(/pin-source=[^&]*/, `pin-source=file:${pinFile}`);
    const provider = await openPkcs11KekProvider(uri, { domain: 'cache', env: {} });
    try {
      const key = await provider.generateDataKey(CONTEXT);
      assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
    } finally {
      await provider.close();
    }
  });

  test('a PIN in the URI itself is refused, without echoing it', () => {
    const uri = `pkcs11:token=x;object=y?module-path=${SOFTHSM_MODULE}&pin-value=123456`;
    return assert.rejects(openPkcs11KekProvider(uri, { domain: 'cache' }), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.equal(error.message.includes('123456'), false);
      return true;
    });
  });

  test('a missing KEK object is ERR_KEY_NOT_FOUND', () =>
    assert.rejects(open(main, 'no-such-kek'), rejectsWith('ERR_KEY_NOT_FOUND')));

  test('a missing token is ERR_KEY_NOT_FOUND', () =>
    assert.rejects(
      openPkcs11KekProvider(main.uri('phicache-cache').replace('token=phicache-main', 'token=absent'), {
        domain: 'cache',
        env: main.env,
      }),
      rejectsWith('ERR_KEY_NOT_FOUND'),
    ));

  test('a module path that does not exist is ERR_KEY_SERVICE_UNAVAILABLE with a hint', () =>
    assert.rejects(
      openPkcs11KekProvider(main.uri('phicache-cache').replace(SOFTHSM_MODULE, '/nonexistent/libpkcs11.so'), {
        domain: 'cache',
        env: main.env,
      }),
      (error: unknown) => {
        rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE')(error);
        assert.match((error as PhiCacheError).hint, /module-path/);
        return true;
      },
    ));

  test('every damaged byte of a wrapped key is ERR_ENVELOPE_AUTH, and the provider keeps working', async () => {
    const provider = await open(main);
    try {
      const key = await provider.generateDataKey(CONTEXT);
      assert.equal(key.wrapped.length, 60);
      // The nonce, the ciphertext and the tag: each position is authenticated.
      for (const at of [0, 11, 12, 30, 43, 44, 59]) {
        const damaged = Buffer.from(key.wrapped);
        damaged[at]! ^= 0x80;
        await assert.rejects(
          provider.unwrapDataKey({ kid: key.kid, wrapped: damaged }, CONTEXT),
          rejectsWith('ERR_ENVELOPE_AUTH'),
        );
      }
      assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
    } finally {
      await provider.close();
    }
  });

  test('a key wrapped for one domain does not open in another domain on the same KEK', async () => {
    const cache = await open(main);
    const backup = await openPkcs11KekProvider(main.uri('phicache-cache'), {
      domain: 'backup',
      env: main.env,
    });
    try {
      const key = await cache.generateDataKey(CONTEXT);
      await assert.rejects(backup.unwrapDataKey(key, CONTEXT), rejectsWith('ERR_ENVELOPE_AUTH'));
    } finally {
      await cache.close();
      await backup.close();
    }
  });

  test('a kid of another token or object is ERR_KEY_NOT_FOUND', async () => {
    const provider = await open(main);
    try {
      const key = await provider.generateDataKey(CONTEXT);
      for (const kid of [key.kid.replace('phicache-main', 'other'), key.kid.replace('/v1', '/v9')]) {
        await assert.rejects(
          provider.unwrapDataKey({ kid, wrapped: key.wrapped }, CONTEXT),
          rejectsWith('ERR_KEY_NOT_FOUND'),
        );
      }
    } finally {
      await provider.close();
    }
  });

  test('the KEK cannot be read out of the token: CKA_VALUE is refused, it is sensitive and never extractable', () =>
    assertKekStaysInToken(main, 'phicache-cache/v1'));

  test('many concurrent calls on one session all succeed (operations are serialized)', async () => {
    const provider = await open(main);
    try {
      const keys = await Promise.all(Array.from({ length: 40 }, () => provider.generateDataKey(CONTEXT)));
      const opened = await Promise.all(keys.map((key) => provider.unwrapDataKey(key, CONTEXT)));
      assert.deepEqual(
        opened,
        keys.map((key) => key.plaintext),
      );
    } finally {
      await provider.close();
    }
  });

  test('a call aborted while waiting its turn never runs, and the calls after it still do', async () => {
    const provider = await open(main);
    try {
      const controller = new AbortController();
      const first = provider.generateDataKey(CONTEXT);
      const abandoned = provider.generateDataKey(CONTEXT, { signal: controller.signal });
      controller.abort(new Error('deadline'));
      await assert.rejects(abandoned, rejectsWith('ERR_KEY_SERVICE_UNAVAILABLE'));
      const key = await first;
      assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
    } finally {
      await provider.close();
    }
  });
});

describe('PKCS#11 provider on SoftHSM2: KEK versions', () => {
  test('publish a pending version, promote it, rewrap onto it, then disable the old one', async () => {
    const uri = rotating.uri('phicache-cache');
    const v1 = await open(rotating);
    const old = await v1.generateDataKey(CONTEXT);
    await v1.close();

    const v2kid = await createPkcs11Kek(uri, { env: rotating.env, pending: true });
    let provider = await open(rotating);
    try {
      assert.equal(provider.currentKid(), old.kid, 'a pending version does not wrap yet');
      assert.deepEqual(
        (await provider.describeKek()).versions.map((v) => [v.kid, v.state]),
        [
          [old.kid, 'active'],
          [v2kid, 'pending'],
        ],
      );
    } finally {
      await provider.close();
    }

    // Promotion is an HSM administrator's act: the token attribute CKA_ENCRYPT on v2.
    await withAdminSession(rotating, ({ binding, pkcs11, session, find }) =>
      pkcs11.C_SetAttributeValue(session, find('phicache-cache/v2'), [
        { type: binding.CKA_ENCRYPT, value: true },
      ]),
    );
    provider = await open(rotating);
    try {
      assert.equal(provider.currentKid(), v2kid);
      assert.deepEqual(
        (await provider.describeKek()).versions.map((v) => v.state),
        ['decrypt-only', 'active'],
      );
      assert.deepEqual(
        await provider.unwrapDataKey(old, CONTEXT),
        old.plaintext,
        'readers accept the old version',
      );
      const moved = await provider.rewrapDataKey(old, CONTEXT);
      assert.equal(moved.kid, v2kid);
      assert.deepEqual(await provider.unwrapDataKey(moved, CONTEXT), old.plaintext);

      await withAdminSession(rotating, ({ binding, pkcs11, session, find }) =>
        pkcs11.C_SetAttributeValue(session, find('phicache-cache/v1'), [
          { type: binding.CKA_DECRYPT, value: false },
        ]),
      );
      await assert.rejects(provider.unwrapDataKey(old, CONTEXT), rejectsWith('ERR_KEY_DISABLED'));
      assert.deepEqual(
        (await provider.describeKek()).versions.map((v) => v.state),
        ['disabled', 'active'],
      );
      assert.deepEqual(await provider.unwrapDataKey(moved, CONTEXT), old.plaintext);
    } finally {
      await provider.close();
    }
  });
});

describe('PKCS#11 provider on SoftHSM2: createVersion and wraps that name a version', () => {
  /** The token's own record of a version: may it encrypt, may it decrypt. */
  const permissions = (label: string) =>
    withAdminSession(versioned, ({ binding, pkcs11, session, find }) =>
      pkcs11
        .C_GetAttributeValue(session, find(label), [
          { type: binding.CKA_ENCRYPT },
          { type: binding.CKA_DECRYPT },
        ])
        .map((attribute) => (Buffer.isBuffer(attribute.value) ? attribute.value[0] === 1 : attribute.value)),
    );

  test('a made version is a pending key object that stays in the token; naming it in a wrap promotes it', async () => {
    const provider = await open(versioned);
    try {
      const old = provider.currentKid();
      const kid = await provider.createVersion();
      assert.match(kid, /object=phicache-cache\/v2$/);
      await assertKekStaysInToken(versioned, 'phicache-cache/v2');
      assert.deepEqual(await permissions('phicache-cache/v2'), [false, true], 'decrypt only: pending');

      // An instance started now, not only one that was running, still wraps under the old version.
      const later = await open(versioned);
      try {
        assert.equal(later.currentKid(), old);
        assert.equal((await later.generateDataKey(CONTEXT)).kid, old);
      } finally {
        await later.close();
      }

      const key = await provider.generateDataKey(CONTEXT, { kid });
      assert.equal(key.kid, kid);
      assert.deepEqual(
        await permissions('phicache-cache/v2'),
        [true, true],
        'the token records the promotion',
      );
      const after = await open(versioned);
      try {
        assert.equal(after.currentKid(), kid, 'instances opened after the promotion wrap under it');
        assert.deepEqual(await after.unwrapDataKey(key, CONTEXT), key.plaintext);
      } finally {
        await after.close();
      }
    } finally {
      await provider.close();
    }
  });

  test('a wrap naming a version the administrator restricted is refused, and the restriction stays', async () => {
    const provider = await open(versioned);
    try {
      const kid = await provider.createVersion();
      const label = decodeURIComponent(kid.slice(kid.indexOf('object=') + 'object='.length));
      // v1 loses CKA_ENCRYPT (decrypt-only for good); the new version loses CKA_DECRYPT (disabled).
      await withAdminSession(versioned, ({ binding, pkcs11, session, find }) => {
        pkcs11.C_SetAttributeValue(session, find('phicache-cache/v1'), [
          { type: binding.CKA_ENCRYPT, value: false },
        ]);
        pkcs11.C_SetAttributeValue(session, find(label), [{ type: binding.CKA_DECRYPT, value: false }]);
      });
      await provider.describeKek();
      const v1 = kid.replace(/\/v[0-9]+$/, '/v1');
      await assert.rejects(provider.generateDataKey(CONTEXT, { kid: v1 }), rejectsWith('ERR_KEY_DISABLED'));
      assert.deepEqual(await permissions('phicache-cache/v1'), [false, true]);
      await assert.rejects(provider.generateDataKey(CONTEXT, { kid }), rejectsWith('ERR_KEY_DISABLED'));
      assert.deepEqual(await permissions(label), [false, false]);
    } finally {
      await provider.close();
    }
  });
});

// Opt-in: a real HSM. Set PHICACHE_TEST_PKCS11_URI to a KEK's pkcs11: URI (its pin-source names where the PIN is)
// and the test wraps and unwraps one data key under it. Nothing is created or changed on that HSM.
describe('PKCS#11 provider on a real HSM (opt-in)', () => {
  const uri = process.env.PHICACHE_TEST_PKCS11_URI;
  test('wraps and unwraps a data key under the KEK named by PHICACHE_TEST_PKCS11_URI', {
    skip: !uri && 'set PHICACHE_TEST_PKCS11_URI (and the PIN source it names) to run against a real HSM',
  }, async () => {
    const provider = await openPkcs11KekProvider(uri ?? '', { domain: 'cache' });
    try {
      const key = await provider.generateDataKey(CONTEXT);
      assert.deepEqual(await provider.unwrapDataKey(key, CONTEXT), key.plaintext);
      assert.equal((await provider.describeKek()).current, provider.currentKid());
    } finally {
      await provider.close();
    }
  });
});
