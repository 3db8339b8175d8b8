import type { AuditSink } from './audit/audit-sink.js';
import type { DekCacheOptions } from './keys/dek-cache.js';
import type { KeyProvider } from './keys/key-provider.js';
import { integerOption } from './options.js';
import { Policy } from './policy/policy.js';
import type { CacheStore } from './store/cache-store.js';
import { MemoryStore } from './store/memory/memory-store.js';

export interface PhiCacheOptions {
  readonly policy: Policy;
  readonly keys: KeyProvider;
  readonly audit: AuditSink;
  /** Default: an embedded MemoryStore. */
  readonly store?: CacheStore;
  /** Recorded as the actor's service in every audit event. */
  readonly service: string;
  readonly dekCache?: DekCacheOptions;
  /** How long new writes use one data key before moving to a new one, in ms. Default 1 hour; at least 1,000. */
  readonly dekEpochMs?: number;
  /** Deadline of one key service call (generate, unwrap), in ms. Default 5,000; 1 to 120,000. */
  readonly keyServiceTimeoutMs?: number;
  /**
   * Deadline of a getOrSet factory, in ms: past it every caller waiting for the entry gets ERR_FACTORY_TIMEOUT, the
   * entry is free for the next caller, and whatever the factory returns later is not cached. Default 10,000;
   * 1 to 600,000.
   */
  readonly factoryTimeoutMs?: number;
  /**
   * How long this instance trusts what it last read of other instances' purges, in ms: a purge, delete or tenant
   * shred made on another instance sharing the store is obeyed here at most this long after it. Default 1,000;
   * 1 to 60,000. Purges made here are obeyed here at once.
   */
  readonly purgeRefreshMs?: number;
  /**
   * How often this instance reads the fleet's key states again, in ms: a published, promoted or retired KEK version
   * reaches it at most this long (plus one store round trip) after the change. Rotation waits twice this plus a
   * second between publishing and promoting. Default 1,000; 1 to 60,000. All instances should use one value.
   */
  readonly keyStateRefreshMs?: number;
  /** Milliseconds since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
}

export interface ResolvedCacheOptions {
  readonly policy: Policy;
  readonly keys: KeyProvider;
  readonly audit: AuditSink;
  readonly store: CacheStore;
  readonly service: string;
  readonly dekCache: DekCacheOptions | undefined;
  readonly dekEpochMs: number;
  readonly keyServiceTimeoutMs: number | undefined;
  readonly factoryTimeoutMs: number;
  readonly purgeRefreshMs: number;
  readonly keyStateRefreshMs: number;
  readonly clock: () => number;
}

/** Checks PhiCache's options once, at construction, and fills in the defaults. */
export function resolveCacheOptions(options: PhiCacheOptions): ResolvedCacheOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('PhiCache.create needs options');
  if (typeof options.service !== 'string' || options.service.length === 0) {
    throw new TypeError('PhiCache needs `service`, the name recorded as the actor in audit events');
  }
  if (!(options.policy instanceof Policy)) throw new TypeError('PhiCache needs `policy`, a loaded Policy');
  if (typeof options.keys?.generateDataKey !== 'function') {
    throw new TypeError('PhiCache needs `keys`, a KeyProvider');
  }
  if (typeof options.audit?.write !== 'function') throw new TypeError('PhiCache needs `audit`, an AuditSink');
  if (options.store !== undefined && typeof options.store.get !== 'function') {
    throw new TypeError('`store` must be a CacheStore');
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new TypeError('`clock` must be a function returning milliseconds');
  }
  const dekEpochMs = options.dekEpochMs ?? 3_600_000;
  if (!Number.isSafeInteger(dekEpochMs) || dekEpochMs < 1000) {
    throw new RangeError('dekEpochMs must be an integer of at least 1000 ms');
  }
  return Object.freeze({
    policy: options.policy,
    keys: options.keys,
    audit: options.audit,
    store: options.store ?? new MemoryStore(),
    service: options.service,
    dekCache: options.dekCache,
    dekEpochMs,
    keyServiceTimeoutMs: options.keyServiceTimeoutMs,
    factoryTimeoutMs: integerOption(
      'PhiCache',
      'factoryTimeoutMs',
      options.factoryTimeoutMs ?? 10_000,
      1,
      600_000,
    ),
    purgeRefreshMs: integerOption('PhiCache', 'purgeRefreshMs', options.purgeRefreshMs ?? 1000, 1, 60_000),
    keyStateRefreshMs: integerOption(
      'PhiCache',
      'keyStateRefreshMs',
      options.keyStateRefreshMs ?? 1000,
      1,
      60_000,
    ),
    clock: options.clock ?? Date.now,
  });
}
