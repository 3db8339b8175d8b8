import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openAuditKeys } from '../../src/audit/audit-keys.js';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import {
  AuditLogInvalidError,
  type ExportManifest,
  exportAuditLog,
  verifyExportManifest,
} from '../../src/audit/export.js';
import { readAuditLog } from '../../src/audit/read-log.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { PhiCacheError } from '../../src/errors.js';
import { LocalKeyring } from '../../src/keys/providers/local-keyring.js';
import { runCli } from '../cli/run-cli.js';
import { event, FIXTURE_START, keys, streamRoot, writeLog } from './trail-fixture.js';

const temps: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'phicache-export-'));
  temps.push(dir);
  return dir;
};

after(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

const readManifest = (out: string, manifest: ExportManifest) =>
  readFile(join(out, 'manifests', `${manifest.id}.json`), 'utf8');

/** Flips one character in the middle of a file that the export left read-only. */
async function tamper(path: string): Promise<void> {
  await chmod(path, 0o600);
  const text = await readFile(path, 'utf8');
  const at = Math.floor(text.length / 2);
  await writeFile(path, `${text.slice(0, at)}${text[at] === '0' ? '1' : '0'}${text.slice(at + 1)}`);
}

/** A trail whose writer is still running: rotated records files, checkpoints, no final checkpoint. */
async function openLog(count: number) {
  const dir = await tempDir();
  const clock = { now: FIXTURE_START };
  const sink = new FileSink({ dir, maxFileBytes: 8 * 1024, clock: () => clock.now });
  const trail = new AuditTrail({
    keys,
    sinks: [sink],
    checkpointEveryRecords: 50,
    checkpointEveryMs: 3_600_000,
    clock: () => clock.now,
  });
  const write = async (n: number) => {
    for (let i = 0; i < n; i += 25) {
      const batch: Promise<void>[] = [];
      for (let j = 0; j < 25; j++) {
        clock.now += 3000;
        batch.push(trail.write(event(j % 5 === 4 ? 'admin' : 'access', clock.now)));
      }
      await Promise.all(batch);
    }
    await trail.checkpoint();
  };
  await write(count);
  return { dir, trail, clock, write };
}

describe('exportAuditLog', () => {
  test('a closed chain exports whole, verifies with verifyAuditLog, and the signed manifest vouches for each file', async () => {
    const log = await writeLog(2000, { maxFileBytes: 16 * 1024 });
    const out = await tempDir();
    const now = Date.UTC(2026, 10, 24);
    const manifest = await exportAuditLog({ dir: log.dir, out, keys, now });

    const source = (await readdir(join(log.dir, log.chain))).sort();
    assert.ok(source.filter((name) => name.startsWith('access-0')).length >= 3, 'the log rotated');
    assert.deepEqual((await readdir(join(out, log.chain))).sort(), source);
    assert.deepEqual(manifest.chains, [log.chain]);
    assert.deepEqual(
      manifest.streams.map((s) => [s.stream, s.state, s.heldBack]),
      [
        ['access', 'final', 0],
        ['admin', 'final', 0],
      ],
    );
    assert.equal(manifest.exportedAt, new Date(now).toISOString());
    assert.equal(manifest.kid, keys.signingKid);
    for (const stream of ['access', 'admin'] as const) {
      // The records files of a stream follow one another with no gap in seq.
      const records = manifest.files.filter((f) => f.stream === stream && f.kind === 'records');
      assert.equal(records[0]?.firstSeq, 1);
      for (let i = 1; i < records.length; i++)
        assert.equal(records[i]?.firstSeq, records[i - 1]!.lastSeq! + 1);
      assert.equal(records.at(-1)?.lastSeq, manifest.streams.find((s) => s.stream === stream)?.lastSeq);
    }

    const exported = await verifyAuditLog(await readAuditLog(out), {
      publicKey: keys.publicKey,
      now: log.endedAt,
    });
    assert.deepEqual(exported.findings, []);
    assert.equal(exported.records, 2000 + 1);
    assert.equal(exported.vouched, exported.records);

    const report = await verifyExportManifest(await readManifest(out, manifest), keys.publicKey, out);
    assert.deepEqual(report.findings, []);
    assert.equal(report.files, source.length);
    assert.deepEqual(
      (await verifyAuditLog(report.log, { publicKey: keys.publicKey, now: log.endedAt })).findings,
      [],
    );
    assert.equal(((await stat(join(out, manifest.files[0]!.path))).mode & 0o777).toString(8), '400');
  });

  test('a modified exported file, a missing one and a modified or foreign-signed manifest are each detected', async () => {
    const log = await writeLog(600, { maxFileBytes: 8 * 1024 });
    const out = await tempDir();
    const manifest = await exportAuditLog({ dir: log.dir, out, keys });
    const text = await readManifest(out, manifest);
    const [first, second] = manifest.files;

    await tamper(join(out, first!.path));
    await unlink(join(out, second!.path));
    const report = await verifyExportManifest(text, keys.publicKey, out);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.findings.map((f) => [f.kind, f.path]),
      [
        ['modified', first!.path],
        ['missing', second!.path],
      ],
    );
    assert.equal(report.log.length, manifest.files.length - 2);
    assert.equal(
      (await verifyAuditLog(await readAuditLog(out), { publicKey: keys.publicKey, now: log.endedAt })).ok,
      false,
    );

    const listed = JSON.parse(text) as { files: { sha256: string }[]; exportedAt: string };
    // A manifest edited to match the tampered file, and one back-dated, no longer verify.
    listed.files[0]!.sha256 = '0'.repeat(64);
    const edited = await verifyExportManifest(JSON.stringify(listed), keys.publicKey, out);
    assert.ok(edited.findings.some((f) => f.kind === 'manifest-signature'));
    const backdated = await verifyExportManifest(
      text.replace(manifest.exportedAt, '2020-01-01T00:00:00.000Z'),
      keys.publicKey,
      out,
    );
    assert.deepEqual(
      backdated.findings.map((f) => f.kind),
      ['manifest-signature', 'modified', 'missing'],
    );

    const other = generateKeyPairSync('ed25519').publicKey;
    const foreign = await verifyExportManifest(text, other, out);
    assert.deepEqual(foreign.findings.map((f) => f.kind).slice(0, 2), ['manifest-signature', 'manifest-kid']);

    const garbage = await verifyExportManifest('{"format":"nope"}', keys.publicKey, out);
    assert.deepEqual(
      garbage.findings.map((f) => f.kind),
      ['manifest-unparseable'],
    );
  });

  test('a manifest path that leaves the export directory is reported and never read', async () => {
    const log = await writeLog(100);
    const out = await tempDir();
    const manifest = await exportAuditLog({ dir: log.dir, out, keys });
    const listed = JSON.parse(await readManifest(out, manifest)) as { files: { path: string }[] };
    listed.files[0]!.path = '../../etc/passwd';
    const report = await verifyExportManifest(JSON.stringify(listed), keys.publicKey, out);
    assert.deepEqual(
      report.findings.map((f) => f.kind),
      ['manifest-signature', 'unsafe-path'],
    );
  });

  test('exporting again writes no data file twice and adds a manifest listing the same files', async () => {
    const log = await writeLog(600, { maxFileBytes: 8 * 1024 });
    const out = await tempDir();
    const first = await exportAuditLog({ dir: log.dir, out, keys });
    const before = await Promise.all(first.files.map((f) => stat(join(out, f.path))));
    const second = await exportAuditLog({ dir: log.dir, out, keys });
    const afterwards = await Promise.all(first.files.map((f) => stat(join(out, f.path))));
    assert.deepEqual(
      afterwards.map((s) => [s.ino, s.mtimeMs]),
      before.map((s) => [s.ino, s.mtimeMs]),
    );
    assert.deepEqual(second.files, first.files);
    assert.notEqual(second.id, first.id);
    assert.equal((await readdir(join(out, 'manifests'))).length, 2);
    for (const manifest of [first, second]) {
      const report = await verifyExportManifest(await readManifest(out, manifest), keys.publicKey, out);
      assert.deepEqual(report.findings, []);
    }
  });

  test('other content already at a target is refused with ERR_AUDIT_EXPORT_CONFLICT before anything is written', async () => {
    const log = await writeLog(600, { maxFileBytes: 8 * 1024 });
    const out = await tempDir();
    const target = join(out, log.chain, 'access-000002.jsonl');
    await mkdir(join(out, log.chain));
    await writeFile(target, '{"not":"this"}\n');
    await assert.rejects(exportAuditLog({ dir: log.dir, out, keys }), (error: unknown) => {
      assert.ok(error instanceof PhiCacheError);
      assert.equal(error.code, 'ERR_AUDIT_EXPORT_CONFLICT');
      assert.match(error.message, /access-000002\.jsonl \(different content\)/);
      assert.match(error.hint, /write-once/);
      return true;
    });
    assert.deepEqual(await readdir(out), [log.chain]);
    assert.deepEqual(await readdir(join(out, log.chain)), ['access-000002.jsonl']);

    // An export that died mid-write leaves a prefix of the right bytes: still refused, but named for what it is.
    const whole = await readFile(join(log.dir, log.chain, 'access-000002.jsonl'));
    await writeFile(target, whole.subarray(0, 100));
    await assert.rejects(exportAuditLog({ dir: log.dir, out, keys }), /an incomplete copy of this file/);
  });

  test('an open chain holds back its newest records file and exports a checkpoint snapshot that later exports never collide with', async () => {
    const live = await openLog(400);
    const out = await tempDir();
    const chain = live.trail.chain;
    const source = (await readdir(join(live.dir, chain))).sort();
    const newestAccess = source.filter((name) => /^access-\d{6}\.jsonl$/.test(name)).at(-1)!;

    const first = await exportAuditLog({ dir: live.dir, out, keys, now: live.clock.now });
    const access = first.streams.find((s) => s.stream === 'access')!;
    assert.deepEqual([access.state, access.heldBack], ['open', 1]);
    assert.ok(!first.files.some((f) => f.path === `${chain}/${newestAccess}`));
    const snapshot = first.files.find((f) => f.stream === 'access' && f.kind === 'checkpoints')!;
    assert.match(snapshot.path, /\/access-checkpoints-\d{6}\.jsonl$/);
    // Named so that the verifier reads it: a snapshot must be the first lines of the stream's longest checkpoints file.
    assert.equal(snapshot.logPath, snapshot.path);
    assert.ok(snapshot.lastSeq! <= access.lastSeq, 'no checkpoint points past the exported records');

    // The manifest's view of the export is a log the verifier accepts; the stream root vouches for the records
    // after the last checkpoint kept.
    const report = await verifyExportManifest(await readManifest(out, first), keys.publicKey, out);
    assert.deepEqual(report.findings, []);
    const view = await verifyAuditLog(report.log, {
      publicKey: keys.publicKey,
      streamRoot,
      now: live.clock.now,
    });
    assert.deepEqual(view.findings, []);
    assert.equal(view.vouched, view.records);
    // With the public key alone, the signed manifest vouches for the records after the snapshot's last checkpoint
    // (the export checked their MACs before it signed); the same view without the manifest cannot.
    const byManifest = await verifyAuditLog(report.log, {
      publicKey: keys.publicKey,
      exported: report.exported,
      manifestVouches: report.signed,
      now: live.clock.now + 86_400_000,
    });
    assert.deepEqual(byManifest.findings, []);
    assert.equal(byManifest.vouched, byManifest.records);
    const alone = await verifyAuditLog(report.log, { publicKey: keys.publicKey, now: live.clock.now });
    assert.deepEqual([...new Set(alone.findings.map((f) => f.kind))], ['unvouched-tail']);
    const pubkey = join(out, '..', `${basename(out)}.pub`);
    await writeFile(pubkey, keys.publicKey.export({ format: 'pem', type: 'spki' }));
    const cli = await runCli([
      'audit',
      'verify',
      '--manifest',
      join(out, 'manifests', `${first.id}.json`),
      '--pubkey',
      pubkey,
    ]);
    assert.equal(cli.exitCode, 0, cli.stdout + cli.stderr);
    assert.match(cli.stdout, /intact/);

    // The writer goes on and closes; the next export finds every earlier file unchanged and adds the rest.
    await live.write(200);
    await live.trail.close();
    const second = await exportAuditLog({ dir: live.dir, out, keys });
    assert.ok(second.streams.every((s) => s.state === 'final' && s.heldBack === 0));
    assert.ok(second.files.some((f) => f.path === `${chain}/${newestAccess}`));
    const whole = await verifyAuditLog(await readAuditLog(out), {
      publicKey: keys.publicKey,
      now: live.clock.now,
    });
    assert.deepEqual(whole.findings, []);
    assert.equal(whole.records, 1 + 400 + 200);

    // The earlier snapshot stays beside the whole checkpoints file, and must stay its first lines.
    const snapshotPath = join(out, snapshot.path);
    await chmod(snapshotPath, 0o600);
    const lines = (await readFile(snapshotPath, 'utf8')).trimEnd().split('\n');
    await writeFile(snapshotPath, `${lines.slice(0, -1).join('\n')}\n${lines[0]}\n`);
    const forked = await verifyAuditLog(await readAuditLog(out), {
      publicKey: keys.publicKey,
      now: live.clock.now,
    });
    assert.deepEqual(
      forked.findings.map((f) => [f.kind, f.file]),
      [['checkpoint-snapshot', snapshot.path]],
    );
  });

  test('an open chain whose last checkpoint is long overdue counts as abandoned and exports whole', async () => {
    const live = await openLog(200);
    const out = await tempDir();
    const overdue = live.clock.now + 2 * 3_600_000 + 5000 + 60_000 + 1;
    const manifest = await exportAuditLog({ dir: live.dir, out, keys, now: overdue });
    assert.ok(manifest.streams.every((s) => s.state === 'abandoned' && s.heldBack === 0));
    const whole = await verifyAuditLog(await readAuditLog(out), {
      publicKey: keys.publicKey,
      streamRoot,
      now: overdue,
    });
    // The verifier agrees that the writer stopped without closing, and nothing else.
    assert.deepEqual([...new Set(whole.findings.map((f) => f.kind))], ['checkpoint-gap']);
    await live.trail.close();
  });

  test('an audit directory that cannot be read is ERR_AUDIT_UNAVAILABLE', async () => {
    const out = await tempDir();
    await assert.rejects(
      exportAuditLog({ dir: join(out, 'nowhere'), out, keys }),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_AUDIT_UNAVAILABLE',
    );
  });

  test('a log that does not verify is refused with its findings, and nothing is written', async () => {
    const log = await writeLog(300, { maxFileBytes: 8 * 1024 });
    const file = join(log.dir, log.chain, 'access-000001.jsonl');
    const original = await readFile(file, 'utf8');
    // One character of a key hash written as an escape: the same value to a parser, not the same line.
    await writeFile(file, original.replace('"key":"hmac-sha256:', '"key":"hmac-sha256\\u003a'));
    const out = await tempDir();
    await assert.rejects(exportAuditLog({ dir: log.dir, out, keys }), (error: unknown) => {
      assert.ok(error instanceof AuditLogInvalidError);
      assert.equal(error.code, 'ERR_AUDIT_LOG_INVALID');
      assert.ok(
        error.findings.some(
          (f) => f.kind === 'non-canonical' && f.file === `${log.chain}/access-000001.jsonl`,
        ),
      );
      return true;
    });
    assert.deepEqual(await readdir(out), []);
  });

  test('an export directory equal to the audit directory or inside it is refused', async () => {
    const log = await writeLog(50);
    for (const out of [log.dir, join(log.dir, 'export'), join(log.dir, log.chain, '..', 'x')]) {
      await assert.rejects(exportAuditLog({ dir: log.dir, out, keys }), RangeError);
    }
    assert.deepEqual((await readdir(log.dir)).sort(), [log.chain]);
  });
});

