import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { auditKeysFrom } from '../../src/audit/audit-keys.js';
import type { AuditLogFile } from '../../src/audit/read-log.js';
import { type Checkpoint, checkpointSigningInput } from '../../src/audit/record.js';
import { type Finding, verifyAuditDirectory, verifyAuditLog } from '../../src/audit/verify.js';
import { compareWithWitness } from '../../src/audit/witness-check.js';
import { PhiCacheError } from '../../src/errors.js';
import { keys } from './trail-fixture.js';
import { linesOf, WITNESSED_CHAINS, witnessedLog } from './witness-fixture.js';

type Files = { path: string; lines: string[] }[];

/**
 * Mutation probes, part 5 (PHI-AUDIT-01): checkpoints also go to a witness, so a chain or stream deleted whole, or
 * a log whose tail and checkpoints file were cut together, is found by comparing the log with the witness; and a
 * witness of another deployment is a finding, never a pass.
 */
describe('PHI-AUDIT-01 the witness finds what was cut from the log', () => {
  let log: Files;
  let witness: Files;
  let endedAt: number;
  before(async () => {
    const written = await witnessedLog();
    log = await linesOf(written.dir);
    witness = await linesOf(written.witness);
    endedAt = written.endedAt;
  });

  const alone = (files: AuditLogFile[], now = endedAt) =>
    verifyAuditLog(files, { publicKey: keys.publicKey, now });
  const compare = (files: AuditLogFile[], by: AuditLogFile[] = witness): Promise<Finding[]> =>
    compareWithWitness(files, by, keys.publicKey);
  const kinds = (findings: readonly Finding[]) => findings.map((f) => `${f.chain}/${f.stream} ${f.kind}`);

  test('the trail gives the witness every checkpoint of every stream, and the log verifies with it', async () => {
    assert.deepEqual(
      witness.map((f) => f.path),
      WITNESSED_CHAINS.flatMap((chain) => [
        `${chain}/access-checkpoints.jsonl`,
        `${chain}/admin-checkpoints.jsonl`,
      ]),
    );
    for (const file of witness)
      assert.deepEqual(file.lines, log.find((f) => f.path === file.path)?.lines, file.path);
    assert.deepEqual((await alone(log)).findings, []);
    assert.deepEqual(await compare(log), []);
  });

  test('each chain deleted whole: the log alone reads intact, the witness names the chain', async () => {
    for (const chain of WITNESSED_CHAINS) {
      const kept = log.filter((f) => !f.path.startsWith(`${chain}/`));
      assert.equal((await alone(kept)).ok, true, 'the other chain alone is a whole log');
      const findings = await compare(kept);
      assert.deepEqual(kinds(findings), [`${chain}/access witness-chain-missing`]);
    }
  });

  test('each stream deleted whole (records and checkpoints): the witness names the stream', async () => {
    for (const chain of WITNESSED_CHAINS) {
      for (const stream of ['access', 'admin']) {
        const kept = log.filter((f) => !f.path.startsWith(`${chain}/${stream}-`));
        assert.deepEqual(kinds(await compare(kept)), [`${chain}/${stream} witness-stream-missing`]);
      }
    }
  });

  test('each witnessed checkpoint deleted from the log is named, by its line in the witness', async () => {
    let probes = 0;
    for (const file of witness) {
      for (const [i] of file.lines.entries()) {
        const cut = log.map((f) => (f.path === file.path ? { ...f, lines: f.lines.toSpliced(i, 1) } : f));
        const findings = await compare(cut);
        assert.deepEqual(
          findings.map((f) => [f.kind, f.file, f.line]),
          [['witness-checkpoint-missing', file.path, i + 1]],
        );
        probes += 1;
      }
    }
    assert.equal(
      probes,
      16,
      'five access and three admin checkpoints in each of two chains (one of each stream at open)',
    );
  });

  test("each cut of a stream's tail together with its checkpoints: the log alone may pass, the witness does not", async () => {
    let passedAlone = 0;
    for (const file of witness) {
      const [chain, name] = file.path.split('/');
      const stream = name!.split('-')[0]!;
      for (let keep = 1; keep < file.lines.length; keep++) {
        const last = JSON.parse(file.lines[keep - 1]!) as Checkpoint;
        const cut = log.map((f) => {
          if (f.path === file.path) return { ...f, lines: f.lines.slice(0, keep) };
          if (!f.path.startsWith(`${chain}/${stream}-`)) return f;
          return {
            ...f,
            lines: f.lines.filter((line) => (JSON.parse(line) as { seq: number }).seq <= last.seq),
          };
        });
        // Checked when the last kept checkpoint was new, so that it is not overdue.
        if ((await alone(cut, Date.parse(last.ts))).ok) passedAlone += 1;
        const findings = await compare(cut);
        assert.equal(findings.length, file.lines.length - keep, `${file.path} cut after ${keep}`);
        assert.ok(findings.every((f) => f.kind === 'witness-checkpoint-missing' && f.file === file.path));
      }
    }
    assert.ok(passedAlone > 0, 'some cut reads intact to the log alone: the witness is what finds it');
  });

  test('a checkpoint of the log rewritten and re-signed with the signing key contradicts the witness', async () => {
    const file = witness[0]!;
    const i = 2;
    const original = JSON.parse(file.lines[i]!) as Checkpoint;
    const { sig: _sig, ...body } = { ...original, head: 'f'.repeat(64) };
    const forged = {
      ...body,
      sig: sign(null, checkpointSigningInput(body), keys.signingKey).toString('base64'),
    };
    const changed = log.map((f) =>
      f.path === file.path ? { ...f, lines: f.lines.with(i, JSON.stringify(forged)) } : f,
    );
    assert.deepEqual(
      (await compare(changed)).map((f) => [f.kind, f.line, f.seq]),
      [['witness-contradicted', i + 1, original.seq]],
    );
  });

  test('a checkpoint the witness missed (its outage) is no finding: the log may hold more than the witness', async () => {
    for (const file of witness) {
      const sparse = witness.map((f) =>
        f === file ? { ...f, lines: f.lines.filter((_, i) => i % 2 === 0) } : f,
      );
      assert.deepEqual(await compare(log, sparse), [], file.path);
    }
  });

  test('a witness of another deployment (other signing key, same chain names) is a finding on each stream', async () => {
    const other = await witnessedLog({ keys: auditKeysFrom(Buffer.alloc(32, 5), Buffer.alloc(32, 6)) });
    const foreign = await linesOf(other.witness);
    const findings = await compare(log, foreign);
    assert.deepEqual(
      kinds(findings).sort(),
      WITNESSED_CHAINS.flatMap((c) => [`${c}/access witness-signature`, `${c}/admin witness-signature`]),
    );
  });

  test('verifyAuditDirectory reads the witness directory; one without a chain is nothing to compare', async () => {
    const written = await witnessedLog({ events: 120 });
    const options = { publicKey: keys.publicKey, now: written.endedAt };
    const report = await verifyAuditDirectory(written.dir, { ...options, witness: written.witness });
    assert.deepEqual([report.ok, report.chains, report.findings.length], [true, 2, 0]);
    await assert.rejects(
      verifyAuditDirectory(written.dir, { ...options, witness: `${written.dir}-none` }),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_AUDIT_UNAVAILABLE',
    );
    const empty = await mkdtemp(join(tmpdir(), 'phicache-no-witness-'));
    await assert.rejects(
      verifyAuditDirectory(written.dir, { ...options, witness: empty }),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_AUDIT_NOTHING_TO_VERIFY',
    );
  });
});
