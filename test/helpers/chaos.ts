import type { AuditEvent } from '../../src/audit/audit-event.js';
import type { AuditSink } from '../../src/audit/audit-sink.js';
import { PhiCacheError } from '../../src/errors.js';
import type {
  EncryptionContext,
  KeyProvider,
  WrapOptions,
  WrappedDataKey,
} from '../../src/keys/key-provider.js';
import type { CacheStore, StoreWriteOptions } from '../../src/store/cache-store.js';

/** A switch that chaos wrappers consult on every call: flip `down` to make the wrapped component fail. */
export interface Fault {
  down: boolean;
  /** Calls never settle (a network partition without resets), instead of failing. */
  hang?: boolean;
}

const outage = () => new Error('injected outage');

/** A real key provider that fails on demand (the KMS is unreachable). */
export function flakyKeyProvider(inner: KeyProvider, fault: Fault): KeyProvider {
  const up = async () => {
    if (fault.hang) await new Promise(() => undefined);
    if (fault.down) throw outage();
  };
  return {
    name: inner.name,
    currentKid: () => inner.currentKid(),
    generateDataKey: (context: EncryptionContext, options?: WrapOptions) =>
      up().then(() => inner.generateDataKey(context, options)),
    unwrapDataKey: (key: WrappedDataKey, context: EncryptionContext) =>
      up().then(() => inner.unwrapDataKey(key, context)),
    rewrapDataKey: (key: WrappedDataKey, context: EncryptionContext, options?: WrapOptions) =>
      up().then(() => inner.rewrapDataKey(key, context, options)),
    describeKek: () => up().then(() => inner.describeKek()),
    ...(inner.createVersion === undefined
      ? {}
      : { createVersion: () => up().then(() => inner.createVersion!()) }),
    nameSecret: () => up().then(() => inner.nameSecret()),
  };
}

/** A real store that fails on demand (Redis is down), with the typed error a store adapter throws. */
export function flakyStore(inner: CacheStore, fault: Fault): CacheStore {
  const guard = async <T>(call: () => Promise<T>): Promise<T> => {
    if (fault.down)
      throw new PhiCacheError('ERR_STORE_UNAVAILABLE', 'injected store outage', { cause: outage() });
    return call();
  };
  return {
    name: inner.name,
    get: (key: string) => guard(() => inner.get(key)),
    set: (key: string, value: Buffer, options: StoreWriteOptions) =>
      guard(() => inner.set(key, value, options)),
    add: (key: string, value: Buffer, options: StoreWriteOptions) =>
      guard(() => inner.add(key, value, options)),
    delete: (key: string) => guard(() => inner.delete(key)),
    deleteByTag: (tag: string) => guard(() => inner.deleteByTag(tag)),
    ttl: (key: string) => guard(() => inner.ttl(key)),
    ...(inner.deleteIfSame === undefined
      ? {}
      : { deleteIfSame: (key: string, value: Buffer) => guard(() => inner.deleteIfSame!(key, value)) }),
    ...(inner.replaceIfSame === undefined
      ? {}
      : {
          replaceIfSame: (key: string, seen: Buffer, next: Buffer, ttlMs?: number) =>
            guard(() => inner.replaceIfSame!(key, seen, next, ttlMs)),
        }),
    ...(inner.scan === undefined ? {} : { scan: (prefix: string) => inner.scan!(prefix) }),
    ...(inner.keysByTag === undefined ? {} : { keysByTag: (tag: string) => inner.keysByTag!(tag) }),
    close: () => inner.close(),
  };
}

/** An audit sink that records like a memory sink and fails on demand. */
export class FlakyAuditSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  readonly #fault: Fault;

  constructor(fault: Fault) {
    this.#fault = fault;
  }

  async write(event: AuditEvent): Promise<void> {
    if (this.#fault.down) throw outage();
    this.events.push(event);
  }

  async close(): Promise<void> {}
}
