import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { recordHash, recordMac } from '../../src/audit/record.js';
import { type ProbeLog, probeLog } from './probe-fixture.js';
import { keys } from './trail-fixture.js';

/**
 * Mutation probes, part 2 (PHI-AUDIT-01): every swap of records, truncation before the last checkpoint, removal of
 * a checkpoint, and re-MAC of an old record under a later epoch's key is detected.
 */
describe('PHI-AUDIT-01 the verifier detects every swap, truncation, checkpoint removal and re-MAC', () => {
  let log: ProbeLog;
  before(async () => {
    log = await probeLog();
  });

  test('every swap of two neighbouring records, and generated distant swaps', async () => {
    const swaps: [number, number][] = log.records.slice(1).map((_, i) => [i, i + 1]);
    let seed = 2026;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    while (swaps.length < log.records.length + 300) {
      const [a, b] = [random(log.records.length), random(log.records.length)];
      if (a !== b) swaps.push([a, b]);
    }
    for (const [a, b] of swaps) {
      const next = [...log.records];
      [next[a], next[b]] = [next[b]!, next[a]!];
      await log.assertDetected(`swap of records ${a + 1} and ${b + 1}`, next);
    }
  });

  test('every truncation before the last checkpoint', async () => {
    const lastCovered = Math.max(...log.checkpoints.map((line) => JSON.parse(line).seq as number));
    assert.equal(lastCovered, log.records.length, 'the final checkpoint covers the whole log');
    for (let keep = 0; keep < lastCovered; keep++) {
      const report = await log.assertDetected(`truncation to ${keep} records`, log.records.slice(0, keep));
      assert.ok(report.findings.some((f) => f.kind === 'truncated'));
    }
  });

  test('every removal of a checkpoint, with the public key alone and with the stream root', async () => {
    for (let j = 0; j < log.checkpoints.length; j++) {
      const without = log.checkpoints.filter((_, k) => k !== j);
      await log.assertDetected(`removal of checkpoint ${j + 1}`, log.records, without);
      const report = await log.assertDetected(
        `removal of checkpoint ${j + 1} (root)`,
        log.records,
        without,
        true,
      );
      // An inner checkpoint breaks the checkpoint chain; the final one leaves an open chain with an overdue checkpoint.
      const expected = j < log.checkpoints.length - 1 ? 'checkpoint-chain' : 'checkpoint-gap';
      assert.ok(
        report.findings.some((f) => f.kind === expected),
        `checkpoint ${j + 1}: ${report.findings.map((f) => f.kind)}`,
      );
    }
  });

  test('every re-MAC of an old record under a later epoch key, named as such with the stream root', async () => {
    const latestEpoch = Math.max(...log.records.map((line) => JSON.parse(line).mk as number));
    assert.ok(
      latestEpoch > Math.min(...log.records.map((line) => JSON.parse(line).mk as number)),
      'several epochs',
    );
    let probed = 0;
    for (let i = 0; i < log.records.length; i++) {
      const record = JSON.parse(log.records[i]!) as Record<string, unknown>;
      if ((record.mk as number) >= latestEpoch) continue;
      // The attacker holds the later epoch's key and re-vouches for an altered old record with it.
      const altered: Record<string, unknown> = { ...record, mk: latestEpoch, outcome: { result: 'miss' } };
      altered.hash = recordHash(altered as never);
      altered.mac = recordMac(keys.streamKey(latestEpoch), altered.hash as string);
      const next = [...log.records];
      next[i] = JSON.stringify(altered);
      await log.assertDetected(`re-MAC of record ${i + 1}`, next);
      const report = await log.assertDetected(
        `re-MAC of record ${i + 1} (root)`,
        next,
        log.checkpoints,
        true,
      );
      assert.ok(report.findings.some((f) => f.kind === 'mac-epoch'));
      probed += 1;
    }
    assert.ok(probed > 500, `records of earlier epochs were probed (${probed})`);
  });
});
