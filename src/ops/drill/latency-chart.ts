import type { DrillReport } from './drill-report.js';
import type { LatencyBucket } from './latency-recorder.js';

/** Steps drawn as vertical lines on the chart, with their labels. */
const MARKED: Readonly<Record<string, string>> = {
  'rotate.publish': 'publish',
  'rotate.promote': 'promote',
  'rewrap.start': 'rewrap',
  'reencrypt.start': 're-encrypt',
  'reencrypt.done': 'sweep done',
  'rotation.failed': 'FAILED',
};

const PHASE_FILL: Readonly<Record<string, string>> = {
  before: '#eef4fb',
  during: '#fdf0e2',
  after: '#eef8ee',
};

const W = 960;
const H = 420;
const LEFT = 64;
const RIGHT = 20;
const TOP = 56;
const BOTTOM = 52;

/**
 * The latency chart of a drill as a small self-contained SVG, drawn by hand (no dependency): p50 and p99 per bucket
 * over time, the phases shaded and named, every rotation step a labelled vertical line, both axes with units. The
 * y axis stops a little above the highest bucket p99: a single slow operation's max is in the report, and letting
 * it set the scale would flatten the lines the chart is for.
 */
export function latencyChartSvg(
  report: DrillReport,
  buckets: readonly LatencyBucket[],
  bucketMs: number,
  phaseBounds: readonly number[],
): string {
  // The axis starts when traffic started (after the unmeasured prefill).
  const startMs = phaseBounds[0]!;
  const spanMs = Math.max(1, phaseBounds.at(-1)! - startMs);
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const yTop = niceCeiling(Math.max(0.001, ...buckets.filter((b) => b.ops > 0).map((b) => b.p99Ms)) * 1.1);
  const x = (ms: number) => LEFT + (Math.max(0, Math.min(spanMs, ms - startMs)) / spanMs) * plotW;
  const y = (latencyMs: number) => TOP + plotH - (Math.min(latencyMs, yTop) / yTop) * plotH;
  const parts: string[] = [];

  parts.push(
    `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${esc(`phicache drill rotation: ${report.store}, concurrency ${report.concurrency}`)}</text>`,
    `<text x="${LEFT}" y="40" font-size="11" fill="#555">${esc(`${report.startedAt} to ${report.endedAt}; KEK ${report.keys.from ?? '?'} -> ${report.keys.to ?? '?'}; verdict ${report.verdict.result}; latency per ${bucketMs} ms bucket`)}</text>`,
  );

  // Phase bands with their names.
  report.phases.forEach((phase, index) => {
    const x0 = x(phaseBounds[index]!);
    const x1 = x(phaseBounds[index + 1]!);
    parts.push(
      `<rect x="${f(x0)}" y="${TOP}" width="${f(Math.max(0, x1 - x0))}" height="${plotH}" fill="${PHASE_FILL[phase.name]}"/>`,
      `<text x="${f((x0 + x1) / 2)}" y="${TOP + 14}" font-size="12" text-anchor="middle" fill="#333">${esc(phaseLabel(phase.name))}</text>`,
    );
  });

  // Axes, grid and ticks.
  for (const tick of ticks(yTop)) {
    parts.push(
      `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${f(y(tick))}" y2="${f(y(tick))}" stroke="#ddd" stroke-width="0.5"/>`,
      `<text x="${LEFT - 6}" y="${f(y(tick) + 4)}" font-size="10" text-anchor="end">${esc(fmt(tick))}</text>`,
    );
  }
  for (const tick of ticks(spanMs / 1000)) {
    const tx = x(startMs + tick * 1000);
    parts.push(
      `<line x1="${f(tx)}" x2="${f(tx)}" y1="${TOP + plotH}" y2="${TOP + plotH + 4}" stroke="#333"/>`,
      `<text x="${f(tx)}" y="${TOP + plotH + 16}" font-size="10" text-anchor="middle">${esc(fmt(tick))}</text>`,
    );
  }
  parts.push(
    `<line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${TOP + plotH}" stroke="#333"/>`,
    `<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${TOP + plotH}" y2="${TOP + plotH}" stroke="#333"/>`,
    `<text x="${LEFT + plotW / 2 + 60}" y="${H - 12}" font-size="11" text-anchor="middle">time since traffic started (s)</text>`,
    `<text x="16" y="${TOP + plotH / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 16 ${TOP + plotH / 2})">latency (ms)</text>`,
  );

  // Rotation steps.
  let labelRow = 0;
  for (const step of report.steps) {
    const label = MARKED[step.step];
    if (label === undefined) continue;
    const sx = x(step.sinceStartMs);
    const ly = TOP + 30 + (labelRow++ % 3) * 12;
    parts.push(
      `<line x1="${f(sx)}" x2="${f(sx)}" y1="${TOP}" y2="${TOP + plotH}" stroke="#a33" stroke-width="1" stroke-dasharray="4 3"/>`,
      `<text x="${f(sx + 3)}" y="${ly}" font-size="10" fill="#a33">${esc(label)}</text>`,
    );
  }

  // The two series: a bucket without operations breaks the line rather than drawing a false zero.
  for (const [field, color, width] of [
    ['p99Ms', '#c0392b', 1.5],
    ['p50Ms', '#1f5fa8', 1.5],
  ] as const) {
    for (const run of runs(buckets)) {
      const points = run.map((b) => `${f(x(b.startMs + bucketMs / 2))},${f(y(b[field]))}`).join(' ');
      parts.push(
        `<polyline points="${points}" fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round"/>`,
      );
    }
  }

  // Legend: below the plot, left of the axis title, where no step label or line can cover it.
  const ly = H - 16;
  parts.push(
    `<line x1="${LEFT}" x2="${LEFT + 20}" y1="${ly}" y2="${ly}" stroke="#c0392b" stroke-width="2"/>`,
    `<text x="${LEFT + 26}" y="${ly + 4}" font-size="10">p99 per bucket</text>`,
    `<line x1="${LEFT + 110}" x2="${LEFT + 130}" y1="${ly}" y2="${ly}" stroke="#1f5fa8" stroke-width="2"/>`,
    `<text x="${LEFT + 136}" y="${ly + 4}" font-size="10">p50 per bucket</text>`,
  );

  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" role="img" aria-labelledby="title desc">`,
    // The alternative text: what a screen reader, or an auditor without a viewer, reads first.
    `<title id="title">${esc(`phicache drill rotation: p50 and p99 latency over time, ${report.store}`)}</title>`,
    `<desc id="desc">${esc(describe(report))}</desc>`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function describe(report: DrillReport): string {
  const phases = report.phases
    .map(
      (p) => `${p.name} ${p.seconds} s: ${p.throughputPerSecond} ops/s, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms`,
    )
    .join('; ');
  return `KEK ${report.keys.from ?? '?'} to ${report.keys.to ?? '?'}, ${report.startedAt} to ${report.endedAt}. ${phases}. Verdict ${report.verdict.result}.`;
}

/** A bucket size that keeps the chart to at most about 240 points: 250 ms, or a multiple of it. */
export function chartBucketMs(totalMs: number): number {
  return Math.max(250, Math.ceil(totalMs / 240 / 250) * 250);
}

function phaseLabel(name: string): string {
  return name === 'during' ? 'during the rotation' : `${name} the rotation`;
}

function runs(buckets: readonly LatencyBucket[]): LatencyBucket[][] {
  const out: LatencyBucket[][] = [];
  let current: LatencyBucket[] = [];
  for (const b of buckets) {
    if (b.ops > 0) current.push(b);
    else if (current.length > 0) {
      out.push(current);
      current = [];
    }
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** 1, 2 or 5 times a power of ten, at or above `n`. */
function niceCeiling(n: number): number {
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/** About five round ticks from 0 to `top`. */
function ticks(top: number): number[] {
  if (!(top > 0)) return [0];
  const raw = top / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let t = 0; t <= top + step / 1e6; t += step) out.push(Math.round(t / p) * p);
  return out;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(3)));
}

function f(n: number): string {
  return n.toFixed(1);
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
