import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { describe, test } from 'node:test';
import { listAuditLog } from '../../src/audit/read-log.js';
import { type Checkpoint, checkpointSigningInput } from '../../src/audit/record.js';
import { type VerifyReport, verifyAuditDirectory, verifyAuditLog } from '../../src/audit/verify.js';
import { LogBuilder } from './log-builder.js';
import { keys, streamRoot } from './trail-fixture.js';

/**
 * The verifier reads the log of docs/audit-log.md: outage records, restart checkpoints (after a crash or a close),
 * torn bytes and a writer's lock. Each is a notice, never a finding, and excuses exactly the checkpoint period it
 * explains; a forged or missing one excuses nothing.
 */

/** A chain that lived through all of it: an outage, a clean restart, a crash with a torn line, and a close. */
function eventfulChain(): LogBuilder {
  const log = new LogBuilder({ everyMs: 60_000, everyRecords: 50 });
  log.open().records('access', 120).records('admin', 10);
  log
    .outage('access', 3 * 3_600_000)
    .records('access', 80)
    .records('admin', 5);
  log.close().restart('close', 2 * 86_400_000);
  log.records('access', 70);
  log.restart('crash', 5 * 3_600_000, { tornBytes: 37 });
  log.records('access', 40).records('admin', 4).close();
  return log;
}

const verify = (log: LogBuilder, options: { withRoot?: boolean; now?: number } = {}) =>
  verifyAuditLog(log.files(), {
    publicKey: keys.publicKey,
    now: options.now ?? log.now,
    ...(options.withRoot ? { streamRoot } : {}),
  });

const kinds = (report: VerifyReport) => report.findings.map((f) => `${f.stream} ${f.kind}`);

