import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KeyListing } from '../../src/keys/key-rotation.js';
import { buildDrillReport, type DrillFacts } from '../../src/ops/drill/drill-report.js';
import { drillValue, judgeHit } from '../../src/ops/drill/drill-value.js';
import { LatencyRecorder, summarize } from '../../src/ops/drill/latency-recorder.js';
import type { DrillPhase, PhaseCounts } from '../../src/ops/drill/workload.js';
import { checkXml } from '../helpers/xml-check.js';

const live = { version: 3, liveUntil: 10_000 };

describe('drill: the wrong-value detector', () => {
  test('the expected entry at its latest version, while it may live, is right', () => {
    assert.equal(judgeHit('a', drillValue('a', 3), live, 9_000), undefined);
  });

  test("another entry's value is wrong, even a perfectly formed one", () => {
    assert.equal(judgeHit('a', drillValue('b', 3), live, 9_000), 'another-entry');
  });

  test('an older version after an overwrite is wrong, and so is a version nobody wrote', () => {
    assert.equal(judgeHit('a', drillValue('a', 2), live, 9_000), 'older-version');
    assert.equal(judgeHit('a', drillValue('a', 4), live, 9_000), 'unknown-version');
  });

  test('a hit after a purge or delete, or after the entry expired, is wrong', () => {
    assert.equal(
      judgeHit('a', drillValue('a', 3), { version: 0, liveUntil: 0 }, 9_000),
      'present-when-absent',
    );
    assert.equal(judgeHit('a', drillValue('a', 3), live, 10_002), 'served-after-expiry');
  });

  test('altered content and values that are not drill values are wrong', () => {
    assert.equal(judgeHit('a', { ...drillValue('a', 3), pad: 'y' }, live, 9_000), 'digest-mismatch');
    assert.equal(judgeHit('a', { ...drillValue('a', 3), version: 2 }, live, 9_000), 'digest-mismatch');
    assert.equal(judgeHit('a', 'a:3', live, 9_000), 'not-a-drill-value');
    assert.equal(judgeHit('a', null, live, 9_000), 'not-a-drill-value');
  });
});

describe('drill: latency figures', () => {
  test('nearest-rank percentiles, per phase window and per bucket', () => {
    const latencies = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual(summarize(latencies), { ops: 100, p50Ms: 50, p99Ms: 99, maxMs: 100 });
    assert.deepEqual(summarize(new Float64Array(0)), { ops: 0, p50Ms: 0, p99Ms: 0, maxMs: 0 });
    const recorder = new LatencyRecorder();
    // More samples than the first allocation, so that growing keeps every one.
    for (let i = 0; i < 70_000; i++) recorder.record(i % 1000, i < 35_000 ? 1 : 3);
    assert.equal(recorder.count, 70_000);
    assert.equal(recorder.summary(0, 500).ops, 35_000);
    const buckets = recorder.buckets(0, 1000, 250);
    assert.deepEqual(
      buckets.map((b) => [b.startMs, b.ops, b.p50Ms]),
      [
        [0, 17_500, 1],
        [250, 17_500, 1],
        [500, 17_500, 1],
        [750, 17_500, 1],
      ],
    );
    assert.equal(recorder.buckets(1000, 2000, 250)[0]!.ops, 0);
  });
});

function counts(overrides: Partial<PhaseCounts> = {}): PhaseCounts {
  return {
    ops: 10,
    reads: 8,
    hits: 7,
    writes: 2,
    deletes: 0,
    purges: 0,
    errors: 0,
    wrongValues: 0,
    errorCodes: {},
    wrongReasons: {},
    lazyReencrypted: 0,
    ...overrides,
  };
}

const listing = (active: string, keks: string[], dekRecords: Record<string, number>): KeyListing => ({
  states: {
    seq: 1,
    generation: keks.length - 1,
    changedAt: 0,
    keks: keks.map((kid) => ({
      kid,
      state: kid === active ? 'active' : 'decrypt-only',
      publishedAt: 0,
      promotableAt: 0,
    })),
  },
  dekRecords,
  dataKeys: { active: 0, 'decrypt-only': 0 },
  settledAt: 0,
});

