import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { AuditLogFile } from '../../src/audit/read-log.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { PhiCacheError } from '../../src/errors.js';
import { type ProbeLog, probeLog } from './probe-fixture.js';
import { keys } from './trail-fixture.js';

/**
 * Mutation probes, part 4 (PHI-AUDIT-01): a chain declares its streams in its opening record, so deleting a whole
 * stream (records, checkpoints or both), or the admin stream that holds the declaration, is a finding; a log
 * with no chain at all is not verified as intact.
 */
describe('PHI-AUDIT-01 a stream deleted whole is found', () => {
  let log: ProbeLog;
  let access: AuditLogFile[];
  before(async () => {
    log = await probeLog();
    access = [];
    let cursor = 0;
    for (const [n, size] of log.fileSizes.entries()) {
      access.push({
        path: `${log.chain}/access-${String(n + 1).padStart(6, '0')}.jsonl`,
        lines: log.records.slice(cursor, cursor + size),
      });
      cursor += size;
    }
    access.push({ path: `${log.chain}/access-checkpoints.jsonl`, lines: log.checkpoints });
  });

  const verify = (files: AuditLogFile[]) =>
    verifyAuditLog(files, {
      publicKey: keys.publicKey,
      now: Date.parse(JSON.parse(log.checkpoints.at(-1)!).ts),
    });

  test('the opening record declares both streams, and the whole log verifies', async () => {
    const opening = JSON.parse((log.adminFiles[0] as { readonly lines: readonly string[] }).lines[0]!);
    assert.equal(opening.action, 'audit.open');
    assert.equal(opening.detail.streams, 'access,admin');
    assert.deepEqual((await verify([...access, ...log.adminFiles])).findings, []);
  });

  test('every deletion of a stream, of its records or of its checkpoints is detected', async () => {
    const isCheckpoints = (f: AuditLogFile) => f.path.endsWith('-checkpoints.jsonl');
    const streams = { access, admin: [...log.adminFiles] };
    for (const [name, files] of Object.entries(streams)) {
      const other = name === 'access' ? streams.admin : streams.access;
      for (const [part, kept] of [
        ['whole stream', []],
        ['records', files.filter(isCheckpoints)],
        ['checkpoints', files.filter((f) => !isCheckpoints(f))],
      ] as const) {
        const report = await verify([...other, ...kept]);
        assert.equal(report.ok, false, `deletion of the ${name} ${part} went undetected`);
        if (part === 'whole stream')
          assert.ok(
            report.findings.some((f) => f.kind === 'stream-missing' && f.stream === name),
            `${name}: ${report.findings.map((f) => f.kind)}`,
          );
      }
    }
  });

  test('a log with no chain is nothing to verify, never intact', async () => {
    await assert.rejects(
      verifyAuditLog([{ path: 'README.txt', text: 'hello' }], { publicKey: keys.publicKey }),
      (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_AUDIT_NOTHING_TO_VERIFY',
    );
  });
});