describe('the verifier reads outages, restarts and torn bytes as notices', () => {
  test('a chain with an outage, a restart after a close and one after a crash is intact, every record vouched', async () => {
    const log = eventfulChain();
    for (const withRoot of [false, true]) {
      const report = await verify(log, { withRoot });
      assert.deepEqual(report.findings, [], `withRoot ${withRoot}`);
      assert.equal(report.ok, true);
      assert.equal(report.records, log.seq('access') + log.seq('admin'));
      assert.equal(report.vouched, report.records);
      assert.deepEqual(
        report.notices.map((n) => `${n.stream} ${n.kind}`),
        [
          'access outage',
          'access restart',
          'access crash',
          'admin restart',
          'admin crash',
          'access torn-bytes',
        ],
      );
    }
    const report = await verify(log);
    const outage = report.notices[0]!;
    assert.equal(outage.counts.records, 12);
    assert.equal(outage.counts.operations, 24);
    assert.equal(outage.counts.ms, 3 * 3_600_000);
    assert.equal(Date.parse(outage.to!) - Date.parse(outage.from!), 3 * 3_600_000);
    const crash = report.notices.find((n) => n.kind === 'crash' && n.stream === 'access')!;
    assert.equal(crash.counts.tornBytes, 37);
    assert.ok((crash.counts.checked ?? 0) > 0, 'the records after the last checkpoint were checked');
    assert.deepEqual(report.notices.at(-1)!.counts, { bytes: 37 });
  });

  test('on disk: the .torn file is a notice and writer.lock is ignored', async () => {
    const log = eventfulChain().lock();
    const dir = await log.writeTo();
    const files = await listAuditLog(dir);
    assert.ok(files.some((f) => f.path.endsWith('.torn')));
    assert.ok(!files.some((f) => f.path.endsWith('writer.lock')));
    const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, now: log.now });
    assert.deepEqual([report.ok, report.findings.length], [true, 0]);
    assert.equal(report.notices.filter((n) => n.kind === 'torn-bytes').length, 1);
  });

  test('the same silence without its outage record is a checkpoint gap', async () => {
    const log = new LogBuilder({ everyMs: 60_000 });
    log.open().records('access', 100);
    log.now += 3 * 3_600_000;
    log.records('access', 100).close();
    const report = await verify(log);
    assert.deepEqual(kinds(report), ['access checkpoint-gap', 'admin checkpoint-gap']);
    assert.equal(report.vouched, report.records, 'a gap is no record finding: every record is still vouched');
  });

  test('an outage in one stream excuses the silence of every stream of its chain, and only for its span', async () => {
    const log = new LogBuilder({ everyMs: 60_000 });
    log.open().records('access', 10);
    log.outage('access', 3_600_000).records('access', 10).close();
    assert.deepEqual((await verify(log)).findings, []);
    // The writer was silent for longer than the outage record says.
    const longer = new LogBuilder({ everyMs: 60_000 });
    longer.open().records('access', 10);
    longer.now += 3_600_000;
    longer.outage('access', 3_600_000).records('access', 10).close();
    assert.deepEqual(kinds(await verify(longer)), ['access checkpoint-gap', 'admin checkpoint-gap']);
  });

  test('an edited outage record is found, and what comes before it stays vouched', async () => {
    const log = new LogBuilder({ everyMs: 60_000, everyRecords: 25 });
    log.open().records('access', 60);
    log.outage('access', 3_600_000).records('access', 30).close();
    const files = log.files().map((file) => {
      if (!('lines' in file) || !file.path.endsWith('/access-000002.jsonl')) return file;
      return { ...file, lines: file.lines.with(0, file.lines[0]!.replace('"refused":24', '"refused":2')) };
    });
    const report = await verifyAuditLog(files, { publicKey: keys.publicKey, now: log.now });
    assert.ok(kinds(report).includes('access modified'), kinds(report).join());
    // 60 records before the outage record: the checkpoint at 50 (every 25 records) is the last one before it.
    assert.equal(report.vouched, 50 + log.seq('admin'));
  });

  test('records after a final checkpoint with no restart after them are after-close', async () => {
    const log = new LogBuilder();
    log.open().records('access', 20).close().records('access', 5);
    const report = await verify(log);
    assert.ok(kinds(report).includes('access after-close'), kinds(report).join());
    assert.equal(report.vouched, 20 + log.seq('admin'));
  });

  test('a restart checkpoint with a forged signature excuses nothing, and one without a signature is no checkpoint', async () => {
    const log = new LogBuilder({ everyMs: 60_000 });
    log.open().records('access', 20).close().restart('close', 86_400_000);
    log.records('access', 20).close();
    const { checkpoints } = log.lines('access');
    const index = checkpoints.findIndex((line) => line.includes('"restart"'));
    const restart = JSON.parse(checkpoints[index]!) as Checkpoint;
    const other = { ...restart, sig: sign(null, Buffer.from('other'), keys.signingKey).toString('base64') };
    const { sig: _sig, ...unsigned } = restart;
    for (const [what, replacement, expected] of [
      ['forged', JSON.stringify(other), 'checkpoint-signature'],
      ['missing', JSON.stringify(unsigned), 'checkpoint-unparseable'],
    ] as const) {
      const files = log
        .files()
        .map((file) =>
          'lines' in file && file.path.endsWith('/access-checkpoints.jsonl')
            ? { ...file, lines: file.lines.with(index, replacement) }
            : file,
        );
      const report = await verifyAuditLog(files, { publicKey: keys.publicKey, now: log.now });
      const found = kinds(report);
      assert.ok(found.includes(`access ${expected}`), `${what}: ${found}`);
      assert.ok(found.includes('access checkpoint-gap'), `${what}: the day down is not excused: ${found}`);
      assert.ok(!report.notices.some((n) => n.stream === 'access' && n.kind === 'restart'), what);
    }
  });

  test('a restart checkpoint that claims more records than the log holds is truncated', async () => {
    const log = new LogBuilder();
    log.open().records('access', 20);
    const lost = log.lines('access').records.length;
    log.restart('crash', 600_000).records('access', 5).close();
    // The records the restart checked were cut from the log, with everything after them.
    const files = log
      .files()
      .filter((f) => !/\/access-00000[2-9]\.jsonl$/.test(f.path))
      .map((file) =>
        'lines' in file && file.path.endsWith('/access-000001.jsonl')
          ? { ...file, lines: file.lines.slice(0, lost - 4) }
          : file,
      );
    const report = await verifyAuditLog(files, { publicKey: keys.publicKey, now: log.now });
    assert.ok(kinds(report).includes('access truncated'), kinds(report).join());
  });

  test('a re-signed restart checkpoint whose seq runs past the log is truncated too', async () => {
    const log = new LogBuilder();
    log.open().records('access', 20).restart('crash', 600_000);
    const { checkpoints } = log.lines('access');
    const restart = JSON.parse(checkpoints.at(-1)!) as Checkpoint;
    const { sig: _sig, ...body } = { ...restart, seq: restart.seq + 3 };
    const forged = {
      ...body,
      sig: sign(null, checkpointSigningInput(body), keys.signingKey).toString('base64'),
    };
    const files = log
      .files()
      .map((file) =>
        'lines' in file && file.path.endsWith('/access-checkpoints.jsonl')
          ? { ...file, lines: file.lines.with(-1, JSON.stringify(forged)) }
          : file,
      );
    const report = await verifyAuditLog(files, { publicKey: keys.publicKey, now: log.now });
    assert.ok(kinds(report).includes('access truncated'), kinds(report).join());
  });
});

