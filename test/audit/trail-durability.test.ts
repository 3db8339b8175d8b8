import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtemp, stat } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { SwitchableSink } from './switchable-sink.js';
import { event, keys } from './trail-fixture.js';

/** Every fdatasync of this process, in order: the file, its size when the sync began, and when it ended. */
const syncLog: { path: string; size: number; phase: 'start' | 'done' }[] = [];
const realFdatasync = fs.fdatasync;
fs.fdatasync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
  const path = fs.readlinkSync(`/proc/self/fd/${fd}`);
  const size = fs.fstatSync(fd).size;
  syncLog.push({ path, size, phase: 'start' });
  realFdatasync(fd, (error) => {
    if (error === null) syncLog.push({ path, size, phase: 'done' });
    callback(error);
  });
}) as typeof fs.fdatasync;
syncBuiltinESMExports();

const syncedUpTo = (path: string) =>
  Math.max(0, ...syncLog.filter((s) => s.path === path && s.phase === 'done').map((s) => s.size));

async function trailIn(options: Partial<ConstructorParameters<typeof AuditTrail>[0]> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'phicache-durability-'));
  const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })], chain: 'levels', ...options });
  await trail.checkpoint();
  return { dir, trail, file: (name: string) => join(dir, 'levels', name) };
}

describe('AuditTrail durability levels', () => {
  test('admin records are durable by default: the write answers after an fdatasync that carried the record', async () => {
    const { trail, file } = await trailIn();
    for (let i = 0; i < 3; i++) {
      await trail.write(event('admin', Date.now()));
      const size = (await stat(file('admin-000001.jsonl'))).size;
      assert.ok(
        syncedUpTo(file('admin-000001.jsonl')) >= size,
        `synced ${syncedUpTo(file('admin-000001.jsonl'))} of ${size}`,
      );
    }
    await trail.close();
  });

  test('access records are written by default: they are in the file when the write answers, and on disk before any checkpoint covers them', async () => {
    const { trail, file } = await trailIn({ syncEveryMs: 1000 });
    await trail.write(event('access', Date.now()));
    const records = file('access-000001.jsonl');
    const size = (await stat(records)).size;
    assert.ok(size > 0, 'the record is in the file');
    await trail.checkpoint();
    const recordsSynced = syncLog.findIndex(
      (s) => s.path === records && s.phase === 'done' && s.size >= size,
    );
    const checkpointStarted = syncLog.findLastIndex(
      (s) => s.path === file('access-checkpoints.jsonl') && s.phase === 'start',
    );
    assert.ok(recordsSynced >= 0, 'the records were synced');
    assert.ok(recordsSynced < checkpointStarted, 'before the checkpoint that covers them was written');
    await trail.close();
  });

  test('durable group commit: callers that write together share one fdatasync', async () => {
    const { trail, file } = await trailIn({ durability: 'durable' });
    await trail.write(event('access', Date.now()));
    const records = file('access-000001.jsonl');
    const before = syncLog.filter((s) => s.path === records && s.phase === 'start').length;
    await Promise.all(Array.from({ length: 64 }, () => trail.write(event('access', Date.now()))));
    const syncs = syncLog.filter((s) => s.path === records && s.phase === 'start').length - before;
    assert.equal(syncs, 1, '64 records, one batch, one fdatasync');
    assert.ok(syncedUpTo(records) >= (await stat(records)).size);
    await trail.close();
  });

  test('durability and syncEveryMs are validated at construction', () => {
    const sinks = [new SwitchableSink('a')];
    assert.throws(() => new AuditTrail({ keys, sinks, durability: 'fast' as never }), TypeError);
    assert.throws(
      () => new AuditTrail({ keys, sinks, durability: { access: 'durable', audit: 'written' } as never }),
      TypeError,
    );
    assert.throws(() => new AuditTrail({ keys, sinks, durability: { admin: 'later' as never } }), TypeError);
    assert.throws(() => new AuditTrail({ keys, sinks, syncEveryMs: 0 }), RangeError);
    assert.throws(() => new AuditTrail({ keys, sinks, syncEveryMs: 1001 }), RangeError);
    assert.throws(() => new AuditTrail({ keys, sinks, syncEveryMs: 2.5 }), RangeError);
  });
});
