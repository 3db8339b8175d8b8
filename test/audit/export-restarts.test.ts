import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { exportAuditLog, verifyExportManifest } from '../../src/audit/export.js';
import { verifyAuditDirectory, verifyAuditLog } from '../../src/audit/verify.js';
import { LogBuilder } from './log-builder.js';
import { keys } from './trail-fixture.js';

/**
 * `audit export` carries what the verifier reads as notices: a `.torn` file goes out with the chain, `writer.lock`
 * stays behind, outage records and restart checkpoints keep their meaning in the export, and an export taken while a
 * stream is still being written verifies.
 */
function restartedChain(): LogBuilder {
  const log = new LogBuilder({ chain: 'ward-7', everyMs: 60_000, everyRecords: 40 });
  log.open().records('access', 90).records('admin', 6);
  log.outage('access', 2 * 3_600_000).records('access', 30);
  log.close().restart('close', 86_400_000).records('access', 25);
  log.restart('crash', 3_600_000, { tornBytes: 29 }).records('access', 35).records('admin', 3);
  return log.lock();
}

const noticeKinds = (notices: readonly { stream: string; kind: string }[]) =>
  notices.map((n) => `${n.stream} ${n.kind}`);

describe('audit export of a chain with outages, restarts and torn bytes', () => {
  for (const closed of [true, false]) {
    test(`${closed ? 'a closed' : 'an open'} chain exports its torn bytes and no lock, and the export verifies with the same notices`, async () => {
      const log = restartedChain();
      if (closed) log.close();
      const dir = await log.writeTo();
      // With the stream key, as the export checks it: an open stream's tail is vouched by its MACs.
      const source = await verifyAuditDirectory(dir, {
        publicKey: keys.publicKey,
        streamKey: keys.streamKey,
        now: log.now,
      });
      assert.deepEqual(source.findings, []);
      const out = `${dir}-export`;
      const manifest = await exportAuditLog({ dir, out, keys, now: log.now });
      assert.deepEqual(
        manifest.streams.map((s) => [s.stream, s.state]),
        [
          ['access', closed ? 'final' : 'open'],
          ['admin', closed ? 'final' : 'open'],
        ],
      );
      const torn = manifest.files.filter((f) => f.kind === 'torn');
      assert.deepEqual(
        torn.map((f) => [f.path, f.size]),
        [['ward-7/access-000003.torn', 29]],
      );
      const copied = await readdir(join(out, 'ward-7'));
      assert.ok(copied.includes('access-000003.torn'));
      assert.ok(!copied.includes('writer.lock'), 'the lock is no part of the log');
      assert.ok(!manifest.files.some((f) => f.path.endsWith('writer.lock')));

      const checked = await verifyExportManifest(
        await readFile(join(out, 'manifests', `${manifest.id}.json`), 'utf8'),
        keys.publicKey,
        out,
      );
      assert.deepEqual(checked.findings, []);
      const view = await verifyAuditLog(checked.log, {
        publicKey: keys.publicKey,
        exported: checked.exported,
        manifestVouches: checked.signed,
        now: log.now + 86_400_000,
      });
      assert.deepEqual(view.findings, []);
      assert.equal(view.vouched, view.records, 'the export vouches for every record it holds');
      // An open stream's newest records file stays behind; the notices of what went out are the source's.
      assert.deepEqual(noticeKinds(view.notices), noticeKinds(source.notices));
      assert.ok(view.notices.some((n) => n.kind === 'outage'));
      if (!closed) {
        const held = manifest.streams.find((s) => s.stream === 'access')!;
        assert.equal(held.heldBack, 1);
        assert.ok(held.lastSeq < log.seq('access'));
      }
    });
  }
});
