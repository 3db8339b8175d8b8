import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { errorCodes, errorHints, PhiCacheError, PolicyDeniedError } from '../src/errors.js';

describe('error catalogue', () => {
  test('docs/errors.md lists exactly the codes in src/errors.ts, each with its hint', async () => {
    const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = doc
      .split('\n')
      .filter((line) => line.startsWith('| `ERR_'))
      .map((line) => line.split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll('\\|', '|')));
    const documented = rows.map((cells) => cells[1]!.replaceAll('`', ''));
    assert.deepEqual([...documented].sort(), [...errorCodes].sort());
    for (const cells of rows) {
      const code = cells[1]!.replaceAll('`', '') as keyof typeof errorHints;
      assert.equal(cells[3], errorHints[code], `hint of ${code}`);
      assert.ok(cells[2]!.length > 10, `${code} says when it happens`);
    }
  });

  test('a PhiCacheError carries code, hint and cause', () => {
    const cause = new Error('socket closed');
    const error = new PhiCacheError('ERR_STORE_UNAVAILABLE', 'the store failed', { cause });
    assert.equal(error.code, 'ERR_STORE_UNAVAILABLE');
    assert.equal(error.hint, errorHints.ERR_STORE_UNAVAILABLE);
    assert.equal(error.cause, cause);
    assert.ok(error instanceof Error);
  });

  test('a PolicyDeniedError names its rule', () => {
    const error = new PolicyDeniedError('ERR_POLICY_TTL_EXCEEDED', 'PHI-TTL-01', 'ttl over the cap');
    assert.equal(error.rule, 'PHI-TTL-01');
    assert.ok(error.message.includes('PHI-TTL-01'));
    assert.ok(error instanceof PhiCacheError);
  });
});
