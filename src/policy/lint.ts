import { analyzePolicy, formatPath } from './load.js';
import type { LintRuleId } from './rules.js';
import { expiresSchema } from './schema.js';

export interface LintFinding {
  readonly severity: 'error' | 'warning';
  readonly rule: LintRuleId;
  readonly path: string;
  readonly line: number | undefined;
  readonly message: string;
}

export interface LintReport {
  readonly source: string;
  /** False when any finding is an error; warnings alone leave a policy ok. */
  readonly ok: boolean;
  readonly findings: readonly LintFinding[];
}

const dayMs = 86_400_000;
/** Two weeks is enough notice to renew an exception through a change process without a gap. */
const expiresSoonMs = 14 * dayMs;
/** An exception is a time-boxed risk acceptance; one that runs for more than a year has become policy by stealth. */
const expiresFarMs = 365 * dayMs;

/**
 * Everything that makes a policy wrong (errors) or worth a look (warnings) at `now`. Exceptions are read from the
 * raw document, so an expired exception is reported even while other parts of the file fail the schema.
 */
export function lintPolicy(text: string, source: string, now: number): LintReport {
  const analysis = analyzePolicy(text);
  const findings: LintFinding[] = analysis.issues.map(({ rule, path, line, message }) => ({
    severity: 'error',
    rule,
    path,
    line,
    message,
  }));

  const exceptions = isRecord(analysis.data) ? analysis.data.exceptions : undefined;
  (Array.isArray(exceptions) ? exceptions : []).forEach((exception: unknown, index) => {
    if (!isRecord(exception) || typeof exception.id !== 'string') return;
    const expires = expiresSchema.safeParse(exception.expires);
    if (!expires.success) return;
    const expiresAt = Date.parse(expires.data);
    const at = new Date(expiresAt).toISOString();
    const path = ['exceptions', index, 'expires'] as const;
    const place = { path: formatPath(path), line: analysis.lineOf(path) };
    const left = expiresAt - now;
    if (left <= 0) {
      findings.push({
        severity: 'error',
        rule: 'POL-EXC-01',
        ...place,
        message: `exception ${exception.id} expired at ${at} and no longer allows anything; renew or remove it`,
      });
    } else if (left <= expiresSoonMs) {
      const days = Math.ceil(left / dayMs);
      findings.push({
        severity: 'warning',
        rule: 'POL-EXC-02',
        ...place,
        message: `exception ${exception.id} expires at ${at}, in ${days} day${days === 1 ? '' : 's'}`,
      });
    } else if (left > expiresFarMs) {
      findings.push({
        severity: 'warning',
        rule: 'POL-EXC-03',
        ...place,
        message: `exception ${exception.id} runs until ${at}, more than 365 days away; time-box it more tightly`,
      });
    }
  });

  findings.sort((a, b) => (a.line ?? Number.POSITIVE_INFINITY) - (b.line ?? Number.POSITIVE_INFINITY));
  return { source, ok: findings.every((finding) => finding.severity !== 'error'), findings };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
