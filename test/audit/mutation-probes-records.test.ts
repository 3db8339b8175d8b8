import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { recordHash } from '../../src/audit/record.js';
import { type ProbeLog, probeLog } from './probe-fixture.js';

/**
 * Mutation probes, part 1 (PHI-AUDIT-01): every single-record modification, deletion, duplication and forged
 * insertion of a good log is detected, and the intact log passes. Generated from the log, never picked by hand.
 */
describe('PHI-AUDIT-01 the verifier detects every change, deletion, duplication and insertion', () => {
  let log: ProbeLog;
  before(async () => {
    log = await probeLog();
  });

  test('the intact log passes, with the public key alone and with the stream root', async () => {
    assert.ok(
      log.records.length > 1500,
      `several thousand records (${log.records.length} in the access stream)`,
    );
    assert.ok(log.fileSizes.length >= 5, `spread over several files (${log.fileSizes.length})`);
    assert.ok(log.checkpoints.length >= 8, `and several checkpoints (${log.checkpoints.length})`);
    for (const withRoot of [false, true]) {
      const report = await log.verify(log.records, log.checkpoints, withRoot);
      assert.deepEqual(report.findings, []);
      assert.equal(report.vouched, report.records, 'every record of both streams is vouched for');
    }
  });

  test('every single-record modification (hash left as it was)', async () => {
    for (let i = 0; i < log.records.length; i++) {
      const next = [...log.records];
      next[i] = next[i]!.replace(/"principal":"clinician-(\d+)"/, '"principal":"intruder-$1"');
      assert.notEqual(next[i], log.records[i]);
      await log.assertDetected(`modification of record ${i + 1}`, next);
    }
  });

  test('every single-record modification with its hash recomputed', async () => {
    for (let i = 0; i < log.records.length; i++) {
      const next = [...log.records];
      const record = JSON.parse(next[i]!) as Record<string, unknown>;
      record.outcome = { result: 'error', code: 'FORGED' };
      record.hash = recordHash(record as never);
      next[i] = JSON.stringify(record);
      await log.assertDetected(`rehashed modification of record ${i + 1}`, next);
    }
  });

  test('every single-record deletion', async () => {
    for (let i = 0; i < log.records.length; i++) {
      const next = [...log.records];
      next.splice(i, 1);
      await log.assertDetected(`deletion of record ${i + 1}`, next);
    }
  });

  test('every duplication of a record', async () => {
    for (let i = 0; i < log.records.length; i++) {
      const next = [...log.records];
      next.splice(i + 1, 0, next[i]!);
      await log.assertDetected(`duplication of record ${i + 1}`, next);
    }
  });

  test('every insertion of a forged record (correct link and hash, no valid MAC)', async () => {
    for (let i = 0; i < log.records.length; i++) {
      const next = [...log.records];
      const before = JSON.parse(next[i]!) as Record<string, unknown>;
      const forged: Record<string, unknown> = {
        ...before,
        seq: (before.seq as number) + 1,
        prev: before.hash,
        action: 'delete',
      };
      forged.hash = recordHash(forged as never);
      forged.mac = '00'.repeat(32);
      next.splice(i + 1, 0, JSON.stringify(forged));
      await log.assertDetected(`insertion after record ${i + 1}`, next);
    }
  });
});
