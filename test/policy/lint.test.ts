import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type LintReport, lintPolicy } from '../../src/policy/lint.js';

const NOW = Date.parse('2026-06-01T00:00:00Z');
const DAY = 86_400_000;

/** A valid policy with one exception expiring at `expires`; the `expires` key is on line 14. */
function withException(expires: string, extra = ''): string {
  return `version: 1
classes:
  chart:
    description: PHI fragments
    phi: true
    cacheable: true
    maxTtlSeconds: 300${extra}
exceptions:
  - id: EXC-7
    class: chart
    owner: clinical-apps
    reason: Ward rounds
    compensatingControl: Shared screens lock
    expires: ${expires}
    allow: { maxTtlSeconds: 900 }
`;
}

function only(report: LintReport) {
  assert.equal(report.findings.length, 1, JSON.stringify(report.findings));
  return report.findings[0] ?? assert.fail('no finding');
}

const iso = (ms: number) => new Date(ms).toISOString();

describe('lintPolicy', () => {
  test('POL-EXC-01: an expired exception is an error, located at its expiry', () => {
    const report = lintPolicy(withException('2026-05-31'), 'p.yaml', NOW);
    const finding = only(report);
    assert.equal(report.ok, false);
    assert.equal(report.source, 'p.yaml');
    assert.deepEqual(
      { severity: finding.severity, rule: finding.rule, path: finding.path, line: finding.line },
      { severity: 'error', rule: 'POL-EXC-01', path: 'exceptions[0].expires', line: 14 },
    );
    assert.match(finding.message, /EXC-7/);
  });

  test('POL-EXC-01: the expiry instant itself counts as expired (the exception works while now < expires)', () => {
    assert.equal(only(lintPolicy(withException(iso(NOW)), 'p.yaml', NOW)).rule, 'POL-EXC-01');
  });

  test('POL-EXC-02: an exception expiring within 14 days is a warning and the policy stays ok', () => {
    const report = lintPolicy(withException(iso(NOW + 14 * DAY)), 'p.yaml', NOW);
    const finding = only(report);
    assert.equal(report.ok, true);
    assert.equal(finding.severity, 'warning');
    assert.equal(finding.rule, 'POL-EXC-02');
    assert.match(finding.message, /in 14 days/);
  });

  test('POL-EXC-03: an exception more than 365 days away is a warning', () => {
    const report = lintPolicy(withException(iso(NOW + 366 * DAY)), 'p.yaml', NOW);
    const finding = only(report);
    assert.equal(report.ok, true);
    assert.equal(finding.severity, 'warning');
    assert.equal(finding.rule, 'POL-EXC-03');
  });

  test('an exception between 14 and 365 days away draws no finding', () => {
    for (const days of [15, 365]) {
      const report = lintPolicy(withException(iso(NOW + days * DAY)), 'p.yaml', NOW);
      assert.deepEqual(report, { source: 'p.yaml', ok: true, findings: [] });
    }
  });

  test('POL-SCHEMA-01: schema issues are errors, and an expired exception is still reported beside them', () => {
    const report = lintPolicy(withException('2026-05-01', '\n    colour: red'), 'p.yaml', NOW);
    assert.equal(report.ok, false);
    assert.deepEqual(
      report.findings.map((f) => [f.severity, f.rule, f.path, f.line]),
      [
        ['error', 'POL-SCHEMA-01', 'classes.chart.colour', 8],
        ['error', 'POL-EXC-01', 'exceptions[0].expires', 15],
      ],
    );
  });

  test('POL-YAML-01: a YAML syntax error is an error finding', () => {
    const report = lintPolicy('version: 1\nclasses: {chart: [\n', 'p.yaml', NOW);
    assert.equal(report.ok, false);
    assert.ok(report.findings.length > 0);
    assert.ok(report.findings.every((f) => f.severity === 'error' && f.rule === 'POL-YAML-01'));
  });
});
