import assert from 'node:assert/strict';
import {
  type AuditLogFile,
  type ParsedLine,
  type VerifyReport,
  verifyAuditLog,
} from '../../src/audit/verify.js';
import { keys, streamRoot, writeLog } from './trail-fixture.js';

/**
 * A good log for the mutation probes (several thousand records across files and checkpoints) and helpers that
 * verify mutated copies of its access stream. Lines are kept as the same string objects across probes, so the
 * verifier's parse cache makes each probe cost a walk of the chain, not a re-parse.
 */
export interface ProbeLog {
  /** The access records in chain order. */
  readonly records: readonly string[];
  /** The access checkpoint lines. */
  readonly checkpoints: readonly string[];
  /** How many records each access file holds, in order. */
  readonly fileSizes: readonly number[];
  readonly chain: string;
  /** The admin stream's files, as written: the access probes carry them unchanged. */
  readonly adminFiles: readonly AuditLogFile[];
  verify(
    records: readonly string[],
    checkpoints?: readonly string[],
    withRoot?: boolean,
    admin?: readonly AuditLogFile[],
  ): Promise<VerifyReport>;
  assertDetected(
    what: string,
    records: readonly string[],
    checkpoints?: readonly string[],
    withRoot?: boolean,
  ): Promise<VerifyReport>;
}

export async function probeLog(): Promise<ProbeLog> {
  const { files, chain, endedAt } = await writeLog(2500, { maxFileBytes: 96 * 1024 });
  const split = (file: { text: string }) => file.text.trimEnd().split('\n');
  const recordFiles = files.filter((f) => /\/access-\d{6}\.jsonl$/.test(f.path)) as {
    path: string;
    text: string;
  }[];
  const checkpointFile = files.find((f) => f.path.endsWith('/access-checkpoints.jsonl')) as { text: string };
  const fileSizes = recordFiles.map((f) => split(f).length);
  const records = recordFiles.flatMap(split);
  const checkpoints = split(checkpointFile);
  const adminFiles = files
    .filter((f) => /\/admin-[^/]*\.jsonl$/.test(f.path))
    .map((f) => ({ path: f.path, lines: split(f as { text: string }) }));
  const cache = new Map<string, ParsedLine>();
  // An auditor checks the log a day after its writer closed it, at a fixed time: a chain that lost its final
  // checkpoint is then an open chain whose last checkpoint is overdue, whatever day the tests run.
  const checkedAt = endedAt + 24 * 3_600_000;

  const verify = (
    next: readonly string[],
    nextCheckpoints: readonly string[] = checkpoints,
    withRoot = false,
    admin: readonly AuditLogFile[] = adminFiles,
  ) => {
    // The mutated records laid back into files of the original sizes; the last file takes any extra lines.
    const log: AuditLogFile[] = [];
    let cursor = 0;
    for (const [n, size] of fileSizes.entries()) {
      const end = n === fileSizes.length - 1 ? next.length : cursor + size;
      log.push({
        path: `${chain}/access-${String(n + 1).padStart(6, '0')}.jsonl`,
        lines: next.slice(cursor, end),
      });
      cursor = end;
    }
    log.push({ path: `${chain}/access-checkpoints.jsonl`, lines: nextCheckpoints }, ...admin);
    return verifyAuditLog(log, {
      publicKey: keys.publicKey,
      cache,
      now: checkedAt,
      ...(withRoot ? { streamRoot } : {}),
    });
  };

  return {
    records,
    checkpoints,
    fileSizes,
    chain,
    adminFiles,
    verify,
    async assertDetected(what, next, nextCheckpoints = checkpoints, withRoot = false) {
      const report = await verify(next, nextCheckpoints, withRoot);
      assert.equal(report.ok, false, `${what} went undetected`);
      return report;
    },
  };
}
