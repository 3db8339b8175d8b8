import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { PhiCacheError, type PhiCacheErrorCode } from '../errors.js';
import { DATA_KEY_BYTES, type EncryptionContext, type KekProvider } from '../keys/key-provider.js';

export interface KekProviderUnderTest {
  readonly provider: KekProvider;
  /**
   * Opens another instance on the same KEK, as another process of the fleet would (same key, same service). The
   * suite opens it before making a version and checks that it unwraps under that version all the same: a version
   * is published to every instance before it is promoted (DESIGN.md §4). The suite closes it. Needed to check a
   * provider that has `createVersion`; without it that check is skipped, and says so.
   */
  openPeer?(): Promise<KekProvider>;
  /** Frees what the factory made (servers, sessions, temporary files). */
  close?(): Promise<void>;
}

const CONTEXT: EncryptionContext = {
  'phicache:tenant': 't-1',
  'phicache:class': 'encrypted-phi',
  'phicache:epoch': '482000',
  'phicache:dek': '00112233445566778899aabbccddeeff',
};

function rejectsWith(code: PhiCacheErrorCode) {
  return (error: unknown) => {
    assert.ok(error instanceof PhiCacheError, `expected a PhiCacheError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  };
}

/**
 * The conformance suite every KEK provider passes, phicache's own and third parties' alike: data keys of the right
 * size under the current KEK version, bound to their context, damage told apart from an outage, rewrap keeping the
 * key, a description naming the current version, calls that honour an aborted signal, a wrap naming a version that
 * does not exist refused as ERR_KEY_NOT_FOUND and, for a provider with `createVersion`, versions that wrap nothing
 * until a wrap names them and that every instance can unwrap under.
 *
 *     describeKekProvider('my-kms', async () => ({ provider: await MyKms.open(...), close: ... }));
 */
export interface KekProviderSuiteOptions {
  /**
   * Whether the provider makes versions that wait to be promoted (`createVersion`). Default true: the version
   * cases run and a provider without `createVersion` fails them. False (AWS KMS): they are not registered, and one
   * case checks instead that it has none.
   */
  readonly createsVersions?: boolean;
}

export function describeKekProvider(
  name: string,
  make: () => Promise<KekProviderUnderTest>,
  options: KekProviderSuiteOptions = {},
): void {
  const createsVersions = options.createsVersions !== false;
  /** The cases about `createVersion`, registered only for a provider that makes versions. */
  const versionTest = (title: string, fn: (t: TestContext) => Promise<void>) => {
    if (createsVersions) test(title, fn);
  };
  describe(`KekProvider conformance: ${name}`, () => {
    const withProvider = (body: (provider: KekProvider) => Promise<void>) => async () => {
      const made = await make();
      try {
        await body(made.provider);
      } finally {
        await made.close?.();
      }
    };
    /** For the cases about `createVersion`: a provider said to make versions must have it. */
    const withVersions =
      (
        body: (
          provider: KekProvider,
          createVersion: () => Promise<string>,
          made: KekProviderUnderTest,
          t: TestContext,
        ) => Promise<void>,
      ) =>
      async (t: TestContext) => {
        const made = await make();
        try {
          const { provider } = made;
          assert.ok(provider.createVersion !== undefined, `${name} has no createVersion`);
          await body(provider, () => provider.createVersion!(), made, t);
        } finally {
          await made.close?.();
        }
      };

    test(
      'generates a fresh 32-byte data key under the current KEK version, and unwraps it with the same context',
      withProvider(async (provider) => {
        const first = await provider.generateDataKey(CONTEXT);
        const second = await provider.generateDataKey(CONTEXT);
        assert.equal(first.plaintext.length, DATA_KEY_BYTES);
        assert.ok(first.wrapped.length > 0);
        assert.equal(first.kid, provider.currentKid());
        assert.notDeepEqual(first.plaintext, second.plaintext, 'two keys are not the same key');
        assert.equal(first.wrapped.includes(first.plaintext), false, 'the wrapped key does not hold the key');
        assert.deepEqual(await provider.unwrapDataKey(first, CONTEXT), first.plaintext);
      }),
    );

    test(
      'a wrapped key presented with another context does not unwrap: ERR_ENVELOPE_AUTH or ERR_KEY_ACCESS_DENIED',
      withProvider(async (provider) => {
        const key = await provider.generateDataKey(CONTEXT);
        const others: EncryptionContext[] = [
          { ...CONTEXT, 'phicache:tenant': 't-2' },
          { ...CONTEXT, 'phicache:extra': 'x' },
          Object.fromEntries(Object.entries(CONTEXT).slice(1)),
        ];
        for (const other of others) {
          await assert.rejects(provider.unwrapDataKey(key, other), (error: unknown) => {
            assert.ok(error instanceof PhiCacheError);
            assert.ok(['ERR_ENVELOPE_AUTH', 'ERR_KEY_ACCESS_DENIED'].includes(error.code), error.code);
            return true;
          });
        }
      }),
    );

    test(
      'a damaged wrapped key is ERR_ENVELOPE_AUTH (one bad record), never an outage',
      withProvider(async (provider) => {
        const key = await provider.generateDataKey(CONTEXT);
        const damaged = Buffer.from(key.wrapped);
        damaged[damaged.length - 1]! ^= 0x01;
        await assert.rejects(
          provider.unwrapDataKey({ kid: key.kid, wrapped: damaged }, CONTEXT),
          rejectsWith('ERR_ENVELOPE_AUTH'),
        );
        await assert.rejects(
          provider.unwrapDataKey({ kid: key.kid, wrapped: key.wrapped.subarray(0, 8) }, CONTEXT),
          rejectsWith('ERR_ENVELOPE_AUTH'),
        );
      }),
    );

    test(
      'rewrap keeps the data key and its context, under the current KEK version',
      withProvider(async (provider) => {
        const key = await provider.generateDataKey(CONTEXT);
        const rewrapped = await provider.rewrapDataKey(key, CONTEXT);
        assert.equal(rewrapped.kid, provider.currentKid());
        assert.deepEqual(await provider.unwrapDataKey(rewrapped, CONTEXT), key.plaintext);
        await assert.rejects(
          provider.rewrapDataKey(key, { ...CONTEXT, 'phicache:tenant': 't-2' }),
          (error: unknown) => {
            assert.ok(error instanceof PhiCacheError);
            assert.ok(['ERR_ENVELOPE_AUTH', 'ERR_KEY_ACCESS_DENIED'].includes(error.code), error.code);
            return true;
          },
        );
      }),
    );

    test(
      'describes its KEK: the current version is listed, and active',
      withProvider(async (provider) => {
        const description = await provider.describeKek();
        assert.equal(description.current, provider.currentKid());
        const current = description.versions.find((version) => version.kid === description.current);
        assert.ok(current, 'the current version is among the versions');
        assert.equal(current.state, 'active');
        assert.match(description.uri, /^(aws-kms|gcp-kms|hcvault|pkcs11|local):/);
      }),
    );

    test(
      'a wrap or rewrap naming a KEK version that does not exist is ERR_KEY_NOT_FOUND',
      withProvider(async (provider) => {
        const key = await provider.generateDataKey(CONTEXT);
        // A version far past the newest (for kids that end in a version number) and a kid of no version at all.
        for (const kid of [`${provider.currentKid()}0000`, `${provider.currentKid()}/unknown`]) {
          await assert.rejects(provider.generateDataKey(CONTEXT, { kid }), rejectsWith('ERR_KEY_NOT_FOUND'));
          await assert.rejects(
            provider.rewrapDataKey(key, CONTEXT, { kid }),
            rejectsWith('ERR_KEY_NOT_FOUND'),
          );
        }
        const current = await provider.generateDataKey(CONTEXT, { kid: provider.currentKid() });
        assert.equal(current.kid, provider.currentKid(), 'naming the current version is always allowed');
        assert.deepEqual(await provider.unwrapDataKey(current, CONTEXT), current.plaintext);
      }),
    );

    if (!createsVersions) {
      test(
        'makes no version of its own: no createVersion',
        withProvider(async (provider) => {
          assert.equal(provider.createVersion, undefined);
        }),
      );
    }

    versionTest(
      'a version made by createVersion wraps nothing until a wrap names it',
      withVersions(async (provider, createVersion) => {
        const before = provider.currentKid();
        const made = await createVersion();
        assert.notEqual(made, before);
        assert.equal(provider.currentKid(), before, 'the current version does not move');
        const key = await provider.generateDataKey(CONTEXT);
        assert.equal(key.kid, before, 'a wrap that names no version is under the current one');
        const rewrapped = await provider.rewrapDataKey(key, CONTEXT);
        assert.equal(rewrapped.kid, before);
        const description = await provider.describeKek();
        assert.equal(description.current, before);
        const listed = description.versions.find((version) => version.kid === made);
        assert.ok(listed, 'the new version is listed');
        assert.notEqual(listed.state, 'active');
        assert.notEqual(await createVersion(), made, 'each call makes another version');
      }),
    );

    versionTest(
      'a data key wrapped under a named version unwraps, and rewrap moves keys between named versions',
      withVersions(async (provider, createVersion) => {
        const old = provider.currentKid();
        const key = await provider.generateDataKey(CONTEXT);
        const made = await createVersion();
        const fresh = await provider.generateDataKey(CONTEXT, { kid: made });
        assert.equal(fresh.kid, made);
        assert.deepEqual(await provider.unwrapDataKey(fresh, CONTEXT), fresh.plaintext);
        await assert.rejects(
          provider.unwrapDataKey(fresh, { ...CONTEXT, 'phicache:tenant': 't-2' }),
          (error) => {
            assert.ok(error instanceof PhiCacheError);
            assert.ok(['ERR_ENVELOPE_AUTH', 'ERR_KEY_ACCESS_DENIED'].includes(error.code), error.code);
            return true;
          },
        );

        const moved = await provider.rewrapDataKey(key, CONTEXT, { kid: made });
        assert.equal(moved.kid, made);
        assert.deepEqual(await provider.unwrapDataKey(moved, CONTEXT), key.plaintext);
        const back = await provider.rewrapDataKey(moved, CONTEXT, { kid: old });
        assert.equal(back.kid, old, 'a rewrap may name an older version too');
        assert.deepEqual(await provider.unwrapDataKey(back, CONTEXT), key.plaintext);
        assert.deepEqual(
          await provider.unwrapDataKey(key, CONTEXT),
          key.plaintext,
          'the old wrap still opens',
        );
      }),
    );

    versionTest(
      'an instance opened before a version was made unwraps under it, and wraps under it when asked',
      withVersions(async (provider, createVersion, made) => {
        assert.ok(made.openPeer !== undefined, `the factory of ${name} has no openPeer`);
        const peer = await made.openPeer();
        try {
          const kid = await createVersion();
          const key = await provider.generateDataKey(CONTEXT, { kid });
          assert.equal(key.kid, kid);
          assert.deepEqual(await peer.unwrapDataKey(key, CONTEXT), key.plaintext);
          const byPeer = await peer.generateDataKey(CONTEXT, { kid });
          assert.equal(byPeer.kid, kid);
          assert.deepEqual(await provider.unwrapDataKey(byPeer, CONTEXT), byPeer.plaintext);
        } finally {
          await peer.close?.();
        }
      }),
    );

    test(
      'a call whose signal is already aborted does not hand out a key',
      withProvider(async (provider) => {
        const controller = new AbortController();
        controller.abort(new Error('deadline'));
        let key: unknown;
        try {
          key = await provider.generateDataKey(CONTEXT, { signal: controller.signal });
        } catch {
          key = undefined;
        }
        assert.equal(key, undefined);
      }),
    );
  });
}
