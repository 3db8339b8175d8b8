import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DrillReport, DrillStoreKind } from '../../src/ops/drill/drill-report.js';
import { runRotationDrill } from '../../src/ops/drill/rotation-drill.js';
import type { CacheStore } from '../../src/store/cache-store.js';
import { MemoryStore } from '../../src/store/memory/memory-store.js';
import { nodeRedisCommands } from '../../src/store/redis/node-redis.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { type PrivateRedis, startRedis } from '../harness/redis.js';
import { openDrillCache as openCache } from '../helpers/drill-cache.js';
import { checkXml } from '../helpers/xml-check.js';

async function auditText(dir: string): Promise<string> {
  let text = '';
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) text += await readFile(join(entry.parentPath, entry.name), 'utf8');
  }
  return text;
}

async function drillAndCheck(store: CacheStore, kind: DrillStoreKind): Promise<void> {
  const { cache, auditDir } = await openCache(store);
  try {
    const { report, chart } = await runRotationDrill({
      cache,
      store: kind,
      durationMs: 3000,
      concurrency: 4,
      hotEntriesPerCaller: 16,
    });
    checkReport(report, kind);

    // The cache itself agrees with the report: the new version seals, and no data key record needs the old one.
    const listing = await cache.rotation.list();
    const active = listing.states.keks.find((k) => k.state === 'active')!.kid;
    assert.equal(active, report.keys.to);
    assert.deepEqual(Object.keys(listing.dekRecords), [report.keys.to]);
    assert.equal(listing.states.keks.find((k) => k.kid === report.keys.from)!.state, 'decrypt-only');

    checkChart(chart);

    // The rotation went through the real audit trail, on the admin stream, under the drill's principal.
    await cache.close();
    const audit = await auditText(auditDir);
    for (const action of ['key.publish', 'key.promote', 'key.rewrap', 'key.reencrypt']) {
      assert.match(audit, new RegExp(`"action":"${action.replace('.', '\\.')}"`), `${action} is audited`);
    }
    assert.match(audit, /ops:drill-rotation/);
  } finally {
    await cache.close();
  }
}

