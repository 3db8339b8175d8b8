import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { NameKeyring } from '../../src/keys/tenant-names.js';
import { PurgeLedger } from '../../src/purge/purge-ledger.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { RecordingStore } from '../helpers/recording-store.js';

function ledger(options: { shared: boolean; maxNames?: number }) {
  const clock = { now: 1_000_000 };
  const store = new RecordingStore(new MemoryStore({ clock: () => clock.now }));
  const names = new NameKeyring(randomBytes(32)).forTenant('t1');
  const purges = new PurgeLedger({
    store,
    shared: options.shared,
    clock: () => clock.now,
    retainMs: 60_000,
    refreshMs: 1000,
    maxNames: options.maxNames ?? 1000,
  });
  return { clock, store, names, purges };
}

describe('the purge ledger', () => {
  test('a marker read as absent is trusted for refreshMs, then read again', async () => {
    const { clock, store, names, purges } = ledger({ shared: true });
    const other = new PurgeLedger({
      store,
      shared: true,
      clock: () => clock.now,
      retainMs: 60_000,
      refreshMs: 1000,
      maxNames: 1000,
    });
    assert.equal(await purges.latest(names, ['phc:t:a']), Number.NEGATIVE_INFINITY);
    const reads = store.reads.length;
    await other.record(names, 'phc:t:a', clock.now);
    assert.equal(
      await purges.latest(names, ['phc:t:a']),
      Number.NEGATIVE_INFINITY,
      'within the bound: not read',
    );
    assert.equal(store.reads.length, reads, 'no store read within refreshMs');
    clock.now += 1000;
    assert.equal(await purges.latest(names, ['phc:t:a']), clock.now - 1000, 'read again after refreshMs');
  });

  test("an embedded (unshared) store is never asked: purges are this process's own", async () => {
    const { clock, store, names, purges } = ledger({ shared: false });
    await purges.record(names, 'phc:t:a', clock.now);
    assert.equal(await purges.latest(names, ['phc:t:a', 'phc:t:b']), clock.now);
    assert.equal(store.writes.length + store.reads.length, 0);
  });

  test('fills are fenced by the local purge sequence, name by name', async () => {
    const { clock, names, purges } = ledger({ shared: false });
    const start = purges.sequence;
    await purges.record(names, 'phc:t:a', clock.now);
    assert.equal(purges.purgedSince(['phc:t:b'], start), false);
    assert.equal(purges.purgedSince(['phc:t:b', 'phc:t:a'], start), true);
    assert.equal(purges.purgedSince(['phc:t:a'], purges.sequence), false, 'a fill that started after it');
  });

  test('memory is bounded by maxNames', async () => {
    const { clock, names, purges } = ledger({ shared: true, maxNames: 100 });
    for (let i = 0; i < 1000; i++) await purges.latest(names, [`phc:t:${i}`]);
    assert.equal(purges.size, 100);
    await purges.record(names, 'phc:t:x', clock.now);
    assert.equal(purges.size, 100);
    assert.equal(purges.known('phc:t:x'), clock.now);
  });
});
