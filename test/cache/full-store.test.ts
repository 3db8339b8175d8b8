import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { MemoryAuditSink } from '../../src/audit/memory-sink.js';
import { type AccessContext, PhiCache } from '../../src/cache.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { loadDefaultPolicy } from '../../src/policy/default.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';

const ada: AccessContext = { tenant: 'st-marys', user: 'dr.ada', principal: 'dr.ada', purpose: 'treatment' };
const ref = (i: number) => ({ class: 'encrypted-phi', resource: 'lab-summary', id: `MRN${i}` });

describe('a full embedded store', () => {
  test('filled ten times past capacity, it still reads back every entry it holds: data-key records are never evicted first', async () => {
    const clock = { now: 3_600_000 * 480_000 };
    const store = new MemoryStore({ maxEntries: 100, clock: () => clock.now });
    const cache = await PhiCache.create({
      service: 'test-suite',
      policy: await loadDefaultPolicy(),
      keys: await LocalKeyring.open({ home: await mkdtemp(join(tmpdir(), 'phicache-full-')), env: {} }),
      store,
      audit: new MemoryAuditSink(),
      clock: () => clock.now,
      // Unwrapped keys age out fast, so every read below needs the wrapped record from the store.
      dekCache: { maxAgeMs: 1000 },
    });
    for (let i = 0; i < 1000; i++) await cache.set(ref(i), { i }, ada);
    assert.equal(store.stats().entries, 100, 'the store is full');
    clock.now += 2000;
    let readable = 0;
    for (let i = 900; i < 1000; i++) if ((await cache.get(ref(i), ada)) !== undefined) readable += 1;
    assert.equal(readable, 100, 'all of the 100 newest entries');
    await cache.close();
  });
});
