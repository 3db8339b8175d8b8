import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fakePatients, findLeaks } from '../fixtures/fake-patients.js';
import { makeCache } from '../helpers/make-cache.js';

describe('PHI-LEAK-01 no plaintext PHI outside the process', () => {
  test('a fake-patient corpus leaves no name, SSN, MRN, birth date or note in the store, the audit trail, errors or events', async () => {
    const t = await makeCache();
    const outside: string[] = [];
    t.cache.on('tamper', (event) => outside.push(JSON.stringify(event)));
    t.cache.on('store-error', (event) =>
      outside.push(JSON.stringify({ ...event, cause: String(event.cause) })),
    );
    const remember = (error: unknown) => {
      const e = error as Error & { hint?: string; rule?: string };
      outside.push(`${e.name} ${e.message} ${e.hint ?? ''} ${e.rule ?? ''} ${String(e.cause ?? '')}`);
    };

    for (const [i, p] of fakePatients.entries()) {
      // Clinicians named like patients and sessions holding MRNs: ids in every position must stay hashed.
      const ctx = { tenant: 'st-marys', user: p.name, principal: `clinician-${i}`, purpose: 'treatment' };
      const ref = { class: 'encrypted-phi', resource: 'lab-summary', id: p.mrn };
      const value = {
        name: p.name,
        ssn: p.ssn,
        dob: p.dateOfBirth,
        phone: p.phone,
        address: p.address,
        note: p.note,
      };
      await t.cache.set(ref, value, ctx, {
        tags: { patient: p.mrn, encounter: `${p.mrn}-${p.dateOfBirth}` },
      });
      assert.deepEqual(await t.cache.get(ref, ctx), value);
      await t.cache.get({ ...ref, id: p.ssn }, ctx);
      await t.cache.getOrSet({ ...ref, resource: 'chart-header', id: p.mrn }, ctx, () => ({ name: p.name }));
      // Refusals of every kind, each with patient data in the request.
      const refusals = [
        t.cache.set({ ...ref, class: 'full-patient-record' }, value, ctx),
        t.cache.set(ref, value, ctx, { ttlMs: 999_999 }),
        t.cache.set(ref, value, { tenant: 'st-marys', user: p.name }),
        t.cache.set(ref, value, ctx, { tags: { [p.name]: p.ssn } }),
        t.cache.set(
          { class: 'session-token', resource: 's', id: p.mrn },
          { sid: p.mrn, [p.name]: p.note },
          {
            tenant: 'st-marys',
            session: p.ssn,
          },
        ),
        t.cache.set({ ...ref, class: p.name }, value, ctx),
      ];
      for (const refusal of refusals) await refusal.then(() => assert.fail('should refuse'), remember);
      if (i % 4 === 0) await t.cache.purgeTag({ tenant: 'st-marys', principal: 'lab' }, 'patient', p.mrn);
      if (i % 4 === 1)
        await t.cache.purgeScope({ tenant: 'st-marys', principal: 'portal' }, { user: p.name });
      if (i % 4 === 2) await t.cache.delete(ref, ctx);
    }
    // Tamper with one entry so that the tamper path runs too.
    const entry = t.store.writes.find((w) => w.key.startsWith('phc:e:'))!;
    await t.memory.set(entry.key, Buffer.concat([entry.value, Buffer.from(fakePatients[0]!.name)]), {
      ttlMs: 1000,
    });
    t.faults.store.down = true;
    await t.cache.get(
      { class: 'encrypted-phi', resource: 'lab-summary', id: fakePatients[0]!.mrn },
      {
        tenant: 'st-marys',
        user: fakePatients[0]!.name,
        principal: 'c',
        purpose: 'treatment',
      },
    );
    t.faults.store.down = false;

    assert.ok(t.store.writes.length >= fakePatients.length * 2, 'the corpus went through the store');
    assert.ok(t.audit.events.length > 300, 'and through the audit trail');
    assert.deepEqual(findLeaks(t.store.transcript()), [], 'store keys, values and tags');
    // Names are a kind, a policy class at most, and an HMAC: nothing a caller passed in, no braces for hash slots.
    const names = t.store.writes.flatMap((w) => [w.key, ...(w.options.tags ?? [])]);
    for (const name of names) assert.match(name, /^phc:[ekmpstv]:(?:[a-z][a-z0-9-]*:)?[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(findLeaks(t.audit.events.map((e) => JSON.stringify(e)).join('\n')), [], 'audit events');
    assert.deepEqual(findLeaks(outside.join('\n')), [], 'errors and events');
    assert.ok(outside.length >= fakePatients.length * 6, 'every refusal was looked at');
    await t.cache.close();
  });

  test('the leak scan itself finds planted plaintext (the check can fail)', () => {
    const p = fakePatients[3]!;
    assert.deepEqual(findLeaks(`prefix ${p.ssn} suffix`), [p.ssn]);
    assert.ok(findLeaks(Buffer.from(JSON.stringify({ n: p.name }))).includes(p.name));
  });
});
