import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { checkXml } from '../helpers/xml-check.js';
import { runCli } from './run-cli.js';

describe('phicache drill rotation (CLI)', () => {
  test('a drill on the embedded store: exit 0, the report on stdout and in <out>; a second drill into <out> is refused (exit 2) and leaves the evidence as it was', async () => {
    const home = await mkdtemp(join(tmpdir(), 'phicache-drill-cli-'));
    const out = join(home, 'evidence', 'drill-1');
    const env = { PHICACHE_HOME: home };
    const args = ['drill', 'rotation', '--duration', '5', '--concurrency', '2', '--out', out];

    const first = await runCli([...args, '--json'], env);
    assert.equal(first.exitCode, 0, first.stdout + first.stderr);
    const printed = JSON.parse(first.stdout) as { verdict: { result: string }; store: string };
    const written = await readFile(join(out, 'report.json'), 'utf8');
    assert.deepEqual(JSON.parse(written), printed, 'stdout and report.json are one report');
    assert.equal(printed.store, 'embedded');
    assert.equal(printed.verdict.result, 'pass');
    checkXml(await readFile(join(out, 'latency.svg'), 'utf8'));
    assert.equal(first.stderr, '', 'no progress on stderr when it is not a terminal');

    const second = await runCli(args, env);
    assert.equal(second.exitCode, 2, second.stdout + second.stderr);
    assert.match(second.stderr, /ERR_CLI_USAGE/);
    assert.match(second.stderr, /already exists: a drill never overwrites its evidence/);
    assert.equal(await readFile(join(out, 'report.json'), 'utf8'), written);
    assert.deepEqual((await readdir(out)).sort(), ['latency.svg', 'report.json']);
  });

  test('flags it cannot use: exit 2 before anything runs', async () => {
    const home = await mkdtemp(join(tmpdir(), 'phicache-drill-cli-'));
    const env = { PHICACHE_HOME: home };
    const noOut = await runCli(['drill', 'rotation'], env);
    assert.equal(noOut.exitCode, 2);
    assert.match(noOut.stderr, /needs --out <dir>/);
    for (const [flag, value] of [
      ['--duration', '2'],
      ['--duration', 'soon'],
      ['--concurrency', '0'],
      ['--sweep-rate', '0'],
    ] as const) {
      const run = await runCli(['drill', 'rotation', '--out', join(home, 'x'), flag, value], env);
      assert.equal(run.exitCode, 2, `${flag} ${value}`);
      assert.match(run.stderr, new RegExp(`${flag} must be an integer`));
    }
    assert.deepEqual(await readdir(home).then((names) => names.filter((n) => n === 'x')), [], 'nothing made');
    await writeFile(join(home, 'a-file'), 'not a directory');
    const notDir = await runCli(['drill', 'rotation', '--out', join(home, 'a-file')], env);
    assert.equal(notDir.exitCode, 2);
    assert.match(notDir.stderr, /--out .* cannot be made a directory \(EEXIST\)/);
  });
});
