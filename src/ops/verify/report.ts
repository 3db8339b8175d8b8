/**
 * The posture report: what `phicache verify` returns and the evidence bundle embeds. Its JSON form is stable
 * (docs in the README, "Checking your Redis"): fields are only ever added, and `format`/`version` change when a
 * field's meaning would.
 */

/** PASS: seen to hold. FAIL: seen not to hold. WARN: holds with a caveat an operator should weigh. NOT-CHECKABLE: could not be seen from here, with the reason. */
export type Verdict = 'PASS' | 'FAIL' | 'WARN' | 'NOT-CHECKABLE';

export interface CheckResult {
  /** Stable id, `<family>.<check>` (`auth.required`, `memorystore.transit-encryption`). */
  readonly id: string;
  readonly verdict: Verdict;
  /** What was seen (or why nothing could be): values of settings, counts, never a key name or value. */
  readonly evidence: string;
  /** What to change when the verdict is not PASS. */
  readonly remedy?: string;
  /** Which endpoint or description the check looked at (`rediss://10.0.0.3:6378`, `memorystore:phi-redis`). */
  readonly target: string;
}

export interface PostureSummary {
  readonly pass: number;
  readonly fail: number;
  readonly warn: number;
  readonly notCheckable: number;
}

export interface PostureReport {
  readonly format: 'phicache-posture-report';
  readonly version: 1;
  /** ISO 8601 time the checks ran. */
  readonly checkedAt: string;
  /** No check failed (WARN and NOT-CHECKABLE allowed). */
  readonly ok: boolean;
  readonly summary: PostureSummary;
  readonly checks: readonly CheckResult[];
}

/** A check result before the target is attached. */
export type Finding = Omit<CheckResult, 'target'>;

export function pass(id: string, evidence: string): Finding {
  return { id, verdict: 'PASS', evidence };
}

export function fail(id: string, evidence: string, remedy: string): Finding {
  return { id, verdict: 'FAIL', evidence, remedy };
}

export function warn(id: string, evidence: string, remedy: string): Finding {
  return { id, verdict: 'WARN', evidence, remedy };
}

export function notCheckable(id: string, reason: string, remedy?: string): Finding {
  return { id, verdict: 'NOT-CHECKABLE', evidence: reason, ...(remedy === undefined ? {} : { remedy }) };
}

export function buildReport(checks: readonly CheckResult[], checkedAt: Date): PostureReport {
  const count = (verdict: Verdict) => checks.filter((c) => c.verdict === verdict).length;
  const summary = {
    pass: count('PASS'),
    fail: count('FAIL'),
    warn: count('WARN'),
    notCheckable: count('NOT-CHECKABLE'),
  };
  return {
    format: 'phicache-posture-report',
    version: 1,
    checkedAt: checkedAt.toISOString(),
    ok: summary.fail === 0,
    summary,
    checks,
  };
}
