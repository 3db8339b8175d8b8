import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Failure, failureResponse } from '../../src/policy/failure-mode.js';
import type { FailureMode } from '../../src/policy/policy.js';

/** DESIGN.md §5, row by row: failure, operation, then the response under closed, miss and read-only. */
const TABLE: [Failure, 'read' | 'write', string, string, string][] = [
  ['key-service-down', 'read', 'throw', 'miss', 'use-held-keys'],
  ['key-service-down', 'write', 'throw', 'drop', 'drop'],
  ['key-service', 'read', 'throw', 'miss', 'miss'],
  ['key-service', 'write', 'throw', 'drop', 'drop'],
  ['store', 'read', 'miss', 'miss', 'miss'],
  ['store', 'write', 'drop', 'drop', 'drop'],
  ['audit', 'read', 'throw', 'throw', 'throw'],
  ['audit', 'write', 'throw', 'throw', 'throw'],
];
const MODES: FailureMode[] = ['closed', 'miss', 'read-only'];

describe('PHI-FAIL-01 the failure table', () => {
  for (const [failure, operation, ...responses] of TABLE) {
    test(`PHI-FAIL-01 ${failure} on ${operation}: ${responses.join(' / ')}`, () => {
      for (const [i, mode] of MODES.entries()) {
        assert.equal(failureResponse(mode, failure, operation), responses[i], `${mode}`);
      }
    });
  }

  test('PHI-FAIL-01 no failure of a write ever serves held keys, and no store failure ever throws', () => {
    for (const mode of MODES) {
      for (const failure of ['key-service-down', 'key-service', 'store', 'audit'] as const) {
        assert.notEqual(failureResponse(mode, failure, 'write'), 'use-held-keys');
        assert.notEqual(failureResponse(mode, failure, 'write'), 'miss');
      }
      assert.notEqual(failureResponse(mode, 'store', 'read'), 'throw');
    }
  });
});
