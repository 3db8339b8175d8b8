import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultVerifyThreads } from '../../src/audit/verify.js';
import { writeBigLog } from './big-log.js';
import { FIXTURE_START, keys } from './trail-fixture.js';

const child = fileURLToPath(new URL('./verify-rss-child.js', import.meta.url));
const MiB = 1024 * 1024;

describe('the verifier reads audit files in bounded memory', () => {
  let dir: string | undefined;
  after(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  test('a 200 MiB log verifies while the resident set grows by far less than the log', {
    timeout: 120_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-big-'));
    const log = await writeBigLog(dir, {
      keys,
      bytes: 200 * MiB,
      fileBytes: 64 * MiB,
      withoutMacs: true,
      start: FIXTURE_START,
    });
    const out = await new Promise<string>((resolve, reject) =>
      // A young generation of a fixed size: its default differs between Node lines (larger on newer ones) and
      // is garbage-collector slack, not memory the verifier keeps.
      execFile(
        process.execPath,
        ['--max-semi-space-size=8', child, dir!, String(log.endedAt)],
        { maxBuffer: MiB },
        (error, stdout) => (error === null ? resolve(stdout) : reject(error)),
      ),
    );
    const result = JSON.parse(out) as {
      ok: boolean;
      records: number;
      vouched: number;
      rssBefore: number;
      peakRss: number;
    };
    assert.deepEqual([result.ok, result.records, result.vouched], [true, log.records, log.records]);
    // Reading the files whole held at least the log itself (200 MiB of text, more once split and parsed); a
    // chunked reader with a fixed look-back window holds a few chunks, lines and 64 Ki hashes, and each parse
    // thread a heap of its own (about 35 MiB) and its chunks in flight. The bound leaves the garbage collector a
    // wide margin and still fails any design that keeps a file or its records.
    const growth = result.peakRss - result.rssBefore;
    assert.ok(
      growth < (100 + 50 * defaultVerifyThreads()) * MiB,
      `the resident set grew by ${Math.round(growth / MiB)} MiB for a ${Math.round(log.bytes / MiB)} MiB log`,
    );
  });
});
