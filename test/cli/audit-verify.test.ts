import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { keys, streamRoot, writeLog } from '../audit/trail-fixture.js';
import { runCli } from './run-cli.js';

describe('phicache audit verify', () => {
  let dir: string;
  let chain: string;
  let pubkey: string;
  before(async () => {
    ({ dir, chain } = await writeLog(600));
    pubkey = join(dir, 'audit-signing.pub');
    await writeFile(pubkey, keys.publicKey.export({ format: 'pem', type: 'spki' }));
  });

  test('an intact log: exit 0, a summary, and JSON with zero findings', async () => {
    const text = await runCli(['audit', 'verify', dir, '--pubkey', pubkey]);
    assert.equal(text.exitCode, 0, text.stderr);
    assert.match(text.stdout, /intact; 1 chains, 601 records \(601 vouched for\)/);
    const json = await runCli(['audit', 'verify', dir, '--pubkey', pubkey, '--json']);
    const report = JSON.parse(json.stdout) as { ok: boolean; findings: unknown[]; records: number };
    // 600 events and the trail's own audit.open record.
    assert.deepEqual([report.ok, report.findings.length, report.records], [true, 0, 601]);
  });

  test('with the stream root in an environment variable, MACs are checked too; a wrong root fails', async () => {
    const good = await runCli(['audit', 'verify', dir, '--pubkey', pubkey, '--stream-key-env', 'ROOT'], {
      ROOT: streamRoot.toString('base64'),
    });
    assert.equal(good.exitCode, 0, good.stdout);
    const bad = await runCli(
      ['audit', 'verify', dir, '--pubkey', pubkey, '--stream-key-env', 'ROOT', '--json'],
      {
        ROOT: Buffer.alloc(32, 9).toString('base64'),
      },
    );
    assert.equal(bad.exitCode, 1);
    assert.ok(
      (JSON.parse(bad.stdout) as { findings: { kind: string }[] }).findings.some((f) => f.kind === 'mac-bad'),
    );
  });

  test('a modified line: exit 1, and the finding names the file, line and reason', async () => {
    const file = join(dir, chain, 'access-000001.jsonl');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('"result":"hit"', '"result":"miss"'));
    try {
      const run = await runCli(['audit', 'verify', dir, '--pubkey', pubkey, '--json']);
      assert.equal(run.exitCode, 1);
      const findings = (
        JSON.parse(run.stdout) as { findings: { kind: string; file: string; line: number }[] }
      ).findings;
      assert.equal(findings[0]?.kind, 'modified');
      assert.equal(findings[0]?.file, `${chain}/access-000001.jsonl`);
      assert.ok((findings[0]?.line ?? 0) >= 1);
    } finally {
      await writeFile(file, original);
    }
  });

  test('--threads: parse threads give the report of one thread, on an intact and a modified log; a bad count is exit 2', async () => {
    const file = join(dir, chain, 'access-000001.jsonl');
    const original = await readFile(file, 'utf8');
    const reports = async () =>
      Promise.all(
        ['0', '2'].map(async (threads) => {
          const run = await runCli([
            'audit',
            'verify',
            dir,
            '--pubkey',
            pubkey,
            '--threads',
            threads,
            '--json',
          ]);
          return { exitCode: run.exitCode, report: JSON.parse(run.stdout) as Record<string, unknown> };
        }),
      );
    const [one, two] = await reports();
    assert.equal(one?.exitCode, 0);
    assert.deepEqual(two, one);
    const lines = original.split('\n');
    lines.splice(3, 1);
    await writeFile(file, lines.join('\n'));
    try {
      const [oneBad, twoBad] = await reports();
      assert.equal(oneBad?.exitCode, 1);
      assert.ok(((oneBad?.report.findings ?? []) as unknown[]).length > 0);
      assert.deepEqual(twoBad, oneBad);
    } finally {
      await writeFile(file, original);
    }
    for (const bad of ['-1', '257', '1.5', 'many', '0x2']) {
      const run = await runCli(['audit', 'verify', dir, '--pubkey', pubkey, `--threads=${bad}`]);
      assert.equal(run.exitCode, 2, bad);
      assert.match(run.stderr, /--threads must be an integer in 0\.\.256/);
    }
  });

  test('could not run: exit 2 for a missing --pubkey, a bad key file or a missing directory', async () => {
    assert.equal((await runCli(['audit', 'verify', dir])).exitCode, 2);
    assert.equal((await runCli(['audit', 'verify', dir, '--pubkey', join(dir, 'nope.pub')])).exitCode, 2);
    const missing = await runCli(['audit', 'verify', join(dir, 'nowhere'), '--pubkey', pubkey, '--json']);
    assert.equal(missing.exitCode, 2);
    assert.equal(
      (JSON.parse(missing.stdout) as { error: { code: string } }).error.code,
      'ERR_AUDIT_UNAVAILABLE',
    );
  });

  test('the wrong directory is exit 2, "nothing to verify", never "intact; 0 chains"', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'phicache-empty-'));
    // A PHICACHE_HOME: a keyring folder and the audit folder, but no chain directly under it.
    const home = await mkdtemp(join(tmpdir(), 'phicache-home-'));
    await mkdir(join(home, 'keyring'));
    await mkdir(join(home, 'audit', 'some-chain'), { recursive: true });
    for (const wrong of [empty, home, '/etc']) {
      const run = await runCli(['audit', 'verify', wrong, '--pubkey', pubkey]);
      assert.equal(run.exitCode, 2, `${wrong}: ${run.stdout}${run.stderr}`);
      assert.match(run.stderr, /ERR_AUDIT_NOTHING_TO_VERIFY: nothing to verify/);
      assert.doesNotMatch(run.stdout, /intact/);
    }
    const json = await runCli(['audit', 'verify', home, '--pubkey', pubkey, '--json']);
    const error = (JSON.parse(json.stdout) as { error: { code: string; hint: string } }).error;
    assert.equal(error.code, 'ERR_AUDIT_NOTHING_TO_VERIFY');
    assert.match(error.hint, /audit may be the audit directory/);
  });

  test('a stream deleted whole from a chain: exit 1, stream-missing', async () => {
    const names = (await readdir(join(dir, chain))).filter((name) => name.startsWith('access-'));
    const aside = await mkdtemp(join(tmpdir(), 'phicache-aside-'));
    for (const name of names) await rename(join(dir, chain, name), join(aside, name));
    try {
      const run = await runCli(['audit', 'verify', dir, '--pubkey', pubkey, '--json']);
      assert.equal(run.exitCode, 1, run.stderr);
      const findings = (JSON.parse(run.stdout) as { findings: { kind: string; stream: string }[] }).findings;
      assert.deepEqual(
        findings.map((f) => [f.kind, f.stream]),
        [['stream-missing', 'access']],
      );
    } finally {
      for (const name of names) await rename(join(aside, name), join(dir, chain, name));
    }
  });
});
