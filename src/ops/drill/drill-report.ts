import type { KeyListing, ReencryptPartition, RewrapReport } from '../../keys/key-rotation.js';
import type { KekVersionState } from '../../keys/key-states.js';
import type { LatencyRecorder } from './latency-recorder.js';
import { DRILL_PHASES, type DrillPhase, type PhaseCounts } from './workload.js';

export const DRILL_REPORT_FORMAT = 'phicache.drill.rotation';
export const DRILL_REPORT_VERSION = 1;

/** p99 during the rotation above this multiple of p99 before it is reported as a finding. */
export const P99_RATIO_BOUND = 1.5;

export type DrillStoreKind = 'embedded' | 'redis standalone' | 'redis cluster' | 'redis sentinel';

export interface StepMark {
  readonly step:
    | 'prefilled'
    | 'phase.before'
    | 'phase.during'
    | 'rotate.publish'
    | 'rotate.wait'
    | 'rotate.promote'
    | 'rotate.done'
    | 'rewrap.start'
    | 'rewrap.done'
    | 'reencrypt.start'
    | 'reencrypt.done'
    | 'rotation.failed'
    | 'phase.after'
    | 'end';
  /** Milliseconds since the Unix epoch. */
  readonly at: number;
  /** Since the drill's origin (the chart's time axis). */
  readonly sinceStartMs: number;
  readonly detail?: string;
}

