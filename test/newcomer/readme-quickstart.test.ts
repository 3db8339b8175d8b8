import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/** The first code block under `## Quickstart`, exactly as a reader copies it. */
async function quickstartBlock(): Promise<string> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const section = readme.split(/^## Quickstart$/m)[1];
  assert.ok(section !== undefined, 'README.md has a Quickstart section');
  const block = /^```ts\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(block !== null, 'the Quickstart has a ts code block');
  return block[1]!;
}

describe('README quickstart', () => {
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  test('runs as pasted against the built package, in a fresh PHICACHE_HOME, and ends with close()', async () => {
    const code = await quickstartBlock();
    const lines = code.trim().split('\n');
    assert.match(lines.at(-1)!, /^await cache\.close\(\);/);

    // A project of the reader's: the snippet as a module, and phicache installed (here, linked to this build).
    const project = await mkdtemp(join(tmpdir(), 'phicache-quickstart-'));
    dirs.push(project);
    await mkdir(join(project, 'node_modules'));
    await symlink(root, join(project, 'node_modules', 'phicache'), 'dir');
    await writeFile(join(project, 'quickstart.mjs'), code);
    const home = join(project, 'home');

    const { exitCode, stdout, stderr } = await new Promise<{
      exitCode: number | null;
      stdout: string;
      stderr: string;
    }>((resolve) => {
      execFile(
        process.execPath,
        ['quickstart.mjs'],
        {
          cwd: project,
          timeout: 30_000,
          env: { ...process.env, PHICACHE_HOME: home, NODE_ENV: 'development' },
        },
        (error, out, err) =>
          resolve({ exitCode: error === null ? 0 : (error.code as number | null), stdout: out, stderr: err }),
      );
    });
    assert.equal(exitCode, 0, stderr);
    assert.equal(stderr, '');
    assert.equal(stdout, '');
    // close() ended the audit trail: the log it leaves has its final checkpoints.
    const [chain] = await readdir(join(home, 'audit'));
    assert.ok(chain !== undefined, 'an audit chain was written');
    const files = await readdir(join(home, 'audit', chain));
    assert.ok(files.includes('access-checkpoints.jsonl'), files.join(', '));
  });
});
