import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { auditKeysFrom } from '../../src/audit/audit-keys.js';
import { keys } from '../audit/trail-fixture.js';
import { witnessedLog } from '../audit/witness-fixture.js';
import { runCli } from './run-cli.js';

describe('phicache audit verify --witness', () => {
  let dir: string;
  let witness: string;
  let pubkey: string;
  before(async () => {
    ({ dir, witness } = await witnessedLog({ events: 120 }));
    pubkey = join(witness, '..', `${witness.split('/').at(-1)}.pub`);
    await writeFile(pubkey, keys.publicKey.export({ format: 'pem', type: 'spki' }));
  });

  test('the log with its own witness: exit 0, intact', async () => {
    const run = await runCli(['audit', 'verify', dir, '--pubkey', pubkey, '--witness', witness]);
    assert.equal(run.exitCode, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /intact; 2 chains/);
  });

  test('a chain deleted whole: exit 1, and the finding names the chain the witness knows', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'phicache-cut-'));
    await cp(dir, copy, { recursive: true });
    await rm(join(copy, 'chain-b'), { recursive: true });
    const alone = await runCli(['audit', 'verify', copy, '--pubkey', pubkey]);
    assert.equal(alone.exitCode, 0, 'without the witness the remaining chain reads intact');
    const run = await runCli(['audit', 'verify', copy, '--pubkey', pubkey, '--witness', witness, '--json']);
    assert.equal(run.exitCode, 1, run.stderr);
    const findings = (JSON.parse(run.stdout) as { findings: { kind: string; chain: string }[] }).findings;
    assert.deepEqual(
      findings.map((f) => [f.kind, f.chain]),
      [['witness-chain-missing', 'chain-b']],
    );
    const text = await runCli(['audit', 'verify', copy, '--pubkey', pubkey, '--witness', witness]);
    assert.match(text.stdout, /chain-b\/access witness-chain-missing: .*chain-b/);
  });

  test('a witness of another deployment: exit 1, witness-signature', async () => {
    const other = await witnessedLog({
      events: 120,
      keys: auditKeysFrom(Buffer.alloc(32, 5), Buffer.alloc(32, 6)),
    });
    const run = await runCli([
      'audit',
      'verify',
      dir,
      '--pubkey',
      pubkey,
      '--witness',
      other.witness,
      '--json',
    ]);
    assert.equal(run.exitCode, 1, run.stderr);
    const findings = (JSON.parse(run.stdout) as { findings: { kind: string }[] }).findings;
    assert.ok(findings.length > 0 && findings.every((f) => f.kind === 'witness-signature'), run.stdout);
  });

  test('could not run: exit 2 for a witness with no chain, a file, a missing path, or with --manifest', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'phicache-empty-witness-'));
    const cases: [string[], string][] = [
      [[dir, '--witness', empty], 'ERR_AUDIT_NOTHING_TO_VERIFY'],
      [[dir, '--witness', pubkey], 'ERR_CLI_USAGE'],
      [[dir, '--witness', join(empty, 'nowhere')], 'ERR_AUDIT_UNAVAILABLE'],
      [['--manifest', pubkey, '--witness', witness], 'ERR_CLI_USAGE'],
    ];
    // Every chain deleted: still "could not run", and the hint names the chains the witness knows.
    const bare = await mkdtemp(join(tmpdir(), 'phicache-bare-'));
    const none = await runCli(['audit', 'verify', bare, '--pubkey', pubkey, '--witness', witness, '--json']);
    assert.equal(none.exitCode, 2);
    assert.match(
      (JSON.parse(none.stdout) as { error: { hint: string } }).error.hint,
      /2 chains \(chain-a, chain-b\)/,
    );
    for (const [args, code] of cases) {
      const run = await runCli(['audit', 'verify', ...args, '--pubkey', pubkey, '--json']);
      assert.equal(run.exitCode, 2, `${args.join(' ')}: ${run.stdout}`);
      assert.equal((JSON.parse(run.stdout) as { error: { code: string } }).error.code, code, args.join(' '));
    }
  });
});
