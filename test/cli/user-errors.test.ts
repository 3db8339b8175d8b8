import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CliRun, runCli } from './run-cli.js';

const mainPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** A user error: exit 2, `error ERR_CLI_USAGE: <message>` and a hint, never ERR_INTERNAL nor a stack trace. */
function assertUsageError(run: CliRun, message: RegExp): void {
  assert.equal(run.exitCode, 2, run.stderr);
  assert.match(run.stderr, /^error ERR_CLI_USAGE: /);
  assert.match(run.stderr, message);
  assert.match(run.stderr, /\nhint: \S/);
  assert.doesNotMatch(run.stderr, /ERR_INTERNAL|\n\s+at /);
}

describe('phicache: user errors exit 2 with a clear message', () => {
  let dir: string;
  let fifo: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-cli-errors-'));
    fifo = join(dir, 'fifo');
    await promisify(execFile)('mkfifo', [fifo]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('--version prints the version in package.json', async () => {
    const manifest = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8'));
    const run = await runCli(['--version']);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(run.stdout, `${manifest.version}\n`);
    assert.deepEqual(JSON.parse((await runCli(['--version', '--json'])).stdout), {
      version: manifest.version,
    });
  });

  test('a directory given as a file', async () => {
    assertUsageError(await runCli(['policy', 'lint', dir]), /policy file .* is a directory, not a file/);
    assertUsageError(
      await runCli(['audit', 'verify', dir, '--pubkey', dir]),
      /--pubkey .* is a directory, not a file/,
    );
  });

  test('a FIFO given as a file: refused at once, not read until a writer shows up', async () => {
    assertUsageError(await runCli(['policy', 'lint', fifo]), /policy file .* is not a regular file/);
    assertUsageError(
      await runCli(['ttl-audit', '--redis', 'redis://127.0.0.1:6379', '--tls-ca', fifo]),
      /--tls-ca .* is not a regular file/,
    );
  });

  test('a file given as a directory', async () => {
    assertUsageError(
      await runCli(['audit', 'verify', mainPath, '--pubkey', mainPath]),
      /audit directory .* is not a directory/,
    );
  });

  test('an empty --tenant (an unset shell variable)', async () => {
    assertUsageError(
      await runCli([
        'audit',
        'hash',
        '--tenant',
        '',
        '--class',
        'encrypted-phi',
        '--resource',
        'r',
        '--id',
        'x',
      ]),
      /--tenant is empty/,
    );
  });

  test('a --redis url that is not redis:// or rediss://', async () => {
    assertUsageError(
      await runCli(['ttl-audit', '--redis', 'http://127.0.0.1:6379']),
      /redis:\/\/ or rediss:\/\/ url, not http:/,
    );
    assertUsageError(await runCli(['ttl-audit', '--redis', '127.0.0.1:6379']), /--redis takes a/);
  });

  test('a password inside a --redis url is refused and not echoed (DESIGN.md §9)', async () => {
    const run = await runCli(['ttl-audit', '--redis', 'redis://phicache:hunter2-b7c1@127.0.0.1:6379']);
    assertUsageError(run, /a password inside a --redis url is refused/);
    assert.match(run.stderr, /--password-env/);
    assert.ok(!run.stderr.includes('hunter2-b7c1'));
  });

  test('a closed stdout (`| head -c0`): no stack trace, the exit code of the command', async () => {
    const closedStdout = async (args: readonly string[]) => {
      const child = spawn(process.execPath, [mainPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      // The reading end closes before the CLI has started, so its first write meets a closed pipe.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exitCode = await new Promise<number | null>((resolve) => child.on('close', resolve));
      return { exitCode, stderr };
    };
    const clean = await closedStdout(['policy', 'lint']);
    assert.deepEqual(clean, { exitCode: 0, stderr: '' });
    const usage = await closedStdout(['policy', 'lint', dir, '--json']);
    assert.equal(usage.exitCode, 2);
    assert.match(usage.stderr, /^error ERR_CLI_USAGE: policy file .* is a directory, not a file\nhint: /);
  });
});
