// Verification speed of an audit log: writes a valid chain of realistic access records (sealed and MACed, and
// checkpoints signed, with the trail's own functions; 8 MiB files, a checkpoint every 1,000 records), then times
// verifyAuditLog over the files on disk, as `phicache audit verify` reads them: with the public key alone, and with
// the stream root (every MAC and epoch too). Prints the median of the runs, in wall time and in this process's CPU
// time (the libuv threads that read the files included).
//
// Needs the built tests (npm run build in the repository root), which hold the generator.
// Knobs (environment): BENCH_VERIFY_RECORDS records to write (default 100,000; at least 50,000),
// BENCH_VERIFY_RUNS timed runs of each kind (default 5).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { writeBigLog } = await import(join(root, 'build/test/audit/big-log.js'));
const { keys, streamRoot, FIXTURE_START } = await import(join(root, 'build/test/audit/trail-fixture.js'));
const { listAuditLog } = await import(join(root, 'build/src/audit/read-log.js'));
const { verifyAuditLog } = await import(join(root, 'build/src/audit/verify.js'));

const RECORDS = Math.max(50_000, Number(process.env.BENCH_VERIFY_RECORDS ?? 100_000));
const RUNS = Math.max(1, Number(process.env.BENCH_VERIFY_RUNS ?? 5));
/** A generated access line is about 645 bytes: the generator stops at a byte count. */
const LINE_BYTES = 645;

const dir = await mkdtemp(join(tmpdir(), 'phicache-bench-verify-'));
try {
  const log = await writeBigLog(dir, {
    keys,
    bytes: RECORDS * LINE_BYTES,
    fileBytes: 8 * 1024 * 1024,
    start: FIXTURE_START,
  });
  const files = await listAuditLog(dir);
  const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
  const time = async (options) => {
    const runs = [];
    const cpu = [];
    let report;
    for (let i = 0; i < RUNS; i++) {
      const start = performance.now();
      const cpu0 = process.cpuUsage();
      report = await verifyAuditLog(files, {
        ...options,
        now: log.endedAt,
        ...(process.env.BENCH_VERIFY_THREADS ? { threads: Number(process.env.BENCH_VERIFY_THREADS) } : {}),
      });
      const used = process.cpuUsage(cpu0);
      runs.push(performance.now() - start);
      cpu.push((used.user + used.system) / 1000);
    }
    if (!report.ok || report.vouched !== log.records)
      throw new Error(`the generated log does not verify: ${JSON.stringify(report.findings[0])}`);
    return { wall: median(runs), cpu: median(cpu) };
  };
  // One untimed run first, so that the JIT has seen the verifier's paths.
  await time({ publicKey: keys.publicKey });
  const pub = await time({ publicKey: keys.publicKey });
  const mac = await time({ publicKey: keys.publicKey, streamRoot });
  const rate = (ms) => Math.round((log.records / ms) * 1000).toLocaleString('en-US');
  console.log(
    `${log.records} records, ${(log.bytes / 1024 ** 2).toFixed(1)} MiB in ${files.length} files; median of ${RUNS} runs`,
  );
  // The CPU time of this process as well: on a machine others share, wall time also counts their work.
  for (const [name, run] of [
    ['public key alone', pub],
    ['with stream root', mac],
  ]) {
    console.log(
      `${name}: ${run.wall.toFixed(0)} ms, ${rate(run.wall)} records/s (CPU ${run.cpu.toFixed(0)} ms, ${rate(run.cpu)} records per CPU second)`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