function facts(phaseCounts: Partial<Record<DrillPhase, PhaseCounts>>, latency: number[]): DrillFacts {
  const recorder = new LatencyRecorder();
  // One operation per ms in each phase window [0,1000), [1000,2000), [2000,3000), latency by phase.
  for (let t = 0; t < 3000; t++) recorder.record(t, latency[Math.floor(t / 1000)]!);
  return {
    runId: 'r',
    store: 'embedded',
    concurrency: 1,
    durationMs: 3000,
    startedAt: 1_000_000,
    endedAt: 1_003_000,
    boundaries: [0, 1000, 2000, 3000],
    steps: [{ step: 'phase.before', at: 1_000_000, sinceStartMs: 0 }],
    workload: { counts: (phase) => phaseCounts[phase] ?? counts() },
    recorder,
    before: listing('k1', ['k1'], { k1: 2 }),
    after: listing('k2', ['k1', 'k2'], { k2: 2 }),
    rotated: { from: 'k1', to: 'k2' },
    rewrap: { kid: 'k2', found: 2, rewrapped: 2, current: 0, gone: 0, failed: 0, ms: 1 },
    tenants: 1,
    hotEntriesPerCaller: 1,
  };
}

describe('drill: the verdict', () => {
  test('a clean drill passes', () => {
    const report = buildDrillReport(facts({}, [1, 1, 1]));
    assert.equal(report.verdict.result, 'pass');
    assert.equal(report.p99Ratio, 1);
    assert.equal(report.phases[0]!.startedAt, new Date(1_000_000).toISOString());
    assert.equal(report.phases[2]!.endedAt, new Date(1_003_000).toISOString());
  });

  test('one wrong value or one error in any phase, the warm-up included, fails it with the reason', () => {
    const wrong = buildDrillReport(
      facts({ during: counts({ wrongValues: 1, wrongReasons: { 'another-entry': 1 } }) }, [1, 1, 1]),
    );
    assert.equal(wrong.verdict.result, 'fail');
    assert.deepEqual(wrong.verdict.reasons, ['1 wrong value(s) during the rotation: another-entry 1']);
    const error = buildDrillReport(
      facts({ warmup: counts({ errors: 2, errorCodes: { ERR_STORE_UNAVAILABLE: 2 } }) }, [1, 1, 1]),
    );
    assert.equal(error.verdict.result, 'fail');
    assert.deepEqual(error.verdict.reasons, ['2 error(s) in the warm-up: ERR_STORE_UNAVAILABLE 2']);
  });

  test('a rotation that leaves data key records under the old version fails', () => {
    const f = facts({}, [1, 1, 1]);
    const report = buildDrillReport({ ...f, after: listing('k2', ['k1', 'k2'], { k1: 1, k2: 2 }) });
    assert.equal(report.verdict.result, 'fail');
    assert.match(
      report.verdict.reasons[0]!,
      /still wrapped under an older KEK version after the rewrap: k1 1/,
    );
  });

  test('p99 during above 1.5 times p99 before is a finding, not a failure', () => {
    const report = buildDrillReport(facts({}, [2, 4, 2]));
    assert.equal(report.p99Ratio, 2);
    assert.equal(report.verdict.result, 'pass');
    assert.equal(report.verdict.findings.length, 1);
    assert.match(report.verdict.findings[0]!, /2 times p99 before/);
  });
});

describe('drill: the XML check used on the chart', () => {
  test('finds what would make an SVG unreadable', () => {
    assert.equal(checkXml('<svg><g><text>a &amp; b</text></g></svg>').length, 3);
    assert.throws(() => checkXml('<svg><g></svg>'), /closes g/);
    assert.throws(() => checkXml('<svg><text>a & b</text></svg>'), /bare &/);
    assert.throws(() => checkXml('<svg x="1" x="2"/>'), /repeated/);
    assert.throws(() => checkXml('<svg/><svg/>'), /2 root elements/);
    assert.throws(() => checkXml('<svg>'), /never closed/);
  });
});
