import { fileURLToPath } from 'node:url';
import { PhiCacheError } from '../../errors.js';
import { defaultPolicyPath } from '../../policy/default.js';
import { type LintReport, lintPolicy } from '../../policy/lint.js';
import { readPolicyFile } from '../../policy/load.js';
import { regularFile } from '../input-paths.js';
import type { Command, CommandResult } from './command.js';

export const policyLintCommand: Command = {
  name: ['policy', 'lint'],
  summary: 'Check a policy file: schema, and exceptions that expired or expire soon',
  help: [
    'Usage: phicache policy lint [file] [--json]',
    '',
    'Checks a policy file (YAML or JSON) against the schema and reports exceptions that have expired (error),',
    'expire within 14 days or run for more than a year (warnings). Without a file, lints the shipped default policy.',
    '',
    'Exit codes: 0 no errors (warnings allowed), 1 errors found, 2 the file could not be read or the flags are wrong.',
  ].join('\n'),
  options: {},
  async handler(_values, positionals): Promise<CommandResult> {
    if (positionals.length > 1) {
      throw new PhiCacheError('ERR_CLI_USAGE', 'policy lint takes at most one file');
    }
    const path =
      positionals[0] === undefined
        ? fileURLToPath(defaultPolicyPath)
        : await regularFile(positionals[0], 'policy file');
    const report = lintPolicy(await readPolicyFile(path), path, Date.now());
    // JSON has no undefined: a finding without a line says so with null rather than by a missing key.
    const data = {
      ...report,
      findings: report.findings.map((finding) => ({ ...finding, line: finding.line ?? null })),
    };
    return { exitCode: report.ok ? 0 : 1, data, text: render(report) };
  },
};

function render(report: LintReport): string {
  const errors = report.findings.filter((finding) => finding.severity === 'error').length;
  const warnings = report.findings.length - errors;
  const lines = report.findings.map(
    (f) =>
      `${report.source}${f.line === undefined ? '' : `:${f.line}`} ${f.severity} ${f.rule} ${f.path}: ${f.message}`,
  );
  const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
  lines.push(
    `${report.source}: ${report.ok ? 'ok' : 'FAIL'} (${plural(errors, 'error')}, ${plural(warnings, 'warning')})`,
  );
  return lines.join('\n');
}
