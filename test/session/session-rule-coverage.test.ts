import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { sessionRules } from '../../src/session/session-rules.js';

const testDir = new URL('./', import.meta.url);
/** The compiled session sources, where each rule id marks its enforcement point. */
const sourceDir = new URL('../../src/session/', import.meta.url);

test('every PHI-SESSION rule id marks an enforcement point in src/session/ and titles a session test', async () => {
  const titles: string[] = [];
  for (const file of (await readdir(testDir)).filter((name) => name.endsWith('.test.js'))) {
    if (file === 'session-rule-coverage.test.js') continue;
    const source = await readFile(new URL(file, testDir), 'utf8');
    for (const match of source.matchAll(/\b(?:test|it|describe)\(\s*(['"`])((?:(?!\1).)*)\1/g)) {
      titles.push(match[2] ?? '');
    }
  }
  let enforcement = '';
  for (const file of (await readdir(sourceDir)).filter(
    (name) => name.endsWith('.js') && name !== 'session-rules.js',
  )) {
    enforcement += await readFile(new URL(file, sourceDir), 'utf8');
  }
  const ids = Object.keys(sessionRules);
  assert.ok(ids.length >= 6);
  assert.deepEqual(
    ids.filter((id) => !titles.some((title) => title.includes(id))),
    [],
    'untested rules',
  );
  assert.deepEqual(
    ids.filter((id) => !enforcement.includes(id)),
    [],
    'rules with no enforcement point',
  );
});
