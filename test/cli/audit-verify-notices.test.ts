import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { LogBuilder } from '../audit/log-builder.js';
import { keys } from '../audit/trail-fixture.js';
import { runCli } from './run-cli.js';

/**
 * `audit verify` prints what the writer recorded about itself (an outage, a restart, a crash, torn bytes) as
 * notes, counts them, and keeps exit 0 when there is nothing else; `--json` carries them. The log is closed, so
 * the day the test runs does not matter.
 */
describe('phicache audit verify: notices', () => {
  let dir: string;
  let pubkey: string;
  before(async () => {
    const log = new LogBuilder({ chain: 'ward-5', everyMs: 60_000, everyRecords: 40 });
    log.open().records('access', 60).outage('access', 3_600_000).records('access', 20);
    log.close().restart('close', 86_400_000).records('access', 10);
    log.restart('crash', 600_000, { tornBytes: 21 }).records('access', 10).close().lock();
    dir = await log.writeTo();
    pubkey = join(dir, '..', `${dir.split('/').at(-1)}.pub`);
    await writeFile(pubkey, keys.publicKey.export({ format: 'pem', type: 'spki' }));
  });

  test('only notices: exit 0, a note line for each, counted in the summary, and in --json', async () => {
    const text = await runCli(['audit', 'verify', dir, '--pubkey', pubkey]);
    assert.equal(text.exitCode, 0, text.stdout + text.stderr);
    const notes = text.stdout.split('\n').filter((line) => line.startsWith('note: '));
    assert.deepEqual(
      notes.map((line) => / (outage|restart|crash|torn-bytes): /.exec(line)?.[1]),
      ['outage', 'restart', 'crash', 'restart', 'crash', 'torn-bytes'],
    );
    assert.match(notes[0]!, /^note: ward-5\/access-000002\.jsonl:1 seq 61 outage: /);
    assert.match(
      text.stdout,
      /intact; 1 chains, \d+ records \(\d+ vouched for\), \d+ checkpoints, 6 notices$/m,
    );
    const json = await runCli(['audit', 'verify', dir, '--pubkey', pubkey, '--json']);
    assert.equal(json.exitCode, 0);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      findings: unknown[];
      notices: { kind: string; counts: Record<string, number> }[];
    };
    assert.deepEqual([report.ok, report.findings.length], [true, 0]);
    assert.deepEqual(
      report.notices.map((n) => n.kind),
      ['outage', 'restart', 'crash', 'restart', 'crash', 'torn-bytes'],
    );
    assert.deepEqual(report.notices.at(-1)!.counts, { bytes: 21 });
  });

  test('notices beside a finding: exit 1, and the notes are still printed', async () => {
    const file = join(dir, 'ward-5', 'access-000001.jsonl');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('"result":"hit"', '"result":"miss"'));
    try {
      const run = await runCli(['audit', 'verify', dir, '--pubkey', pubkey]);
      assert.equal(run.exitCode, 1);
      assert.match(run.stdout, /access-000001\.jsonl:\d+ seq \d+ modified: /);
      assert.equal(run.stdout.split('\n').filter((line) => line.startsWith('note: ')).length, 6);
      assert.match(run.stdout, /FAIL \(\d+ problems in the log\); .* 6 notices$/m);
    } finally {
      await writeFile(file, original);
    }
  });
});
