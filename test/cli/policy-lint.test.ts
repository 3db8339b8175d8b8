import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { commands } from '../../src/cli/commands/index.js';
import { policyLintCommand } from '../../src/cli/commands/policy-lint.js';
import { PhiCacheError } from '../../src/errors.js';
import { runCli } from './run-cli.js';

const DAY = 86_400_000;

function policyWithException(expires: Date): string {
  return `version: 1
classes:
  chart:
    description: PHI fragments
    phi: true
    cacheable: true
    maxTtlSeconds: 300
exceptions:
  - id: EXC-7
    class: chart
    owner: clinical-apps
    reason: Ward rounds
    compensatingControl: Shared screens lock
    expires: ${expires.toISOString()}
    allow: { maxTtlSeconds: 900 }
`;
}

interface JsonReport {
  source: string;
  ok: boolean;
  findings: { severity: string; rule: string; path: string; line: number | null; message: string }[];
}

interface JsonError {
  error: { code: string; message: string; hint: string };
}

describe('phicache policy lint', () => {
  let dir: string;
  const files = { soon: '', expired: '', schema: '', missing: '' };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-cli-'));
    files.soon = join(dir, 'soon.yaml');
    files.expired = join(dir, 'expired.yaml');
    files.schema = join(dir, 'schema.yaml');
    files.missing = join(dir, 'missing.yaml');
    await writeFile(files.soon, policyWithException(new Date(Date.now() + 7 * DAY)));
    await writeFile(files.expired, policyWithException(new Date(Date.now() - DAY)));
    await writeFile(
      files.schema,
      'version: 1\nclasses:\n  chart:\n    description: x\n    phi: true\n    cacheable: yes\n',
    );
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('exit 0 for the default policy when no file is given', async () => {
    const run = await runCli(['policy', 'lint']);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.match(run.stdout, /default\.yaml: ok \(0 errors, 0 warnings\)/);
    const json = await runCli(['policy', 'lint', '--json']);
    assert.equal(json.exitCode, 0);
    assert.deepEqual((JSON.parse(json.stdout) as JsonReport).findings, []);
  });

  test('POL-EXC-02: exit 0 when the only findings are warnings', async () => {
    const run = await runCli(['policy', 'lint', files.soon]);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.match(run.stdout, /:14 warning POL-EXC-02 exceptions\[0\]\.expires: exception EXC-7 expires/);
    const json = await runCli(['policy', 'lint', files.soon, '--json']);
    assert.equal(json.exitCode, 0);
    const report = JSON.parse(json.stdout) as JsonReport;
    assert.equal(report.ok, true);
    assert.deepEqual(
      report.findings.map((f) => [f.severity, f.rule, f.line]),
      [['warning', 'POL-EXC-02', 14]],
    );
  });

  test('POL-EXC-01: exit 1 for an expired exception, as text and as JSON', async () => {
    const run = await runCli(['policy', 'lint', files.expired]);
    assert.equal(run.exitCode, 1);
    assert.match(run.stdout, /:14 error POL-EXC-01 exceptions\[0\]\.expires/);
    assert.match(run.stdout, /FAIL \(1 error, 0 warnings\)/);
    const json = await runCli(['policy', 'lint', '--json', files.expired]);
    assert.equal(json.exitCode, 1);
    const report = JSON.parse(json.stdout) as JsonReport;
    assert.equal(report.ok, false);
    assert.equal(report.source, files.expired);
    assert.equal(report.findings[0]?.rule, 'POL-EXC-01');
  });

  test('POL-SCHEMA-01: exit 1 for a schema error, with its line', async () => {
    const run = await runCli(['policy', 'lint', files.schema]);
    assert.equal(run.exitCode, 1);
    assert.match(run.stdout, /schema\.yaml:6 error POL-SCHEMA-01 classes\.chart\.cacheable/);
    const json = await runCli(['policy', 'lint', files.schema, '--json']);
    assert.equal(json.exitCode, 1);
    const report = JSON.parse(json.stdout) as JsonReport;
    assert.ok(report.findings.some((f) => f.path === 'classes.chart.cacheable' && f.line === 6));
  });

  test('exit 2 for a missing file: code, message and hint on stderr; a JSON error with --json', async () => {
    const run = await runCli(['policy', 'lint', files.missing]);
    assert.equal(run.exitCode, 2);
    assert.equal(run.stdout, '');
    assert.match(
      run.stderr,
      /^error ERR_POLICY_INVALID: policy .*missing\.yaml cannot be read \(ENOENT\)\nhint: /,
    );
    const json = await runCli(['policy', 'lint', files.missing, '--json']);
    assert.equal(json.exitCode, 2);
    const parsed = JSON.parse(json.stdout) as JsonError;
    assert.equal(parsed.error.code, 'ERR_POLICY_INVALID');
    assert.ok(parsed.error.hint.length > 0);
  });

  test('exit 2 for an unknown flag, an unknown command, or too many files: ERR_CLI_USAGE', async () => {
    for (const args of [
      ['policy', 'lint', '--frob'],
      ['policy', 'lnt'],
      ['policy', 'lint', files.soon, files.expired],
      [],
    ]) {
      const run = await runCli(args);
      assert.equal(run.exitCode, 2, args.join(' '));
      assert.match(run.stderr, /^error ERR_CLI_USAGE: .*\nhint: Run `phicache --help`/);
      const json = await runCli([...args, '--json']);
      assert.equal(json.exitCode, 2);
      assert.equal((JSON.parse(json.stdout) as JsonError).error.code, 'ERR_CLI_USAGE');
    }
  });

  test('--help and help list the commands; command help works both ways', async () => {
    for (const args of [['--help'], ['help'], ['-h']]) {
      const run = await runCli(args);
      assert.equal(run.exitCode, 0);
      assert.match(run.stdout, /policy lint +Check a policy file/);
    }
    const json = await runCli(['--help', '--json']);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { commands: { name: string }[] }).commands.map((c) => c.name),
      commands.map((c) => c.name.join(' ')),
    );
    for (const args of [
      ['help', 'policy', 'lint'],
      ['policy', 'lint', '--help'],
    ]) {
      const run = await runCli(args);
      assert.equal(run.exitCode, 0);
      assert.match(run.stdout, /^Usage: phicache policy lint \[file\] \[--json\]/);
    }
  });

  test('the handler returns data and an exit code without printing', async () => {
    const result = await policyLintCommand.handler({}, [files.expired]);
    assert.equal(result.exitCode, 1);
    assert.equal((result.data as JsonReport).ok, false);
    await assert.rejects(policyLintCommand.handler({}, [files.missing]), PhiCacheError);
  });
});