function checkReport(report: DrillReport, kind: DrillStoreKind): void {
  assert.equal(report.format, 'phicache.drill.rotation');
  assert.equal(report.formatVersion, 1);
  assert.equal(report.store, kind);
  assert.equal(report.concurrency, 4);
  assert.ok(Date.parse(report.startedAt) < Date.parse(report.endedAt));
  assert.deepEqual(
    report.phases.map((p) => p.name),
    ['before', 'during', 'after'],
  );
  for (const phase of report.phases) {
    assert.ok(phase.ops > 0, `${phase.name}: operations ran`);
    assert.ok(phase.throughputPerSecond > 0);
    assert.ok(
      phase.p50Ms <= phase.p99Ms && phase.p99Ms <= phase.maxMs,
      `${phase.name}: percentiles in order`,
    );
    assert.ok(phase.hits <= phase.reads && phase.reads <= phase.ops);
    assert.ok(
      phase.hitRate !== null && phase.hitRate > 0 && phase.hitRate < 1,
      `${phase.name}: hits and misses`,
    );
    assert.equal(phase.errors, 0, `${phase.name}: ${JSON.stringify(phase.errorCodes)}`);
    assert.equal(phase.wrongValues, 0, `${phase.name}: ${JSON.stringify(phase.wrongReasons)}`);
  }
  // Phases follow one another without gap, in time order.
  for (let i = 1; i < report.phases.length; i++) {
    assert.equal(report.phases[i]!.startedAt, report.phases[i - 1]!.endedAt);
  }
  assert.ok(report.phases.reduce((n, p) => n + p.purges, 0) > 0, 'purges happened');
  assert.equal(report.warmup.errors + report.warmup.wrongValues, 0);

  assert.ok(report.keys.from !== null && report.keys.to !== null);
  assert.notEqual(report.keys.from, report.keys.to);
  assert.equal(report.keys.activeAfter, report.keys.to);
  assert.ok(report.keys.generationAfter > report.keys.generationBefore);
  assert.deepEqual(
    report.keys.versionsAfter.map((v) => [v.kid, v.state]),
    [
      [report.keys.from, 'decrypt-only'],
      [report.keys.to, 'active'],
    ],
  );
  assert.deepEqual(Object.keys(report.keys.dekRecordsAfter), [report.keys.to]);
  assert.ok(
    (report.keys.dekRecordsBefore[report.keys.from] ?? 0) > 0,
    'data keys existed under the old version',
  );
  const rewrap = report.keys.rewrap!;
  assert.equal(rewrap.kid, report.keys.to);
  assert.ok(rewrap.rewrapped > 0);
  assert.equal(rewrap.failed, 0);
  const swept = report.keys.reencrypt!.partitions.filter((p) => p.method === 'sweep');
  assert.ok(
    swept.some((p) => p.className === 'encrypted-phi' && p.scanned > 0),
    'the sweep went over the PHI entries',
  );
  for (const p of swept) {
    assert.equal(
      p.scanned,
      p.reencrypted + p.current + p.gone + p.unreadable,
      `${p.className}: every entry counted once`,
    );
  }
  const unreadable = swept.reduce((n, p) => n + p.unreadable, 0);
  assert.equal(
    report.verdict.findings.some((f) => f.includes('unreadable')),
    unreadable > 0,
    'entries the sweep could not place are a finding',
  );

  // Every step is timed and in order, inside the phase it belongs to.
  const order = [
    'phase.before',
    'phase.during',
    'rotate.publish',
    'rotate.wait',
    'rotate.promote',
    'rotate.done',
    'rewrap.start',
    'rewrap.done',
    'reencrypt.start',
    'reencrypt.done',
    'phase.after',
    'end',
  ];
  const steps = report.steps.filter((s) => order.includes(s.step));
  assert.deepEqual(
    steps.map((s) => s.step),
    order,
  );
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i - 1]!.at <= steps[i]!.at);
  const during = report.phases[1]!;
  const promote = report.steps.find((s) => s.step === 'rotate.promote')!;
  assert.ok(during.startedAt <= promote.at && promote.at <= during.endedAt);

  // The stretches of the rotation cover the during phase, step by step.
  assert.deepEqual(
    report.duringSteps.map((d) => d.to),
    ['rotate.wait', 'rotate.promote', 'rewrap.start', 'rewrap.done', 'reencrypt.done', 'phase.after'],
  );
  assert.equal(
    report.duringSteps.reduce((n, d) => n + d.ops, 0),
    during.ops,
  );
  assert.ok(report.p99Ratio !== null && report.p99Ratio > 0);
  assert.equal(report.verdict.result, 'pass', report.verdict.reasons.join('; '));
  assert.deepEqual(report.verdict.reasons, []);
}

function checkChart(svg: string): void {
  const elements = checkXml(svg);
  assert.equal(elements[0]!.name, 'svg');
  assert.equal(elements[0]!.attributes.xmlns, 'http://www.w3.org/2000/svg');
  assert.match(
    elements.find((e) => e.name === 'title')!.text,
    /phicache drill rotation/,
    'it has alternative text',
  );
  assert.match(elements.find((e) => e.name === 'desc')!.text, /before .* ops\/s/);
  const texts = elements.filter((e) => e.name === 'text').map((e) => e.text);
  for (const label of [
    'before the rotation',
    'during the rotation',
    'after the rotation',
    'publish',
    'promote',
    'rewrap',
    're-encrypt',
    'latency (ms)',
    'time since traffic started (s)',
  ]) {
    assert.ok(texts.includes(label), `the chart shows "${label}"`);
  }
  assert.ok(elements.filter((e) => e.name === 'polyline').length >= 2, 'p50 and p99 lines');
  assert.ok(svg.length < 100_000, 'the chart stays small');
}

describe('phicache drill rotation (library)', () => {
  test('on the embedded store: traffic through a rotation, rewrap and sweep with no error and no wrong value', async () => {
    await drillAndCheck(new MemoryStore(), 'embedded');
  });

  describe('on a standalone redis-server', () => {
    let server: PrivateRedis;
    before(async () => {
      server = await startRedis('plain');
    });
    after(() => server?.stop());

    test('traffic through a rotation, rewrap and sweep with no error and no wrong value', async () => {
      const store = new RedisStore(await nodeRedisCommands({ url: server.url }));
      await drillAndCheck(store, 'redis standalone');
    });
  });
});
