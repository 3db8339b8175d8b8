import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { allowRules, denyRules, lintRules } from '../../src/policy/rules.js';

/** Test titles live in the compiled test files: policy and CLI tests, and the cache tests that exercise purges. */
const testDirs = ['./', '../cli/', '../cache/'].map((dir) => new URL(dir, import.meta.url));

test('every rule id appears in the title of a test', async () => {
  const titles: string[] = [];
  for (const dir of testDirs) {
    for (const file of (await readdir(dir)).filter((name) => name.endsWith('.test.js'))) {
      if (file === 'rule-coverage.test.js') continue;
      const source = await readFile(new URL(file, dir), 'utf8');
      for (const match of source.matchAll(/\b(?:test|it|describe)\(\s*(['"`])((?:(?!\1).)*)\1/g)) {
        titles.push(match[2] ?? '');
      }
    }
  }
  const ids = [...Object.keys(denyRules), ...Object.keys(allowRules), ...Object.keys(lintRules)];
  const untested = ids.filter((id) => !titles.some((title) => title.includes(id)));
  assert.deepEqual(untested, []);
  assert.ok(ids.length >= 14);
});
