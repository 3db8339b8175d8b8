import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditKeys } from '../../src/audit/audit-keys.js';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { readAuditLog } from '../../src/audit/read-log.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { event, FIXTURE_START, keys } from './trail-fixture.js';

export const WITNESSED_CHAINS = ['chain-a', 'chain-b'] as const;

/**
 * Two chains written through real trails and file sinks into one audit directory, each also giving its
 * checkpoints to one witness directory. The clock is injected and moves 2 s per event; `endedAt` is the clock when
 * the last trail closed.
 */
export async function witnessedLog(options: { keys?: AuditKeys; events?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'phicache-witnessed-'));
  const witness = await mkdtemp(join(tmpdir(), 'phicache-witness-'));
  const clock = { now: FIXTURE_START };
  for (const chain of WITNESSED_CHAINS) {
    const trail = new AuditTrail({
      keys: options.keys ?? keys,
      sinks: [new FileSink({ dir, maxFileBytes: 16 * 1024, clock: () => clock.now })],
      witness,
      chain,
      checkpointEveryRecords: 60,
      checkpointEveryMs: 3_600_000,
      clock: () => clock.now,
    });
    for (let i = 0; i < (options.events ?? 300); i++) {
      clock.now += 2000;
      // Awaited one by one, so that each stream's checkpoints fall at the same records in every run.
      await trail.write(event(i % 4 === 3 ? 'admin' : 'access', clock.now));
    }
    await trail.close();
  }
  return { dir, witness, endedAt: clock.now };
}

/** A directory's files in memory, as lines, for probes that remove or rewrite some of them. */
export async function linesOf(dir: string): Promise<{ path: string; lines: string[] }[]> {
  return (await readAuditLog(dir)).map((file) => {
    const text = 'text' in file ? file.text : '';
    return { path: file.path, lines: text.split('\n').filter((line) => line !== '') };
  });
}
