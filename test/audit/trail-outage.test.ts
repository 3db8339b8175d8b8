import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { verifyAuditDirectory } from '../../src/audit/verify.js';
import { PhiCacheError } from '../../src/errors.js';
import { SwitchableSink } from './switchable-sink.js';
import { event, FIXTURE_START, keys, streamRoot } from './trail-fixture.js';

const refusedWith = (code: string) => (error: unknown) => {
  const cause = (error as { cause?: { code?: string; cause?: { code?: string } } }).cause;
  return (
    error instanceof PhiCacheError &&
    error.code === 'ERR_AUDIT_UNAVAILABLE' &&
    (cause?.code === code || cause?.cause?.code === code)
  );
};

async function linesOf(dir: string, chain: string, name: string) {
  const text = await readFile(join(dir, chain, name), 'utf8');
  return text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** A trail over a real file sink behind a switch, on a clock that moves one second per reading. */
async function outageTrail() {
  const dir = await mkdtemp(join(tmpdir(), 'phicache-outage-'));
  const clock = { now: FIXTURE_START };
  const tick = () => (clock.now += 1000);
  const sink = new SwitchableSink('disk', new FileSink({ dir, clock: () => clock.now }));
  const trail = new AuditTrail({
    keys,
    sinks: [sink],
    chain: 'outage',
    clock: tick,
    checkpointEveryMs: 3_600_000,
    deliveryTimeoutMs: 5000,
  });
  return { dir, sink, trail, clock };
}

describe('PHI-AUDIT-01 an audit outage is recorded as an outage, never as a gap', () => {
  test('refused batches take no sequence number; the first batch taken again opens a new file with an audit.outage record', async () => {
    const { dir, sink, trail, clock } = await outageTrail();
    for (let i = 0; i < 3; i++) await trail.write(event('access', clock.now));
    sink.failures = 2;
    await assert.rejects(trail.write(event('access', clock.now)), refusedWith('ENOSPC'));
    await assert.rejects(trail.write(event('access', clock.now)), refusedWith('ENOSPC'));
    // A real failing file system condition: the next records file cannot be created (a directory holds its name).
    await mkdir(join(dir, 'outage', 'access-000002.jsonl'));
    await assert.rejects(trail.write(event('access', clock.now)), refusedWith('EISDIR'));
    await rmdir(join(dir, 'outage', 'access-000002.jsonl'));
    await trail.write(event('access', clock.now));
    await trail.close();

    const before = await linesOf(dir, 'outage', 'access-000001.jsonl');
    assert.deepEqual(
      before.map((r) => r.seq),
      [1, 2, 3],
    );
    const after = await linesOf(dir, 'outage', 'access-000002.jsonl');
    assert.deepEqual(
      after.map((r) => [r.seq, r.action]),
      [
        [4, 'audit.outage'],
        [5, after[1]!.action],
      ],
    );
    const outage = after[0] as {
      outcome: Record<string, unknown>;
      detail: Record<string, unknown>;
      prev: string;
    };
    assert.equal(outage.prev, before[2]!.hash, 'the outage record links to the last record taken');
    assert.deepEqual(outage.outcome, { count: 3, result: 'ok' });
    assert.equal(outage.detail.cause, 'ENOSPC', 'the cause that began the outage');
    assert.equal(outage.detail.refused, 3);
    const from = Date.parse(outage.detail.from as string);
    const to = Date.parse(outage.detail.to as string);
    assert.ok(from < to && outage.detail.ms === to - from, JSON.stringify(outage.detail));
    const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, streamRoot, now: clock.now });
    assert.deepEqual(report.findings, []);
    // access: 3 + outage + 1; admin: audit.open.
    assert.equal(report.records, 6);
  });

  test('a batch whose every durable sink fails rejects every one of its callers, and none of them is in the log', async () => {
    const { dir, sink, trail, clock } = await outageTrail();
    await trail.write(event('access', clock.now));
    sink.failures = 1;
    const batch = Array.from({ length: 5 }, () => trail.write(event('access', clock.now)));
    const settled = await Promise.allSettled(batch);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['rejected', 'rejected', 'rejected', 'rejected', 'rejected'],
    );
    await trail.write(event('access', clock.now));
    await trail.close();
    const records = [
      ...(await linesOf(dir, 'outage', 'access-000001.jsonl')),
      ...(await linesOf(dir, 'outage', 'access-000002.jsonl')),
    ];
    assert.deepEqual(
      records.map((r) => [r.seq, r.action === 'audit.outage']),
      [
        [1, false],
        [2, true],
        [3, false],
      ],
    );
    assert.equal((records[1]!.detail as Record<string, unknown>).refused, 5);
    const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, streamRoot, now: clock.now });
    assert.deepEqual(report.findings, []);
  });

  test('audit.open is never swallowed: until a sink takes it every write fails with its cause, then it is admin record 1', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-open-'));
    const sink = new SwitchableSink('disk', new FileSink({ dir }));
    sink.down = true;
    const trail = new AuditTrail({ keys, sinks: [sink], chain: 'late-open', deliveryTimeoutMs: 5000 });
    await assert.rejects(trail.write(event('access', Date.now())), refusedWith('ENOSPC'));
    await assert.rejects(trail.write(event('admin', Date.now())), refusedWith('ENOSPC'));
    sink.down = false;
    await trail.write(event('access', Date.now()));
    await trail.close();
    // The refused admin write is written down at close, in a new segment of the admin stream.
    const admin = [
      ...(await linesOf(dir, 'late-open', 'admin-000001.jsonl')),
      ...(await linesOf(dir, 'late-open', 'admin-000002.jsonl')),
    ];
    assert.deepEqual(
      admin.map((r) => [r.seq, r.action]),
      [
        [1, 'audit.open'],
        [2, 'audit.outage'],
      ],
    );
    const access = await linesOf(dir, 'late-open', 'access-000001.jsonl');
    assert.deepEqual(
      access.map((r) => [r.seq, r.action === 'audit.outage']),
      [
        [1, true],
        [2, false],
      ],
    );
    const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, streamRoot });
    assert.deepEqual(report.findings, []);
  });

  test('the file sink opens a new records file only when it can: a failed open leaves the current one in use', async () => {
    const { dir, sink, trail, clock } = await outageTrail();
    await trail.write(event('access', clock.now));
    sink.failures = 1;
    await assert.rejects(trail.write(event('access', clock.now)));
    await mkdir(join(dir, 'outage', 'access-000002.jsonl'));
    await assert.rejects(trail.write(event('access', clock.now)), refusedWith('EISDIR'));
    const names = (await readdir(join(dir, 'outage'))).filter((n) => n.startsWith('access-0')).sort();
    assert.deepEqual(names, ['access-000001.jsonl', 'access-000002.jsonl']);
    assert.equal(
      (await linesOf(dir, 'outage', 'access-000001.jsonl')).length,
      1,
      'nothing of a refused batch',
    );
    await rmdir(join(dir, 'outage', 'access-000002.jsonl'));
    await trail.close();
  });

  test('a file sink taking written records itself (no wrapper): a refused rotation is an outage, the log goes on after it and verifies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-outage-'));
    const clock = { now: FIXTURE_START };
    const tick = () => (clock.now += 1000);
    // Small files, so that the third record needs a new one; its name is taken by a directory.
    const sink = new FileSink({ dir, clock: () => clock.now, maxFileBytes: 1024 });
    const trail = new AuditTrail({
      keys,
      sinks: [sink],
      chain: 'direct',
      clock: tick,
      checkpointEveryMs: 3_600_000,
    });
    await trail.write(event('access', clock.now));
    await trail.write(event('access', clock.now));
    await mkdir(join(dir, 'direct', 'access-000002.jsonl'));
    await assert.rejects(trail.write(event('access', clock.now)), refusedWith('EISDIR'));
    await rmdir(join(dir, 'direct', 'access-000002.jsonl'));
    await trail.write(event('access', clock.now));
    await trail.close();
    const records = [
      ...(await linesOf(dir, 'direct', 'access-000001.jsonl')),
      ...(await linesOf(dir, 'direct', 'access-000002.jsonl')),
    ];
    assert.deepEqual(
      records.map((r) => [r.seq, r.action === 'audit.outage']),
      [
        [1, false],
        [2, false],
        [3, true],
        [4, false],
      ],
      'the refused record took no seq; the outage record opens the next file',
    );
    const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, streamRoot, now: clock.now });
    assert.deepEqual(report.findings, []);
    assert.deepEqual(
      report.notices.filter((n) => n.kind === 'outage').map((n) => n.counts.records),
      [1],
    );
  });
});
