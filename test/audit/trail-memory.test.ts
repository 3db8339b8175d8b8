import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { event, keys } from './trail-fixture.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MiB = 1024 * 1024;

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Writes `count` records from 64 callers at once, as a busy service does: batches of 64, a checkpoint every 100. */
async function writeRecords(trail: AuditTrail, count: number): Promise<void> {
  for (let done = 0; done < count; done += 64) {
    await Promise.all(Array.from({ length: 64 }, () => trail.write(event('access', Date.now()))));
  }
}

describe('the audit trail keeps nothing of what it has written', () => {
  test('50,000 records and 500 checkpoints later the heap is where it was: no batch outlives its flush', {
    timeout: 120_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-trail-memory-'));
    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })], checkpointEveryRecords: 100 });
    try {
      await writeRecords(trail, 10_000);
      const before = heapAfterGc();
      await writeRecords(trail, 50_000);
      const grown = heapAfterGc() - before;
      // Each batch's text is about 45 KB; one kept per checkpoint would be over 20 MiB here.
      assert.ok(grown < 4 * MiB, `the heap grew by ${(grown / MiB).toFixed(1)} MiB`);
    } finally {
      await trail.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
