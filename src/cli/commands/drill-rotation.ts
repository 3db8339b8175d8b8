import { access, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PhiCacheError } from '../../errors.js';
import type { DrillReport, DrillStoreKind } from '../../ops/drill/drill-report.js';
import { runRotationDrill } from '../../ops/drill/rotation-drill.js';
import { keysetFlag, keysetHelp } from '../keyset-flag.js';
import { cacheFlags, cacheFlagsHelp, openCacheFromFlags } from '../open-cache.js';
import { redisConnectionFlags, redisConnectionHelp } from '../redis-connection.js';
import type { Command, CommandResult, CommandValues } from './command.js';

const REPORT = 'report.json';
const CHART = 'latency.svg';

export const drillRotationCommand: Command = {
  name: ['drill', 'rotation'],
  summary: 'Rotate the cache KEK under a mixed workload and write the evidence (report.json, latency chart)',
  help: [
    'Usage: phicache drill rotation --out <dir> [--duration <s>] [--concurrency <n>] [--keyset <file>]',
    '       [connection flags] [--policy <file>] [--audit-dir <dir>] [--sweep-rate <n>] [--json]',
    '',
    'Runs concurrent callers (getOrSet, get, set, delete, purgeTag; fresh and short-lived entries, tags) against',
    'the store while it rotates the cache KEK as an operator would: publish a new version, wait until every',
    'instance has seen it, promote it; rewrap every data key record under it; sweep the entries onto the new data',
    'keys. The phases: 30% of --duration before, the rotation (at least 40%, longer if it takes longer), 30% after.',
    'Every value names its entry and version, so a read that returns another entry, an older version, or an entry',
    'that was purged, deleted or expired is counted as a wrong value.',
    '',
    `Writes <out>/${REPORT} (throughput, p50/p99/max latency and hit rate per phase, errors, wrong values, the KEK`,
    `versions and data key records before and after, the time of every phase and step, the verdict) and`,
    `<out>/${CHART} (latency over time, phases shaded, steps marked). Evidence is never overwritten: a directory`,
    `that already holds ${REPORT} or ${CHART} is refused. The rotation is real and audited on the admin stream.`,
    '',
    '  --out <dir>              where the report and chart go (created if missing)',
    '  --duration <s>           planned length in seconds, default 60 (at least 5)',
    '  --concurrency <n>        concurrent callers, default 16 (1..1024)',
    '  --sweep-rate <n>         rate limit of the re-encryption sweep, entries per second (default unlimited)',
    keysetHelp,
    cacheFlagsHelp,
    redisConnectionHelp,
    '  (no connection flag: the embedded store of this process)',
    '',
    'Exit codes: 0 pass, 1 an error, a wrong value, or a rotation that failed or did not end on the new version',
    '(p99 during the rotation above 1.5 times p99 before is reported as a finding and does not change the exit',
    'code), 2 could not run (bad flags, evidence already in <out>, unreachable server).',
  ].join('\n'),
  options: {
    ...redisConnectionFlags,
    ...keysetFlag,
    ...cacheFlags,
    out: { type: 'string' },
    duration: { type: 'string' },
    concurrency: { type: 'string' },
    'sweep-rate': { type: 'string' },
  },
  async handler(values, positionals): Promise<CommandResult> {
    if (positionals.length > 0)
      throw new PhiCacheError('ERR_CLI_USAGE', 'drill rotation takes no positional arguments');
    if (typeof values.out !== 'string')
      throw new PhiCacheError('ERR_CLI_USAGE', 'drill rotation needs --out <dir>');
    const out = values.out;
    const durationS = integerFlag(values.duration, '--duration', 60, 5, 86_400);
    const concurrency = integerFlag(values.concurrency, '--concurrency', 16, 1, 1024);
    const sweepRate =
      values['sweep-rate'] === undefined
        ? undefined
        : integerFlag(values['sweep-rate'], '--sweep-rate', 0, 1, 10_000_000);
    // Refused before anything runs: a rotation is real, and its evidence must not replace an earlier drill's.
    for (const file of [REPORT, CHART]) await refuseExisting(join(out, file));
    try {
      await mkdir(out, { recursive: true });
    } catch (error) {
      throw new PhiCacheError(
        'ERR_CLI_USAGE',
        `--out ${out} cannot be made a directory (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: error, hint: 'Give --out a directory this process may create and write.' },
      );
    }

    const opened = await openCacheFromFlags(values, 'phicache-drill');
    const progress = process.stderr.isTTY
      ? (line: string) => process.stderr.write(`drill: ${line}\n`)
      : undefined;
    let report: DrillReport;
    let chart: string;
    try {
      ({ report, chart } = await runRotationDrill({
        cache: opened.cache,
        store: storeKind(values),
        durationMs: durationS * 1000,
        concurrency,
        ...(sweepRate === undefined ? {} : { reencryptRatePerSecond: sweepRate }),
        ...(progress === undefined ? {} : { onProgress: progress }),
      }));
    } finally {
      await opened.close();
    }
    // `wx`: should another drill have written here meanwhile, this one fails rather than overwrite it.
    await writeFile(join(out, REPORT), `${JSON.stringify(report, null, 2)}\n`, { flag: 'wx' });
    await writeFile(join(out, CHART), chart, { flag: 'wx' });
    return {
      exitCode: report.verdict.result === 'pass' ? 0 : 1,
      data: report,
      text: render(report, out),
    };
  },
};

function storeKind(values: CommandValues): DrillStoreKind {
  if (values.sentinel !== undefined) return 'redis sentinel';
  if (values.cluster === true) return 'redis cluster';
  if (values.redis !== undefined) return 'redis standalone';
  return 'embedded';
}

function integerFlag(value: unknown, flag: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new PhiCacheError('ERR_CLI_USAGE', `${flag} must be an integer in ${min}..${max}`);
  }
  return n;
}

async function refuseExisting(path: string): Promise<void> {
  const exists = await access(path).then(
    () => true,
    () => false,
  );
  if (exists) {
    throw new PhiCacheError(
      'ERR_CLI_USAGE',
      `${path} already exists: a drill never overwrites its evidence`,
      {
        hint: 'Give --out a new directory for each drill.',
      },
    );
  }
}

function render(report: DrillReport, out: string): string {
  const lines = [
    `drill rotation on ${report.store}, concurrency ${report.concurrency}, ${report.startedAt} to ${report.endedAt}`,
    `KEK ${report.keys.from ?? '?'} -> ${report.keys.to ?? '?'} (active after: ${report.keys.activeAfter ?? 'none'}), generation ${report.keys.generationBefore} -> ${report.keys.generationAfter}`,
  ];
  if (report.keys.rewrap !== null) {
    const r = report.keys.rewrap;
    lines.push(
      `rewrap: ${r.found} data key records, ${r.rewrapped} rewrapped, ${r.failed} failed, ${r.ms} ms`,
    );
  }
  if (report.keys.reencrypt !== null) {
    const parts = report.keys.reencrypt.partitions
      .filter((p) => p.scanned > 0)
      .map((p) => `${p.className} ${p.reencrypted}/${p.scanned}`);
    lines.push(`re-encrypt sweep: ${parts.join(', ') || 'nothing to move'}, ${report.keys.reencrypt.ms} ms`);
  }
  for (const p of report.phases) {
    lines.push(
      `${p.name.padEnd(6)} ${p.seconds.toFixed(1).padStart(6)} s  ${String(p.throughputPerSecond).padStart(7)} ops/s  p50 ${p.p50Ms} ms  p99 ${p.p99Ms} ms  max ${p.maxMs} ms  hit rate ${p.hitRate === null ? '-' : `${(p.hitRate * 100).toFixed(1)}%`}  errors ${p.errors}  wrong values ${p.wrongValues}`,
    );
  }
  for (const d of report.duringSteps) {
    lines.push(
      `  ${`${d.from} -> ${d.to}`.padEnd(34)} ${d.seconds.toFixed(1).padStart(6)} s  ${String(d.throughputPerSecond).padStart(7)} ops/s  p50 ${d.p50Ms} ms  p99 ${d.p99Ms} ms  max ${d.maxMs} ms`,
    );
  }
  lines.push(`p99 during / before: ${report.p99Ratio ?? '-'}`);
  for (const finding of report.verdict.findings) lines.push(`finding: ${finding}`);
  for (const reason of report.verdict.reasons) lines.push(`FAIL: ${reason}`);
  lines.push(
    `${report.verdict.result === 'pass' ? 'pass' : 'FAIL'}: evidence in ${join(out, REPORT)} and ${join(out, CHART)}`,
  );
  return lines.join('\n');
}
