import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { verifyAuditDirectory } from '../../src/audit/verify.js';
import { SwitchableSink } from './switchable-sink.js';
import { event, keys, streamRoot } from './trail-fixture.js';

const CHILD = fileURLToPath(new URL('./trail-writer-child.js', import.meta.url));

/** Runs a writer process until it has written 300 records, then kills it with SIGKILL: no close, no final checkpoint. */
async function killMidRun(dir: string, chain: string): Promise<void> {
  const child = spawn(process.execPath, [CHILD, dir, chain, 'write'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the writer exited early (${code})`)));
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      if (text.includes('ready')) {
        child.kill('SIGKILL');
        resolve();
      }
    });
  });
  await exited;
}

async function verify(dir: string) {
  return verifyAuditDirectory(dir, { publicKey: keys.publicKey, streamRoot, now: Date.now() });
}

describe('outages and crashes are evidence, not tampering', () => {
  test('a sink that fails and recovers: the log verifies, the outage is a notice with what it refused, nothing is unvouched', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-outage-'));
    const disk = new SwitchableSink('flaky', new FileSink({ dir }));
    const trail = new AuditTrail({ keys, sinks: [disk], checkpointEveryRecords: 10, chain: 'outage-1' });
    for (let i = 0; i < 25; i += 1) await trail.write(event('access', Date.now()));
    disk.down = true;
    const refused = await Promise.allSettled(
      Array.from({ length: 7 }, () => trail.write(event('access', Date.now()))),
    );
    assert.equal(refused.filter((r) => r.status === 'rejected').length, 7);
    disk.down = false;
    for (let i = 0; i < 15; i += 1) await trail.write(event('access', Date.now()));
    await trail.close();

    const report = await verify(dir);
    assert.deepEqual(report.findings, []);
    assert.equal(report.ok, true);
    const outages = report.notices.filter((n) => n.kind === 'outage');
    assert.equal(outages.length, 1, JSON.stringify(report.notices));
    assert.equal(outages[0]!.stream, 'access');
    assert.equal(outages[0]!.counts.operations ?? outages[0]!.counts.refused, 7);
    // 25 before, the outage record, 15 after: no seq was spent on a refused record.
    assert.equal(outages[0]!.seq, 26);
    assert.equal(report.vouched, report.records);
  });

  for (const chain of ['portal-1', '-']) {
    const how =
      chain === '-'
        ? 'a per-process chain, sealed as an orphan by the next writer'
        : 'a stable chain, taken up again';
    test(`a writer killed mid-run and restarted (${how}): the log verifies, the crash is a notice, every record vouched`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'phicache-crash-'));
      await killMidRun(dir, chain);
      const afterCrash = await verify(dir);
      // Before any restart the crashed chain is not intact: its tail after the last checkpoint is unsealed (with
      // the stream root the MACs vouch for it, but its overdue checkpoint is reported).
      assert.equal(afterCrash.notices.filter((n) => n.kind === 'crash').length, 0);

      const restarted = new AuditTrail({
        keys,
        sinks: [new FileSink({ dir })],
        checkpointEveryRecords: 50,
        ...(chain === '-' ? {} : { chain }),
      });
      const orphans: { chain: string; sealed: boolean }[] = [];
      restarted.on('orphan', (orphan) => orphans.push(orphan));
      for (let i = 0; i < 30; i += 1) await restarted.write(event('access', Date.now()));
      await restarted.close();

      const report = await verify(dir);
      assert.deepEqual(report.findings, [], JSON.stringify(report.findings.slice(0, 3)));
      assert.equal(report.ok, true);
      const crashes = report.notices.filter((n) => n.kind === 'crash');
      assert.ok(crashes.length >= 1, JSON.stringify(report.notices));
      assert.equal(report.vouched, report.records);
      if (chain === '-') {
        assert.equal(orphans.length, 1);
        assert.equal(orphans[0]!.sealed, true);
        assert.equal((await readdir(dir)).length, 2, 'the dead writer chain and the new one');
      } else {
        assert.deepEqual(await readdir(dir), ['portal-1']);
      }
      // Verified with the public key alone, every record up to the last checkpoint is vouched for, and the
      // restart's checkpoints seal the crashed writer's tail, so nothing is left unvouched.
      const publicOnly = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, now: Date.now() });
      assert.equal(publicOnly.ok, true, JSON.stringify(publicOnly.findings.slice(0, 3)));
      assert.equal(publicOnly.vouched, publicOnly.records);
    });
  }
});