/** Throughput and latency of a stretch of the drill: a phase, or a step of the rotation. */
export interface LatencySummary {
  readonly seconds: number;
  readonly ops: number;
  readonly throughputPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface PhaseReport extends LatencySummary {
  readonly name: DrillPhase;
  readonly startedAt: string;
  readonly endedAt: string;
  /** Hits over reads (get and getOrSet); null without reads. */
  readonly hitRate: number | null;
  readonly reads: number;
  readonly hits: number;
  readonly writes: number;
  readonly deletes: number;
  readonly purges: number;
  readonly errors: number;
  readonly errorCodes: Readonly<Record<string, number>>;
  readonly wrongValues: number;
  readonly wrongReasons: Readonly<Record<string, number>>;
  readonly lazyReencrypted: number;
}

export interface KekVersionReport {
  readonly kid: string;
  readonly state: string;
  readonly publishedAt: string | null;
  readonly promotableAt: string | null;
  readonly activeAt: string | null;
  readonly decryptOnlyAt: string | null;
}

export interface DrillReport {
  readonly format: typeof DRILL_REPORT_FORMAT;
  readonly formatVersion: typeof DRILL_REPORT_VERSION;
  /** The suffix of every id, tenant and tag the drill used; it names them in the audit trail. */
  readonly runId: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly store: DrillStoreKind;
  readonly concurrency: number;
  readonly plannedSeconds: number;
  readonly actualSeconds: number;
  readonly workload: {
    readonly tenants: number;
    readonly hotEntriesPerCaller: number;
    readonly mix: string;
    readonly reencryptRatePerSecond: number | null;
  };
  /** The unmeasured warm-up before the first phase: its errors and wrong values fail the drill all the same. */
  readonly warmup: { readonly ops: number; readonly errors: number; readonly wrongValues: number };
  readonly phases: readonly PhaseReport[];
  readonly keys: {
    readonly kekUri: string | null;
    readonly from: string | null;
    readonly to: string | null;
    readonly activeAfter: string | null;
    readonly versionsBefore: readonly KekVersionReport[];
    readonly versionsAfter: readonly KekVersionReport[];
    readonly generationBefore: number;
    readonly generationAfter: number;
    /** Data key records per KEK version, by a scan of the store. */
    readonly dekRecordsBefore: Readonly<Record<string, number>>;
    readonly dekRecordsAfter: Readonly<Record<string, number>>;
    readonly rewrap: RewrapReport | null;
    readonly reencrypt: {
      readonly generation: number;
      readonly ms: number;
      readonly partitions: readonly ReencryptPartition[];
    } | null;
  };
  readonly steps: readonly { step: StepMark['step']; at: string; sinceStartMs: number; detail?: string }[];
  /**
   * Latency within each stretch of the rotation (between consecutive steps), to show which step costs what: the
   * wait for the fleet bound, the rewrap, the sweep, and the rest of the phase.
   */
  readonly duringSteps: readonly (LatencySummary & {
    readonly from: StepMark['step'];
    readonly to: StepMark['step'];
  })[];
  /** p99 during the rotation over p99 before it; null when either phase had no operations. */
  readonly p99Ratio: number | null;
  readonly verdict: {
    /** `fail` on any error, wrong value, failed rotation step, or a rotation that did not end where it should. */
    readonly result: 'pass' | 'fail';
    readonly reasons: readonly string[];
    /**
     * Worth a look without failing the drill: latency during the rotation above the bound, entries the sweep could
     * not place.
     */
    readonly findings: readonly string[];
  };
}

export interface DrillFacts {
  readonly runId: string;
  readonly store: DrillStoreKind;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Since the origin: start of before, start of during, start of after, end. */
  readonly boundaries: readonly number[];
  readonly steps: readonly StepMark[];
  /** The callers' counts per phase (a DrillWorkload). */
  readonly workload: { counts(phase: DrillPhase): PhaseCounts };
  readonly recorder: LatencyRecorder;
  readonly before: KeyListing;
  readonly after: KeyListing;
  readonly rotated?: { readonly from: string; readonly to: string };
  readonly rewrap?: RewrapReport;
  readonly reencrypt?: {
    readonly generation: number;
    readonly ms: number;
    readonly partitions: readonly ReencryptPartition[];
  };
  readonly failure?: { readonly step: string; readonly code: string };
  readonly reencryptRatePerSecond?: number;
  readonly tenants: number;
  readonly hotEntriesPerCaller: number;
}

/** Puts the drill's facts into the report an auditor reads, and judges them. */
export function buildDrillReport(facts: DrillFacts): DrillReport {
  const wallOf = (sinceStartMs: number) => {
    // Wall time of a point on the drill's own monotonic axis, anchored at the first step mark.
    const anchor = facts.steps[0];
    return anchor === undefined ? facts.startedAt : anchor.at + (sinceStartMs - anchor.sinceStartMs);
  };
  const phases = DRILL_PHASES.map((name, index) =>
    phaseReport(
      name,
      facts.boundaries[index]!,
      facts.boundaries[index + 1]!,
      facts.workload.counts(name),
      facts.recorder,
      wallOf,
    ),
  );
  const [before, during] = phases as [PhaseReport, PhaseReport, PhaseReport];
  const p99Ratio =
    before.ops > 0 && during.ops > 0 && before.p99Ms > 0
      ? Math.round((during.p99Ms / before.p99Ms) * 100) / 100
      : null;

  const activeAfter = facts.after.states.keks.find((k) => k.state === 'active')?.kid ?? null;
  const reasons: string[] = [];
  const warmup = facts.workload.counts('warmup');
  if (warmup.errors > 0)
    reasons.push(`${warmup.errors} error(s) in the warm-up: ${codes(warmup.errorCodes)}`);
  if (warmup.wrongValues > 0) {
    reasons.push(`${warmup.wrongValues} wrong value(s) in the warm-up: ${codes(warmup.wrongReasons)}`);
  }
  for (const phase of phases) {
    if (phase.errors > 0) {
      reasons.push(`${phase.errors} error(s) ${phase.name} the rotation: ${codes(phase.errorCodes)}`);
    }
    if (phase.wrongValues > 0) {
      reasons.push(
        `${phase.wrongValues} wrong value(s) ${phase.name} the rotation: ${codes(phase.wrongReasons)}`,
      );
    }
  }
  if (facts.failure !== undefined) {
    reasons.push(`the rotation failed at ${facts.failure.step} with ${facts.failure.code}`);
  }
  if (facts.rotated !== undefined) {
    if (activeAfter !== facts.rotated.to) {
      reasons.push(`after the drill the active KEK version is ${activeAfter}, not ${facts.rotated.to}`);
    }
    const stale = Object.entries(facts.after.dekRecords).filter(
      ([kid, n]) => kid !== facts.rotated!.to && n > 0,
    );
    if (facts.rewrap !== undefined && stale.length > 0) {
      reasons.push(
        `data key records still wrapped under an older KEK version after the rewrap: ${stale.map(([kid, n]) => `${kid} ${n}`).join(', ')}`,
      );
    }
  }
  const findings: string[] = [];
  if (p99Ratio !== null && p99Ratio > P99_RATIO_BOUND) {
    findings.push(
      `p99 during the rotation (${during.p99Ms} ms) is ${p99Ratio} times p99 before it (${before.p99Ms} ms), above the ${P99_RATIO_BOUND} bound`,
    );
  }

  // The sweep names an entry unreadable when it cannot find the data key that sealed it among the records it
  // listed when it started; a data key made after that (by traffic, or by the sweep's own re-sealing) looks the same
  // as a lost one. The callers' reads are the test of readability, so this is a finding to look into, not a failure.
  const unreadable = (facts.reencrypt?.partitions ?? []).reduce((n, p) => n + p.unreadable, 0);
  if (unreadable > 0) {
    findings.push(
      `the re-encryption sweep counted ${unreadable} entr${unreadable === 1 ? 'y' : 'ies'} unreadable (sealed by a data key it had not listed when it started)`,
    );
  }

  return {
    format: DRILL_REPORT_FORMAT,
    formatVersion: DRILL_REPORT_VERSION,
    runId: facts.runId,
    startedAt: iso(facts.startedAt),
    endedAt: iso(facts.endedAt),
    store: facts.store,
    concurrency: facts.concurrency,
    plannedSeconds: facts.durationMs / 1000,
    actualSeconds: round((facts.endedAt - facts.startedAt) / 1000, 3),
    workload: {
      tenants: facts.tenants,
      hotEntriesPerCaller: facts.hotEntriesPerCaller,
      mix: 'per caller: 8% first reads of new entries (getOrSet, 5 s TTL); of the rest 64% getOrSet, 20% get, 14% set, 1.5% delete, 0.5% purgeTag(patient); encrypted-phi entries with patient and encounter tags, and feature-flag entries; every eighth entry lives 1.5 s, the others 120 s',
      reencryptRatePerSecond: facts.reencryptRatePerSecond ?? null,
    },
    warmup: { ops: warmup.ops, errors: warmup.errors, wrongValues: warmup.wrongValues },
    phases,
    keys: {
      kekUri: facts.after.service?.uri ?? null,
      from: facts.rotated?.from ?? null,
      to: facts.rotated?.to ?? null,
      activeAfter,
      versionsBefore: facts.before.states.keks.map(versionReport),
      versionsAfter: facts.after.states.keks.map(versionReport),
      generationBefore: facts.before.states.generation,
      generationAfter: facts.after.states.generation,
      dekRecordsBefore: facts.before.dekRecords,
      dekRecordsAfter: facts.after.dekRecords,
      rewrap: facts.rewrap ?? null,
      reencrypt: facts.reencrypt ?? null,
    },
    steps: facts.steps.map((s) => ({
      step: s.step,
      at: iso(s.at),
      sinceStartMs: Math.round(s.sinceStartMs),
      ...(s.detail === undefined ? {} : { detail: s.detail }),
    })),
    duringSteps: stretches(facts.steps, facts.recorder),
    p99Ratio,
    verdict: { result: reasons.length === 0 ? 'pass' : 'fail', reasons, findings },
  };
}

function phaseReport(
  name: DrillPhase,
  fromMs: number,
  toMs: number,
  counts: PhaseCounts,
  recorder: LatencyRecorder,
  wallOf: (sinceStartMs: number) => number,
): PhaseReport {
  const latency = recorder.summary(fromMs, toMs);
  const seconds = (toMs - fromMs) / 1000;
  return {
    name,
    startedAt: iso(wallOf(fromMs)),
    endedAt: iso(wallOf(toMs)),
    seconds: round(seconds, 3),
    ops: latency.ops,
    throughputPerSecond: seconds > 0 ? Math.round(latency.ops / seconds) : 0,
    p50Ms: latency.p50Ms,
    p99Ms: latency.p99Ms,
    maxMs: latency.maxMs,
    hitRate: counts.reads > 0 ? round(counts.hits / counts.reads, 4) : null,
    reads: counts.reads,
    hits: counts.hits,
    writes: counts.writes,
    deletes: counts.deletes,
    purges: counts.purges,
    errors: counts.errors,
    errorCodes: { ...counts.errorCodes },
    wrongValues: counts.wrongValues,
    wrongReasons: { ...counts.wrongReasons },
    lazyReencrypted: counts.lazyReencrypted,
  };
}

const STRETCH_ENDS: readonly StepMark['step'][] = [
  'phase.during',
  'rotate.wait',
  'rotate.promote',
  'rewrap.start',
  'rewrap.done',
  'reencrypt.done',
  'rotation.failed',
  'phase.after',
];

function stretches(steps: readonly StepMark[], recorder: LatencyRecorder): DrillReport['duringSteps'] {
  const ends = steps.filter((s) => STRETCH_ENDS.includes(s.step));
  const out: DrillReport['duringSteps'][number][] = [];
  for (let i = 1; i < ends.length; i++) {
    const from = ends[i - 1]!;
    const to = ends[i]!;
    const latency = recorder.summary(from.sinceStartMs, to.sinceStartMs);
    const seconds = (to.sinceStartMs - from.sinceStartMs) / 1000;
    out.push({
      from: from.step,
      to: to.step,
      seconds: round(seconds, 3),
      ops: latency.ops,
      throughputPerSecond: seconds > 0 ? Math.round(latency.ops / seconds) : 0,
      p50Ms: latency.p50Ms,
      p99Ms: latency.p99Ms,
      maxMs: latency.maxMs,
    });
  }
  return out;
}

function versionReport(k: KekVersionState): KekVersionReport {
  const time = (ms: number | undefined) => (ms === undefined || ms === 0 ? null : iso(ms));
  return {
    kid: k.kid,
    state: k.state,
    publishedAt: time(k.publishedAt),
    promotableAt: time(k.promotableAt),
    activeAt: time(k.activeAt),
    decryptOnlyAt: time(k.decryptOnlyAt),
  };
}

function codes(counts: Readonly<Record<string, number | undefined>>): string {
  return Object.entries(counts)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
}

function iso(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
