import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PhiCacheError, PolicyInvalidError, type PolicyIssue } from '../../src/errors.js';
import { loadPolicyFile, parsePolicy } from '../../src/policy/load.js';

function issuesOf(text: string): readonly PolicyIssue[] {
  try {
    parsePolicy(text, 'test.yaml');
  } catch (error) {
    assert.ok(error instanceof PolicyInvalidError, 'expected PolicyInvalidError');
    assert.equal(error.code, 'ERR_POLICY_INVALID');
    return error.issues;
  }
  return assert.fail('the policy was accepted');
}

function issueAt(issues: readonly PolicyIssue[], path: string): PolicyIssue {
  return (
    issues.find((issue) => issue.path === path) ??
    assert.fail(`no issue at ${path}: ${JSON.stringify(issues)}`)
  );
}

/** A one-class policy with `lines` spliced into the class body. */
function oneClass(...lines: string[]): string {
  return ['version: 1', 'classes:', '  notes:', ...lines.map((line) => `    ${line}`)].join('\n');
}

describe('POL-SCHEMA-01: the policy schema', () => {
  test('reports the document path and the 1-based line of each issue', () => {
    const text = [
      'version: 1', // 1
      'classes:', // 2
      '  session-token:', // 3
      '    description: Sessions', // 4
      '    phi: false', // 5
      '    cacheable: true', // 6
      '    maxTtlSeconds: 1800', // 7
      '  encrypted-phi:', // 8
      '    description: PHI', // 9
      '    phi: true', // 10
      '    cacheable: true', // 11
      '    maxTtlSeconds: 301', // 12
      '    scope:', // 13
      '      - tenant', // 14
      '      - patient', // 15
    ].join('\n');
    const issues = issuesOf(text);
    assert.equal(issueAt(issues, 'classes.encrypted-phi.maxTtlSeconds').line, 12);
    assert.equal(issueAt(issues, 'classes.encrypted-phi.scope[1]').line, 15);
    assert.equal(issues.length, 2);
  });

  test('the error message names the source, line and path', () => {
    try {
      parsePolicy(oneClass('description: x', 'phi: false', 'cacheable: true'), 'team/policy.yaml');
      assert.fail('accepted');
    } catch (error) {
      assert.ok(error instanceof PolicyInvalidError);
      assert.match(
        error.message,
        /team\/policy\.yaml:3 classes\.notes\.maxTtlSeconds: required when cacheable/,
      );
    }
  });

  test('refuses an unknown key, at its own line', () => {
    const issues = issuesOf(oneClass('description: x', 'phi: false', 'cacheable: false', 'maxTTL: 60'));
    assert.deepEqual(issueAt(issues, 'classes.notes.maxTTL'), {
      path: 'classes.notes.maxTTL',
      line: 7,
      message: 'unknown key',
    });
    assert.equal(
      issueAt(issuesOf(`${oneClass('description: x', 'phi: false', 'cacheable: false')}\nextra: 1`), 'extra')
        .line,
      7,
    );
  });

  test('refuses a phi class with maxTtlSeconds 301 and accepts 300', () => {
    const issues = issuesOf(oneClass('description: x', 'phi: true', 'cacheable: true', 'maxTtlSeconds: 301'));
    assert.match(issueAt(issues, 'classes.notes.maxTtlSeconds').message, /capped at 300/);
    const policy = parsePolicy(
      oneClass('description: x', 'phi: true', 'cacheable: true', 'maxTtlSeconds: 300'),
      't',
    );
    assert.equal(policy.dataClass('notes')?.maxTtlMs, 300_000);
  });

  test('bounds TTLs: integers in 1..86400, a default no larger than the cap', () => {
    const base = ['description: x', 'phi: false', 'cacheable: true'];
    for (const bad of [
      'maxTtlSeconds: 86401',
      'maxTtlSeconds: 0',
      'maxTtlSeconds: 1.5',
      'maxTtlSeconds: "60"',
    ]) {
      issueAt(issuesOf(oneClass(...base, bad)), 'classes.notes.maxTtlSeconds');
    }
    const fallback = issuesOf(oneClass(...base, 'maxTtlSeconds: 60', 'defaultTtlSeconds: 61'));
    assert.match(issueAt(fallback, 'classes.notes.defaultTtlSeconds').message, /must not exceed/);
  });

  test('requires explicit phi, a tenant in every scope, and a valid class name', () => {
    issueAt(issuesOf(oneClass('description: x', 'cacheable: false')), 'classes.notes.phi');
    const scope = issuesOf(oneClass('description: x', 'phi: false', 'cacheable: false', 'scope: [user]'));
    assert.match(issueAt(scope, 'classes.notes.scope').message, /tenant/);
    const name = issuesOf(
      'version: 1\nclasses:\n  Notes:\n    description: x\n    phi: false\n    cacheable: false\n',
    );
    assert.equal(issueAt(name, 'classes.Notes').line, 3);
  });

  test('collects every problem into one error: unknown exception class, duplicate id, bad expiry', () => {
    const text = `${oneClass('description: x', 'phi: false', 'cacheable: true', 'maxTtlSeconds: 60')}
exceptions:
  - id: EXC-1
    class: note
    owner: a
    reason: b
    compensatingControl: c
    expires: 2026-12-31
    allow: { maxTtlSeconds: 600 }
  - id: EXC-1
    class: notes
    owner: a
    reason: b
    compensatingControl: c
    expires: 2026-12-31T00:00:00
    allow: { maxTtlSeconds: 600 }
`;
    const issues = issuesOf(text);
    assert.equal(issueAt(issues, 'exceptions[0].class').line, 10);
    assert.equal(issueAt(issues, 'exceptions[1].id').line, 16);
    assert.match(issueAt(issues, 'exceptions[1].expires').message, /zone/);
    assert.equal(issues.length, 3);
  });

  test('an exception that makes an uncapped class cacheable must give a cap', () => {
    const text = `${oneClass('description: x', 'phi: true', 'cacheable: false')}
exceptions:
  - { id: E, class: notes, owner: a, reason: b, compensatingControl: c, expires: 2026-12-31, allow: { cacheable: true } }
`;
    issueAt(issuesOf(text), 'exceptions[0].allow.maxTtlSeconds');
  });

  test('POL-YAML-01: a YAML syntax error is a PolicyInvalidError with its line, and quotes no file contents', () => {
    const text = 'version: 1\nclasses:\n  notes:\n    description: "SECRET-TOKEN-XYZ\n    phi: [true\n';
    const issues = issuesOf(text);
    assert.ok(issues.length > 0);
    assert.ok(issues.every((issue) => typeof issue.line === 'number' && issue.line >= 4));
    assert.ok(issues.every((issue) => !issue.message.includes('SECRET-TOKEN-XYZ')));
  });

  test('reads JSON too, and refuses an empty document', () => {
    const policy = parsePolicy(
      '{"version": 1, "classes": {"flags": {"description": "x", "phi": false, "cacheable": false}}}',
      'p.json',
    );
    assert.equal(policy.dataClass('flags')?.cacheable, false);
    issueAt(issuesOf(''), '(root)');
    issueAt(issuesOf('version: 2\nclasses: {}\n'), 'version');
  });
});

describe('loadPolicyFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phicache-policy-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('loads a valid file', async () => {
    const path = join(dir, 'ok.yaml');
    await writeFile(path, oneClass('description: x', 'phi: false', 'cacheable: true', 'maxTtlSeconds: 60'));
    assert.equal((await loadPolicyFile(path)).dataClass('notes')?.maxTtlMs, 60_000);
  });

  test('a file that cannot be read is ERR_POLICY_INVALID with the cause, and not a PolicyInvalidError', async () => {
    for (const path of [join(dir, 'missing.yaml'), dir]) {
      await assert.rejects(loadPolicyFile(path), (error: unknown) => {
        assert.ok(error instanceof PhiCacheError);
        assert.ok(!(error instanceof PolicyInvalidError));
        assert.equal(error.code, 'ERR_POLICY_INVALID');
        assert.ok(error.cause instanceof Error);
        return true;
      });
    }
  });

  test('an invalid file names the file path as its source', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, 'version: 1\nclasses:\n  notes: {}\n');
    await assert.rejects(loadPolicyFile(path), (error: unknown) => {
      assert.ok(error instanceof PolicyInvalidError);
      assert.ok(error.message.includes(`${path}:3 classes.notes.description`));
      return true;
    });
  });
});
