import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { canonicalRecordBody } from '../../src/audit/canonical-record.js';
import { event } from './trail-fixture.js';

const body = (i: number) => ({
  ...event(i % 3 ? 'access' : 'admin', Date.UTC(2026, 10, 23) + i),
  chain: 'c-1',
  seq: i + 1,
  mk: 493_412,
  prev: 'a'.repeat(64),
});

describe('canonicalRecordBody', () => {
  test('equals the generic canonical JSON for every record shape the trail writes', () => {
    for (let i = 0; i < 500; i++) {
      const record = body(i);
      assert.equal(canonicalRecordBody(record), canonicalJson(record));
      const withDetail = { ...record, detail: { sinks: 'file', everyMs: 10_000 } };
      assert.equal(canonicalRecordBody(withDetail), canonicalJson(withDetail));
      const denied = {
        ...record,
        decision: null,
        outcome: { result: 'denied', code: 'ERR_X' },
        class: null,
        key: null,
      };
      assert.equal(canonicalRecordBody(denied), canonicalJson(denied));
    }
  });

  test('off the known shape (a parsed line an attacker wrote) it falls back to the generic serializer', () => {
    const shapes: Record<string, unknown>[] = [
      { ...body(1), extra: 'field' },
      { ...body(1), actor: { service: 's', principal: 'p', role: 'admin' } },
      { ...body(1), actor: 'not an object' },
      { ...body(1), decision: { effect: 'allow' } },
      { ...body(1), seq: { nested: [1, 2] } },
      { ...body(1), ts: undefined },
      { ...body(1), actor: null },
      { ...body(1), outcome: null },
      { ...body(1), outcome: 'ok' },
      { ...body(1), decision: 'allow' },
      { ...body(1), tenant: { id: 't' } },
      { ...body(1), outcome: { result: 'ok', extra: 1 } },
      { ...body(1), outcome: { result: 'ok', count: 1.5 } },
      { ...body(1), actor: { service: 's' } },
      { v: 1 },
    ];
    // Both serializers must agree, down to refusing the same input (a fractional number cannot be canonical).
    const outcome = (
      serialize: (value: Record<string, unknown>) => string,
      shape: Record<string, unknown>,
    ) => {
      try {
        return serialize(shape);
      } catch (error) {
        return `throws ${(error as Error).name}`;
      }
    };
    for (const shape of shapes)
      assert.equal(outcome(canonicalRecordBody, shape), outcome(canonicalJson, shape));
  });
});
