import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PolicyDeniedError } from '../../src/errors.js';
import { clinician, makeCache } from '../helpers/make-cache.js';

const summary = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };
/** Caller input that must not reach a record: a purpose with a patient id in it. */
const badPurpose = 'chart-review-for-MRN00482913-Garcia';

function isPurposeRefusal(error: unknown): boolean {
  assert.ok(error instanceof PolicyDeniedError, `expected PolicyDeniedError, got ${String(error)}`);
  assert.equal(error.code, 'ERR_POLICY_PURPOSE_UNKNOWN');
  assert.equal(error.rule, 'POL-PURPOSE-01');
  assert.ok(!error.message.includes(badPurpose), 'the error does not echo the purpose');
  assert.ok(!error.message.includes('Garcia'));
  return true;
}

describe('POL-PURPOSE-01 through the cache: refused, audited as a denial, the purpose never recorded', () => {
  test('POL-PURPOSE-01: get, set, getOrSet and delete with an undeclared purpose', async () => {
    const t = await makeCache();
    await t.cache.set(summary, { hba1c: 7.9 }, clinician);
    const before = t.audit.events.length;
    const ctx = { ...clinician, purpose: badPurpose };
    let factoryCalls = 0;

    await assert.rejects(t.cache.get(summary, ctx), isPurposeRefusal);
    await assert.rejects(t.cache.set(summary, { hba1c: 8.1 }, ctx), isPurposeRefusal);
    await assert.rejects(
      t.cache.getOrSet(summary, ctx, () => {
        factoryCalls += 1;
        return { hba1c: 8.1 };
      }),
      isPurposeRefusal,
    );
    await assert.rejects(t.cache.delete(summary, ctx), isPurposeRefusal);
    assert.equal(factoryCalls, 0, 'a refused getOrSet never calls its factory');

    const denials = t.audit.events.slice(before);
    assert.deepEqual(
      denials.map((e) => [e.action, e.decision, e.outcome, e.purpose]),
      ['get', 'set', 'get', 'delete'].map((action) => [
        action,
        { effect: 'deny', rule: 'POL-PURPOSE-01' },
        { result: 'denied', code: 'ERR_POLICY_PURPOSE_UNKNOWN' },
        null,
      ]),
    );
    // Who asked is still recorded: only the refused purpose is left out.
    assert.ok(denials.every((e) => e.actor.principal === 'dr.ada' && e.tenant === 'st-marys'));
    const everything = JSON.stringify(t.audit.events);
    assert.ok(!everything.includes('Garcia') && !everything.includes('chart-review'), 'no record holds it');

    // The refused write stored nothing: the entry still holds the first value.
    assert.deepEqual(await t.cache.get(summary, clinician), { hba1c: 7.9 });
    await t.cache.close();
  });

  test('POL-PURPOSE-01: a declared purpose is allowed and recorded as given', async () => {
    const t = await makeCache();
    for (const purpose of ['treatment', 'payment', 'operations']) {
      const ctx = { ...clinician, purpose };
      await t.cache.set(summary, { purpose }, ctx);
      assert.deepEqual(await t.cache.get(summary, ctx), { purpose });
      assert.deepEqual(
        t.audit.events.slice(-2).map((e) => [e.action, e.decision?.rule, e.outcome.result, e.purpose]),
        [
          ['set', 'POL-ALLOW-01', 'ok', purpose],
          ['get', 'POL-ALLOW-01', 'hit', purpose],
        ],
      );
    }
    await t.cache.close();
  });

  test('POL-PURGE-01: a purge is not refused for its purpose: removing PHI is always allowed', async () => {
    const t = await makeCache();
    await t.cache.set(summary, { hba1c: 7.9 }, clinician, { tags: { patient: 'MRN00482913' } });
    const admin = { tenant: 'st-marys', principal: 'portal', purpose: 'logout' };
    assert.equal(await t.cache.purgeScope(admin, { user: 'dr.ada' }), 1);
    const purge = t.audit.events.at(-1);
    assert.equal(purge?.decision?.rule, 'POL-PURGE-01');
    assert.equal(purge?.purpose, 'logout');
    await t.cache.close();
  });
});
