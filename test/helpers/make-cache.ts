import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PhiCache, type PhiCacheOptions } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { type Fault, FlakyAuditSink, flakyKeyProvider, flakyStore } from './chaos.js';
import { RecordingStore } from './recording-store.js';

export interface TestCache {
  readonly cache: PhiCache;
  readonly store: RecordingStore;
  readonly memory: MemoryStore;
  readonly audit: FlakyAuditSink;
  readonly faults: { readonly keys: Fault; readonly store: Fault; readonly audit: Fault };
  readonly clock: { now: number };
  /** The real keyring under the fault wrapper, for tests that must name records as the cache does. */
  readonly keyring: LocalKeyring;
}

/** A test clock at a fixed instant, so that no test depends on the day it runs; tests move it by hand. */
export function testClock(): { now: number } {
  return { now: Date.UTC(2026, 10, 23, 12, 0, 0) };
}

/**
 * A PhiCache on real components (the default policy, a local keyring in a temporary PHICACHE_HOME, the memory
 * store) with taps and fault switches around them, and one clock shared by the cache and its store. Pass the
 * clock when something built before the cache, such as an audit trail, must tell the same time.
 */
export async function makeCache(
  overrides: Partial<PhiCacheOptions> = {},
  clock: { now: number } = testClock(),
): Promise<TestCache> {
  const faults: TestCache['faults'] = {
    keys: { down: false },
    store: { down: false },
    audit: { down: false },
  };
  const memory = new MemoryStore({ clock: () => clock.now });
  const store = new RecordingStore(memory);
  const audit = new FlakyAuditSink(faults.audit);
  const home = await mkdtemp(join(tmpdir(), 'phicache-test-'));
  const keyring = await LocalKeyring.open({ home, env: {} });
  const cache = await PhiCache.create({
    service: 'test-suite',
    policy: await loadDefaultPolicy(),
    keys: flakyKeyProvider(keyring, faults.keys),
    store: flakyStore(store, faults.store),
    audit,
    clock: () => clock.now,
    ...overrides,
  });
  return { cache, store, memory, audit, faults, clock, keyring };
}

export const clinician = {
  tenant: 'st-marys',
  user: 'dr.ada',
  principal: 'dr.ada',
  purpose: 'treatment',
} as const;
