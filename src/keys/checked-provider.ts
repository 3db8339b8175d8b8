import { PhiCacheError } from '../errors.js';
import {
  DATA_KEY_BYTES,
  type EncryptionContext,
  type GeneratedDataKey,
  type KekProvider,
  type KeyCallOptions,
  type KeyProvider,
  type WrapOptions,
  type WrappedDataKey,
} from './key-provider.js';

/** How long one key service call may take. KMS calls are rare (a DEK per tenant, class and hour), so a timer each is cheap. */
export const DEFAULT_KEY_SERVICE_TIMEOUT_MS = 5000;

/** The codes an adapter may throw; anything else is the service failing and becomes ERR_KEY_SERVICE_UNAVAILABLE. */
const PROVIDER_CODES = new Set([
  'ERR_KEY_SERVICE_UNAVAILABLE',
  'ERR_KEY_ACCESS_DENIED',
  'ERR_ENVELOPE_AUTH',
  'ERR_KEY_DISABLED',
  'ERR_KEY_NOT_FOUND',
  'ERR_KEY_STATE',
]);

/**
 * Wraps any KeyProvider so that its invariants are checked in one place, whatever the adapter: every call has a
 * deadline that aborts it, data keys are exactly 32 bytes, key ids are present, a key that arrives after its
 * deadline is zeroed rather than left in memory, and errors carry one of the port's codes.
 */
export function checkedKeyProvider(
  provider: KeyProvider,
  timeoutMs = DEFAULT_KEY_SERVICE_TIMEOUT_MS,
): KeyProvider {
  const kek = checkedKekProvider(provider, timeoutMs);
  const zero = (key: Buffer) => key.fill(0);
  return {
    ...kek,
    nameSecret: (options?: KeyCallOptions) =>
      withDeadline(provider.name, timeoutMs, (o) => provider.nameSecret(o), zero, options?.signal),
    ...(provider.nameSecretKid === undefined ? {} : { nameSecretKid: () => provider.nameSecretKid!() }),
  };
}

/** The same checks for a bare KEK adapter (no name secret): what the conformance suite and keysets wrap. */
export function checkedKekProvider(
  provider: KekProvider,
  timeoutMs = DEFAULT_KEY_SERVICE_TIMEOUT_MS,
): KekProvider {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 120_000) {
    throw new RangeError('keyServiceTimeoutMs must be an integer from 1 to 120000');
  }
  const call = <T>(
    run: (options: KeyCallOptions) => Promise<T>,
    late: (value: T) => void,
    options?: KeyCallOptions,
  ) => withDeadline(provider.name, timeoutMs, run, late, options?.signal);
  const zeroKey = (key: GeneratedDataKey) => key.plaintext.fill(0);
  const zero = (key: Buffer) => key.fill(0);
  const ignore = () => undefined;
  return {
    name: provider.name,
    currentKid: () => provider.currentKid(),
    async generateDataKey(context: EncryptionContext, options?: WrapOptions): Promise<GeneratedDataKey> {
      const key = await call((o) => provider.generateDataKey(context, withKid(o, options)), zeroKey, options);
      /* Postcondition: a 256-bit key, wrapped, under a named KEK (the one asked for, when one was). */
      if (
        key.plaintext.length !== DATA_KEY_BYTES ||
        key.wrapped.length === 0 ||
        key.kid.length === 0 ||
        (options?.kid !== undefined && key.kid !== options.kid)
      ) {
        key.plaintext.fill(0);
        throw badAnswer(provider.name);
      }
      return key;
    },
    async unwrapDataKey(
      key: WrappedDataKey,
      context: EncryptionContext,
      options?: KeyCallOptions,
    ): Promise<Buffer> {
      const plaintext = await call((o) => provider.unwrapDataKey(key, context, o), zero, options);
      if (plaintext.length !== DATA_KEY_BYTES) {
        plaintext.fill(0);
        throw badAnswer(provider.name);
      }
      return plaintext;
    },
    async rewrapDataKey(key: WrappedDataKey, context: EncryptionContext, options?: WrapOptions) {
      const rewrapped = await call(
        (o) => provider.rewrapDataKey(key, context, withKid(o, options)),
        ignore,
        options,
      );
      if (
        rewrapped.wrapped.length === 0 ||
        rewrapped.kid.length === 0 ||
        (options?.kid !== undefined && rewrapped.kid !== options.kid)
      ) {
        throw badAnswer(provider.name);
      }
      return rewrapped;
    },
    describeKek: (options?: KeyCallOptions) => call((o) => provider.describeKek(o), ignore, options),
    ...(provider.createVersion === undefined
      ? {}
      : {
          createVersion: (options?: KeyCallOptions) =>
            call((o) => provider.createVersion!(o), ignore, options),
        }),
    close: async () => provider.close?.(),
  };
}

/** The deadline's signal, with the KEK version the caller named. */
function withKid(call: KeyCallOptions, options: WrapOptions | undefined): WrapOptions {
  return options?.kid === undefined ? call : { ...call, kid: options.kid };
}

function badAnswer(name: string): PhiCacheError {
  return new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `key provider ${name} returned a bad data key`);
}

/**
 * Runs one provider call under a deadline. The adapter gets a signal that aborts at the deadline (or when the
 * caller's own signal aborts), so it can cancel its request; whatever it still returns afterwards goes to `late`,
 * which zeroes key material nobody will use.
 */
async function withDeadline<T>(
  name: string,
  timeoutMs: number,
  run: (options: KeyCallOptions) => Promise<T>,
  late: (value: T) => void,
  outer: AbortSignal | undefined,
): Promise<T> {
  const controller = new AbortController();
  const expired = () =>
    new PhiCacheError(
      'ERR_KEY_SERVICE_UNAVAILABLE',
      `key provider ${name} did not answer in ${timeoutMs} ms`,
    );
  let timer: NodeJS.Timeout | undefined;
  let onOuterAbort: (() => void) | undefined;
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = expired();
      controller.abort(error);
      reject(error);
    }, timeoutMs);
    if (outer !== undefined) {
      onOuterAbort = () => {
        controller.abort(outer.reason);
        reject(new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `key provider ${name} call was abandoned`));
      };
      if (outer.aborted) onOuterAbort();
      else outer.addEventListener('abort', onOuterAbort, { once: true });
    }
  });
  let running: Promise<T>;
  try {
    running = Promise.resolve(run({ signal: controller.signal }));
  } catch (error) {
    running = Promise.reject(error);
  }
  // A result that arrives after the deadline has no caller: zero it.
  running.then(
    (value) => {
      if (controller.signal.aborted) late(value);
    },
    () => undefined,
  );
  try {
    return await Promise.race([running, stopped]);
  } catch (error) {
    if (error instanceof PhiCacheError && PROVIDER_CODES.has(error.code)) throw error;
    throw new PhiCacheError('ERR_KEY_SERVICE_UNAVAILABLE', `key provider ${name} failed`, { cause: error });
  } finally {
    clearTimeout(timer);
    if (onOuterAbort !== undefined) outer?.removeEventListener('abort', onOuterAbort);
  }
}
