import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent, AuditStream } from '../../src/audit/audit-event.js';
import { auditKeysFrom } from '../../src/audit/audit-keys.js';
import { AuditTrail, type AuditTrailOptions } from '../../src/audit/audit-trail.js';
import { readAuditLog } from '../../src/audit/read-log.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';

export const streamRoot = Buffer.alloc(32, 7);
export const keys = auditKeysFrom(Buffer.alloc(32, 3), streamRoot);

let counter = 0;

/** An access or admin event as PhiCache would emit it, with ids only. */
export function event(stream: AuditStream, ts: number): AuditEvent {
  counter += 1;
  return {
    v: 1,
    stream,
    ts: new Date(ts).toISOString(),
    actor: { service: 'probe', principal: `clinician-${counter % 17}` },
    purpose: 'treatment',
    tenant: 'st-marys',
    class: stream === 'access' ? 'encrypted-phi' : null,
    action: stream === 'access' ? (counter % 2 ? 'get' : 'set') : 'purge.tag',
    key: stream === 'access' ? `hmac-sha256:${counter.toString(36).padStart(43, 'x')}` : null,
    kid: 'local:cache:v1',
    dek: null,
    decision: { effect: 'allow', rule: 'POL-ALLOW-01' },
    outcome:
      stream === 'access' ? { result: counter % 3 ? 'hit' : 'miss' } : { result: 'ok', count: counter % 5 },
  };
}

/** Where the fixtures' clocks start: a fixed instant, so no fixture depends on the day the tests run. */
export const FIXTURE_START = Date.UTC(2026, 10, 23, 9, 30);

/**
 * Writes `count` events through a real trail and file sink; the clock moves `stepMs` per event. `endedAt` is the
 * clock when the trail closed: verify the log at that time, not at the real one.
 */
export async function writeLog(
  count: number,
  options: { stepMs?: number; maxFileBytes?: number; trail?: Partial<AuditTrailOptions> } = {},
) {
  const dir = await mkdtemp(join(tmpdir(), 'phicache-audit-'));
  const clock = { now: FIXTURE_START };
  const sink = new FileSink({ dir, maxFileBytes: options.maxFileBytes ?? 64 * 1024, clock: () => clock.now });
  const trail = new AuditTrail({
    keys,
    sinks: [sink],
    checkpointEveryRecords: 200,
    checkpointEveryMs: 3_600_000,
    clock: () => clock.now,
    ...options.trail,
  });
  // Batches of 100 concurrent writes, as a busy service would make: group commit and file rotation both run.
  for (let i = 0; i < count; i += 100) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + 100); j++) {
      clock.now += options.stepMs ?? 3000;
      batch.push(trail.write(event(j % 5 === 4 ? 'admin' : 'access', clock.now)));
    }
    await Promise.all(batch);
  }
  await trail.close();
  return { dir, files: await readAuditLog(dir), chain: trail.chain, endedAt: clock.now };
}