describe('phicache audit export', () => {
  test('exports with the signing key of PHICACHE_HOME: exit 0, and 2 without keys, flags or on a conflict', async () => {
    const home = await tempDir();
    const homeKeys = await openAuditKeys({
      provider: await LocalKeyring.open({ home, env: {}, domain: 'audit' }),
      home,
    });
    const log = await writeLog(600, { maxFileBytes: 8 * 1024, trail: { keys: homeKeys } });
    const out = join(await tempDir(), 'retention');
    const previousHome = process.env.PHICACHE_HOME;
    // runCli's child inherits this process's environment.
    process.env.PHICACHE_HOME = home;
    try {
      const run = await runCli(['audit', 'export', log.dir, '--out', out, '--json']);
      assert.equal(run.exitCode, 0, run.stderr);
      const data = JSON.parse(run.stdout) as { manifestPath: string; manifest: ExportManifest };
      assert.equal(data.manifest.kid, homeKeys.signingKid);
      const report = await verifyExportManifest(
        await readFile(data.manifestPath, 'utf8'),
        homeKeys.publicKey,
        out,
      );
      assert.deepEqual(report.findings, []);
      assert.deepEqual(
        (await verifyAuditLog(await readAuditLog(out), { publicKey: homeKeys.publicKey, now: log.endedAt }))
          .findings,
        [],
      );

      const pubkey = join(home, 'audit-signing.pub');
      // --manifest: 0 for the export as written (1 once a file it lists changed, 2 for no manifest: below).
      const intact = await runCli([
        'audit',
        'verify',
        '--manifest',
        data.manifestPath,
        '--pubkey',
        pubkey,
        '--json',
      ]);
      assert.equal(intact.exitCode, 0, intact.stdout);
      const text = await runCli(['audit', 'export', log.dir, '--out', out]);
      assert.equal(text.exitCode, 0, text.stderr);
      assert.match(text.stdout, /\/access: records up to seq \d+ \(final\)/);
      assert.match(
        text.stdout,
        /files \(\d+ bytes\) of 1 chains; manifest .*manifests\/.*\.json signed by ed25519:/,
      );

      const noOut = await runCli(['audit', 'export', log.dir, '--json']);
      assert.equal(noOut.exitCode, 2);
      assert.equal((JSON.parse(noOut.stdout) as { error: { code: string } }).error.code, 'ERR_CLI_USAGE');

      await tamper(join(out, log.chain, 'access-000001.jsonl'));
      const conflict = await runCli(['audit', 'export', log.dir, '--out', out]);
      assert.equal(conflict.exitCode, 2);
      assert.match(
        conflict.stderr,
        /error ERR_AUDIT_EXPORT_CONFLICT: .*access-000001\.jsonl \(different content\)/,
      );
      assert.match(conflict.stderr, /hint: Exported files are write-once/);

      const empty = await tempDir();
      process.env.PHICACHE_HOME = empty;
      const keyless = await runCli(['audit', 'export', log.dir, '--out', join(empty, 'out')]);
      assert.equal(keyless.exitCode, 2);
      assert.match(keyless.stderr, /error ERR_AUDIT_UNAVAILABLE: no audit keys under/);
      assert.deepEqual(await readdir(empty), [], 'no key was made for the occasion');
      process.env.PHICACHE_HOME = home;

      const missing = await runCli([
        'audit',
        'verify',
        '--manifest',
        join(out, 'nope.json'),
        '--pubkey',
        pubkey,
      ]);
      assert.equal(missing.exitCode, 2);
      const tampered = await runCli([
        'audit',
        'verify',
        '--manifest',
        data.manifestPath,
        '--pubkey',
        pubkey,
        '--json',
      ]);
      assert.equal(tampered.exitCode, 1, 'access-000001.jsonl was tampered with above');
      assert.ok(
        (JSON.parse(tampered.stdout) as { manifestFindings: { kind: string }[] }).manifestFindings.some(
          (f) => f.kind === 'modified',
        ),
      );

      // An output inside the input: exit 2. A log that does not verify: exit 1, nothing written.
      const inside = await runCli(['audit', 'export', log.dir, '--out', join(log.dir, 'exports')]);
      assert.equal(inside.exitCode, 2);
      assert.match(inside.stderr, /ERR_CLI_USAGE: --out .* inside it/);
      const recordsFile = join(log.dir, log.chain, 'access-000002.jsonl');
      const records = await readFile(recordsFile, 'utf8');
      await writeFile(recordsFile, records.replace('"result":"hit"', '"result":"miss"'));
      const fresh = join(await tempDir(), 'fresh');
      const refused = await runCli(['audit', 'export', log.dir, '--out', fresh, '--json']);
      assert.equal(refused.exitCode, 1, refused.stderr);
      assert.ok(
        (JSON.parse(refused.stdout) as { findings: { kind: string }[] }).findings.some(
          (f) => f.kind === 'modified',
        ),
      );
      await assert.rejects(readdir(fresh), { code: 'ENOENT' });
    } finally {
      if (previousHome === undefined) delete process.env.PHICACHE_HOME;
      else process.env.PHICACHE_HOME = previousHome;
    }
  });
});
