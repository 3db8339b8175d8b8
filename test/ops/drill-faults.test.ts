import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DrillReport } from '../../src/ops/drill/drill-report.js';
import { runRotationDrill } from '../../src/ops/drill/rotation-drill.js';
import type { CacheStore, StoreWriteOptions } from '../../src/store/cache-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { type Fault, flakyStore } from '../helpers/chaos.js';
import { openDrillCache } from '../helpers/drill-cache.js';

/**
 * The drill must fail when the cache under it misbehaves, not only pass when it behaves: a store that loses
 * overwrites (the cache cannot see it: the old ciphertext is authentic and in its place) and a store outage.
 */

/** A memory store that acknowledges every third overwrite of an entry without making it. */
function losingOverwrites(inner: MemoryStore): CacheStore {
  let overwrites = 0;
  return {
    name: inner.name,
    get: (key) => inner.get(key),
    set: async (key: string, value: Buffer, options: StoreWriteOptions) => {
      if (key.startsWith('phc:e:') && (await inner.get(key)) !== undefined && ++overwrites % 3 === 0) return;
      await inner.set(key, value, options);
    },
    add: (key, value, options) => inner.add(key, value, options),
    delete: (key) => inner.delete(key),
    deleteIfSame: (key, value) => inner.deleteIfSame(key, value),
    replaceIfSame: (key, seen, next, ttlMs) => inner.replaceIfSame(key, seen, next, ttlMs),
    scan: (prefix) => inner.scan(prefix),
    deleteByTag: (tag) => inner.deleteByTag(tag),
    ttl: (key) => inner.ttl(key),
    close: () => inner.close(),
  };
}

async function drill(store: CacheStore, during?: (elapsedMs: number) => void): Promise<DrillReport> {
  const { cache } = await openDrillCache(store);
  const started = Date.now();
  const timer = during === undefined ? undefined : setInterval(() => during(Date.now() - started), 50);
  try {
    return (
      await runRotationDrill({
        cache,
        store: 'embedded',
        durationMs: 3000,
        concurrency: 4,
        hotEntriesPerCaller: 16,
      })
    ).report;
  } finally {
    clearInterval(timer);
    await cache.close();
  }
}

const total = (report: DrillReport, field: 'errors' | 'wrongValues') =>
  report.warmup[field] + report.phases.reduce((n, p) => n + p[field], 0);

describe('drill: it fails when the cache under it misbehaves', () => {
  test('a store that loses overwrites: older versions come back, counted as wrong values, and the drill fails', async () => {
    const report = await drill(losingOverwrites(new MemoryStore()));
    assert.ok(total(report, 'wrongValues') > 0);
    const reasons = report.phases.flatMap((p) => Object.keys(p.wrongReasons));
    assert.ok(reasons.includes('older-version'), `reasons: ${reasons.join(', ')}`);
    assert.equal(report.verdict.result, 'fail');
    assert.ok(report.verdict.reasons.some((r) => /wrong value\(s\) .*older-version/.test(r)));
  });

  test('a store outage: the callers see errors, and the drill fails naming their codes', async () => {
    const fault: Fault = { down: false };
    // Down for a quarter second once traffic runs (after the prefill and warm-up of a 3 s drill).
    const report = await drill(flakyStore(new MemoryStore(), fault), (elapsed) => {
      fault.down = elapsed > 900 && elapsed < 1150;
    });
    assert.ok(total(report, 'errors') > 0);
    assert.equal(report.verdict.result, 'fail');
    assert.ok(
      report.verdict.reasons.some((r) => /error\(s\) .*(ERR_STORE_UNAVAILABLE|store-error)/.test(r)),
      report.verdict.reasons.join('; '),
    );
  });
});
