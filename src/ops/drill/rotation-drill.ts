import { randomBytes } from 'node:crypto';
import type { PhiCache } from '../../cache.js';
import { PhiCacheError } from '../../errors.js';
import type { KeyListing, ReencryptReport, RewrapReport } from '../../keys/key-rotation.js';
import { buildDrillReport, type DrillReport, type DrillStoreKind, type StepMark } from './drill-report.js';
import { chartBucketMs, latencyChartSvg } from './latency-chart.js';
import { LatencyRecorder } from './latency-recorder.js';
import { DrillWorkload } from './workload.js';

export interface RotationDrillOptions {
  /** An open cache, as users run it (real store, keys and audit trail). The drill does not close it. */
  readonly cache: PhiCache;
  /** What the report names as the store under test. */
  readonly store: DrillStoreKind;
  /**
   * The planned length: 30% before, the rotation (at least 40%, longer if it takes longer), 30% after; preceded
   * by an unmeasured warm-up of 10% (at most 5 s).
   */
  readonly durationMs: number;
  readonly concurrency: number;
  /** Recorded in the admin audit records of the rotation. Default `ops:drill-rotation`. */
  readonly principal?: string;
  /** Rate limit of the re-encryption sweep, entries per second. Default unlimited. */
  readonly reencryptRatePerSecond?: number;
  /** Tenants the callers spread over. Default 4. */
  readonly tenants?: number;
  /** Entries each caller keeps reading and writing. Default 64. */
  readonly hotEntriesPerCaller?: number;
  /** One line per phase and rotation step, for a terminal. */
  readonly onProgress?: (line: string) => void;
}

export interface RotationDrillResult {
  readonly report: DrillReport;
  /** The latency chart (SVG text): p50 and p99 over time, phases shaded, rotation steps marked. */
  readonly chart: string;
}

const WARMUP = 0.1;
const WARMUP_AT_MOST_MS = 5000;
const BEFORE = 0.3;
const DURING_AT_LEAST = 0.4;
const AFTER = 0.3;

/**
 * Rotates the cache KEK under traffic, as an operator would (DESIGN.md §4): publish a new version, wait the fleet
 * bound, promote it; rewrap every data key record under it; sweep the entries onto the new data keys. Callers keep
 * reading and writing throughout; the report compares latency and correctness before, during and after. Only the
 * public cache API and `cache.rotation` are used, so what is measured is phicache as it runs for users.
 */
export async function runRotationDrill(options: RotationDrillOptions): Promise<RotationDrillResult> {
  const { cache, durationMs, concurrency } = options;
  if (!(Number.isSafeInteger(durationMs) && durationMs >= 1000)) {
    throw new RangeError('durationMs must be an integer of at least 1000');
  }
  if (!(Number.isSafeInteger(concurrency) && concurrency >= 1 && concurrency <= 1024)) {
    throw new RangeError('concurrency must be an integer in 1..1024');
  }
  const caller = { principal: options.principal ?? 'ops:drill-rotation' };
  const progress = options.onProgress ?? (() => undefined);
  const runId = randomBytes(4).toString('hex');
  const recorder = new LatencyRecorder();
  const startedAt = Date.now();
  const origin = performance.now();
  const sinceOrigin = () => performance.now() - origin;
  const workload = new DrillWorkload({
    cache,
    concurrency,
    runId,
    recorder,
    origin,
    ...(options.tenants === undefined ? {} : { tenants: options.tenants }),
    ...(options.hotEntriesPerCaller === undefined
      ? {}
      : { hotEntriesPerCaller: options.hotEntriesPerCaller }),
  });
  const steps: StepMark[] = [];
  /** Records a step and returns its time since the origin, so a phase boundary and its step are one instant. */
  const mark = (step: StepMark['step'], detail?: string): number => {
    const sinceStartMs = sinceOrigin();
    steps.push({
      step,
      at: Date.now(),
      sinceStartMs,
      ...(detail === undefined ? {} : { detail }),
    });
    progress(`${step}${detail === undefined ? '' : ` ${detail}`}`);
    return sinceStartMs;
  };

  let before: KeyListing | undefined;
  await workload.prefill();
  mark('prefilled');
  workload.start();
  await sleep(Math.min(WARMUP_AT_MOST_MS, WARMUP * durationMs));
  workload.phase = 'before';
  const boundaries: number[] = [mark('phase.before')];
  let rotated: { from: string; to: string } | undefined;
  let rewrap: RewrapReport | undefined;
  let reencrypt: ReencryptReport | undefined;
  let failure: { step: StepMark['step']; code: string } | undefined;
  try {
    await sleep(BEFORE * durationMs);
    workload.phase = 'during';
    boundaries.push(mark('phase.during'));
    const duringStart = performance.now();
    // What the rotation starts from: the versions and the data key records the traffic so far has made.
    before = await cache.rotation.list();
    let step: StepMark['step'] = 'rotate.publish';
    try {
      mark('rotate.publish');
      rotated = await cache.rotation.rotate(caller, async (ms) => {
        mark('rotate.wait', `${Math.round(ms)} ms`);
        await sleep(ms);
        step = 'rotate.promote';
        mark('rotate.promote');
      });
      mark('rotate.done', `${rotated.from} -> ${rotated.to}`);
      step = 'rewrap.start';
      mark('rewrap.start');
      rewrap = await cache.rotation.rewrap(caller);
      mark('rewrap.done', `${rewrap.rewrapped} rewrapped`);
      step = 'reencrypt.start';
      mark('reencrypt.start');
      reencrypt = await cache.rotation.reencrypt({
        ...caller,
        ...(options.reencryptRatePerSecond === undefined
          ? {}
          : { ratePerSecond: options.reencryptRatePerSecond }),
      });
      mark('reencrypt.done', `${reencrypt.partitions.reduce((n, p) => n + p.reencrypted, 0)} re-encrypted`);
    } catch (error) {
      failure = { step, code: codeOf(error) };
      mark('rotation.failed', failure.code);
    }
    await sleep(DURING_AT_LEAST * durationMs - (performance.now() - duringStart));
    workload.phase = 'after';
    boundaries.push(mark('phase.after'));
    await sleep(AFTER * durationMs);
  } finally {
    await workload.stop();
  }
  boundaries.push(mark('end'));
  const endedAt = Date.now();
  const after = await cache.rotation.list();
  if (before === undefined) {
    throw new PhiCacheError('ERR_INTERNAL', 'the drill ended before its rotation began');
  }
  const report = buildDrillReport({
    runId,
    store: options.store,
    concurrency,
    durationMs,
    startedAt,
    endedAt,
    boundaries,
    steps,
    workload,
    recorder,
    before,
    after,
    ...(rotated === undefined ? {} : { rotated }),
    ...(rewrap === undefined ? {} : { rewrap }),
    ...(reencrypt === undefined ? {} : { reencrypt }),
    ...(failure === undefined ? {} : { failure }),
    ...(options.reencryptRatePerSecond === undefined
      ? {}
      : { reencryptRatePerSecond: options.reencryptRatePerSecond }),
    tenants: options.tenants ?? 4,
    hotEntriesPerCaller: options.hotEntriesPerCaller ?? 64,
  });
  const bucketMs = chartBucketMs(boundaries.at(-1)! - boundaries[0]!);
  const buckets = recorder.buckets(boundaries[0]!, boundaries.at(-1)!, bucketMs);
  const chart = latencyChartSvg(report, buckets, bucketMs, boundaries);
  return { report, chart };
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

function codeOf(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return error instanceof Error ? error.name : 'non-error-thrown';
}
