import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { PhiCache, type PhiCacheOptions } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import type { CacheStore } from '../../src/store/cache-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { RecordingStore } from './recording-store.js';

export interface Fleet {
  /** One instance per entry, all on one store, one keyring (one name secret and KEK) and one clock. */
  readonly instances: readonly PhiCache[];
  readonly audits: readonly MemoryAuditSink[];
  /** The store the instances share, seen from outside: what someone with access to Redis sees and can write. */
  readonly store: CacheStore;
  readonly clock: { now: number };
  close(): Promise<void>;
}

/**
 * Instances of one service sharing a store, as in a fleet behind a load balancer. Without a store given, they
 * share a MemoryStore behind a recording wrapper (a store that is not this process's own embedded default).
 */
export async function makeFleet(
  count: number,
  options: { store?: CacheStore; start?: number } & Partial<PhiCacheOptions> = {},
): Promise<Fleet> {
  const clock = { now: options.start ?? 1_000_000_000_000 };
  const { store: given, start: _start, ...overrides } = options;
  const store = given ?? new RecordingStore(new MemoryStore({ clock: () => clock.now }));
  const home = await mkdtemp(join(tmpdir(), 'phicache-fleet-'));
  const policy = await loadDefaultPolicy();
  const instances: PhiCache[] = [];
  const audits: MemoryAuditSink[] = [];
  for (let i = 0; i < count; i++) {
    const audit = new MemoryAuditSink();
    audits.push(audit);
    instances.push(
      await PhiCache.create({
        service: `instance-${i}`,
        policy,
        keys: await LocalKeyring.open({ home, env: {} }),
        // The instances share the store; closing one must not close it under the others.
        store: unclosable(store),
        audit,
        clock: () => clock.now,
        ...overrides,
      }),
    );
  }
  return {
    instances,
    audits,
    store,
    clock,
    async close() {
      for (const instance of instances) await instance.close();
      await store.close();
    },
  };
}

function unclosable(store: CacheStore): CacheStore {
  return {
    name: store.name,
    get: (key) => store.get(key),
    ...(store.getEntry === undefined ? {} : { getEntry: (key: string) => store.getEntry!(key) }),
    ...(store.deleteIfSame === undefined
      ? {}
      : { deleteIfSame: (key: string, value: Buffer) => store.deleteIfSame!(key, value) }),
    ...(store.replaceIfSame === undefined
      ? {}
      : {
          replaceIfSame: (key: string, seen: Buffer, next: Buffer, ttlMs?: number) =>
            store.replaceIfSame!(key, seen, next, ttlMs),
        }),
    ...(store.scan === undefined ? {} : { scan: (prefix: string) => store.scan!(prefix) }),
    ...(store.keysByTag === undefined ? {} : { keysByTag: (tag: string) => store.keysByTag!(tag) }),
    set: (key, value, options) => store.set(key, value, options),
    add: (key, value, options) => store.add(key, value, options),
    delete: (key) => store.delete(key),
    deleteByTag: (tag) => store.deleteByTag(tag),
    ttl: (key) => store.ttl(key),
    close: async () => undefined,
  };
}
