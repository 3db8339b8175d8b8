import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PhiCacheError, type PhiCacheErrorCode } from '../errors.js';
import { DATA_KEY_BYTES, type EncryptionContext, type KekProvider } from '../keys/key-provider.js';

export interface KekProviderUnderTest {
  readonly provider: KekProvider;
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
 * key, a description naming the current version, and calls that honour an aborted signal.
 *
 *     describeKekProvider('my-kms', async () => ({ provider: await MyKms.open(...), close: ... }));
 */
export function describeKekProvider(name: string, make: () => Promise<KekProviderUnderTest>): void {
  describe(`KekProvider conformance: ${name}`, () => {
    const withProvider = (body: (provider: KekProvider) => Promise<void>) => async () => {
      const made = await make();
      try {
        await body(made.provider);
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