describe('a finding never hides what is intact: vouched by the numbers', () => {
  test('a modified record: every record up to the last checkpoint before it stays vouched', async () => {
    const log = new LogBuilder({ everyMs: 3_600_000, everyRecords: 100 });
    log.open().records('access', 450, 1000).close();
    const admin = log.seq('admin');
    for (const [index, expected] of [
      [0, 0],
      [99, 0],
      [100, 100],
      [250, 200],
      [449, 400],
    ] as const) {
      const files = log.files().map((file) =>
        'lines' in file && file.path.endsWith('/access-000001.jsonl')
          ? {
              ...file,
              lines: file.lines.with(index, file.lines[index]!.replace('"result":"', '"result":"x')),
            }
          : file,
      );
      const report = await verifyAuditLog(files, { publicKey: keys.publicKey, now: log.now });
      assert.equal(report.ok, false);
      assert.equal(report.vouched, expected + admin, `record ${index + 1} modified`);
      // With the stream root, every record before the modified one is vouched by its MAC.
      const withRoot = await verifyAuditLog(files, { publicKey: keys.publicKey, now: log.now, streamRoot });
      assert.equal(withRoot.vouched, index + admin, `record ${index + 1} modified, with the root`);
    }
  });

  test('an unvouched tail is its own finding, and the records before it stay vouched', async () => {
    const log = new LogBuilder({ everyMs: 3_600_000, everyRecords: 100 });
    // The opening record is sealed at once, so that only the access stream has a tail.
    log.open().checkpoint('admin').records('access', 230, 1000);
    const report = await verify(log);
    assert.deepEqual(kinds(report), ['access unvouched-tail']);
    assert.equal(report.findings[0]!.seq, 201);
    assert.equal(report.vouched, 200 + log.seq('admin'));
    const withRoot = await verify(log, { withRoot: true });
    assert.deepEqual([withRoot.ok, withRoot.vouched], [true, 230 + log.seq('admin')]);
  });

  test('an open chain whose writer died: the overdue checkpoint and the tail are findings, the rest is vouched', async () => {
    const log = new LogBuilder({ everyMs: 60_000, everyRecords: 100 });
    log.open().checkpoint('admin').records('access', 130, 100);
    const report = await verify(log, { now: log.now + 86_400_000 });
    assert.deepEqual(kinds(report).sort(), [
      'access checkpoint-gap',
      'access unvouched-tail',
      'admin checkpoint-gap',
    ]);
    assert.equal(report.vouched, 100 + log.seq('admin'));
  });

  test('a removed checkpoint breaks the checkpoint chain, and the records it sealed are still vouched by the next', async () => {
    const log = new LogBuilder({ everyMs: 3_600_000, everyRecords: 100 });
    log.open().records('access', 300, 1000).close();
    const files = log
      .files()
      .map((file) =>
        'lines' in file && file.path.endsWith('/access-checkpoints.jsonl')
          ? { ...file, lines: file.lines.toSpliced(2, 1) }
          : file,
      );
    const report = await verifyAuditLog(files, { publicKey: keys.publicKey, now: log.now });
    assert.deepEqual(kinds(report), ['access checkpoint-chain']);
    assert.equal(report.vouched, report.records);
  });
});
