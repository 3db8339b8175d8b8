import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import { PhiCacheError } from '../../src/errors.js';
import { fakePatients, findLeaks } from '../fixtures/fake-patients.js';
import { clinician, makeCache, testClock } from '../helpers/make-cache.js';
import { SwitchableSink } from './switchable-sink.js';
import { keys } from './trail-fixture.js';

const ref = { class: 'encrypted-phi', resource: 'lab-summary', id: 'MRN00482913' };
const isAuditError = (error: unknown) =>
  error instanceof PhiCacheError && error.code === 'ERR_AUDIT_UNAVAILABLE';

describe('PhiCache over the audit trail (fail-closed audit)', () => {
  test('with every sink failing, PHI reads and writes fail with ERR_AUDIT_UNAVAILABLE and return no value', async () => {
    const [a, b] = [new SwitchableSink('a'), new SwitchableSink('b')];
    const clock = testClock();
    const trail = new AuditTrail({ keys, sinks: [a, b], clock: () => clock.now });
    const t = await makeCache({ audit: trail }, clock);
    await t.cache.set(ref, { hba1c: 7.9 }, clinician);
    a.down = true;
    b.down = true;
    await assert.rejects(t.cache.get(ref, clinician), isAuditError);
    await assert.rejects(t.cache.set({ ...ref, id: 'MRN2' }, { hba1c: 6 }, clinician), isAuditError);
    await assert.rejects(
      t.cache.getOrSet(ref, clinician, () => ({ hba1c: 1 })),
      isAuditError,
    );
    a.down = false;
    assert.equal(
      await t.cache.get({ ...ref, id: 'MRN2' }, clinician),
      undefined,
      'the unaudited write did not stay',
    );
    await t.cache.close();
  });

  test('with one of two sinks failing, PHI operations succeed and the partial failure is reported', async () => {
    const [a, b] = [new SwitchableSink('a'), new SwitchableSink('b')];
    const clock = testClock();
    const trail = new AuditTrail({ keys, sinks: [a, b], clock: () => clock.now });
    const failures: string[] = [];
    trail.on('sink-error', (failure) => failures.push(failure.sink));
    const t = await makeCache({ audit: trail }, clock);
    b.down = true;
    await t.cache.set(ref, { hba1c: 7.9 }, clinician);
    assert.deepEqual(await t.cache.get(ref, clinician), { hba1c: 7.9 });
    assert.ok(failures.length >= 2 && failures.every((sink) => sink === 'b'));
    b.down = false;
    await t.cache.close();
  });

  test('no record holds a value or a raw patient id (fake-patient corpus)', async () => {
    const sink = new SwitchableSink('memory');
    const clock = testClock();
    const trail = new AuditTrail({ keys, sinks: [sink], clock: () => clock.now });
    const t = await makeCache({ audit: trail }, clock);
    for (const p of fakePatients) {
      const ctx = { ...clinician, user: p.name };
      const patientRef = { ...ref, id: p.mrn };
      await t.cache.set(patientRef, { name: p.name, ssn: p.ssn, dob: p.dateOfBirth, note: p.note }, ctx, {
        tags: { patient: p.mrn },
      });
      await t.cache.get(patientRef, ctx);
      await t.cache.get({ ...patientRef, id: p.ssn }, ctx);
      await t.cache
        .set({ ...patientRef, class: 'full-patient-record' }, { note: p.note }, ctx)
        .catch(() => undefined);
      await t.cache.purgeTag(clinician, 'patient', p.mrn);
      await t.cache.purgeScope(clinician, { user: p.name });
    }
    await t.cache.close();
    assert.ok(sink.lines.length > fakePatients.length * 6);
    assert.deepEqual(findLeaks(sink.lines.join('\n')), []);
  });
});
