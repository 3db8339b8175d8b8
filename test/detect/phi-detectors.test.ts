import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  findPhi,
  findPhiInValue,
  isPhiFieldName,
  isValidNpi,
  type PhiKind,
} from '../../src/detect/phi-detectors.js';

function kinds(text: string): PhiKind[] {
  return findPhi(text).map((match) => match.kind);
}

describe('PHI detectors', () => {
  test('SSNs with dashes or spaces match; the SSA never issues 000, 666 or 9xx areas, 00 groups or 0000 serials', () => {
    for (const ssn of ['123-45-6789', '001-01-0001', '899 99 9999', 'ssn:665-12-3456;']) {
      assert.deepEqual(kinds(ssn), ['ssn'], ssn);
    }
    for (const invalid of [
      '000-12-3456',
      '666-12-3456',
      '900-12-3456',
      '987-65-4329',
      '123-00-4567',
      '123-45-0000',
      '123-45 6789', // mixed separators
      '123456789', // bare digits: ids look so too
      '1123-45-6789',
      '123-45-67890',
    ]) {
      assert.deepEqual(kinds(invalid), [], invalid);
    }
  });

  test('a match gives its kind and place, never the text', () => {
    const [match] = findPhi('patient 123-45-6789 seen');
    assert.deepEqual(match, { kind: 'ssn', index: 8, length: 11 });
    assert.equal(Object.values(match!).includes('123-45-6789'), false);
  });

  test('MRN-like identifiers need their label', () => {
    for (const mrn of [
      'MRN00482913',
      'mrn: 4829131',
      'patient_id=A123456',
      'Medical Record No 5566778',
      'chart-id/778899',
    ]) {
      assert.deepEqual(kinds(mrn), ['mrn'], mrn);
    }
    for (const other of ['order 00482913', 'mrn 1234', 'patientcount 1234567', 'tenant:st-marys']) {
      assert.deepEqual(kinds(other), [], other);
    }
  });

  test('emails', () => {
    assert.deepEqual(kinds('write to jane.doe+lab@st-marys.example.org now'), ['email']);
    for (const other of ['user@localhost', '@handle', 'a@b.c']) assert.deepEqual(kinds(other), [], other);
  });

  test('phone numbers with separators, parentheses or a plus', () => {
    for (const phone of [
      '(415) 555-0134',
      '415-555-0134',
      '415.555.0134',
      '+1 415 555 0134',
      '+441632960961',
    ]) {
      assert.deepEqual(kinds(phone), ['phone'], phone);
    }
    for (const other of ['4155550134', '115-555-0134', '415-155-0134', 'v1.415.555']) {
      assert.deepEqual(kinds(other), [], other);
    }
  });

  test('bare calendar dates read as dates of birth; timestamps do not', () => {
    for (const date of ['1980-04-12', 'dob 4/12/1980', '04/12/1980', '12.04.1980']) {
      assert.deepEqual(kinds(date), ['date-of-birth'], date);
    }
    for (const other of [
      '2026-12-02T10:47:13Z',
      '1980-13-01',
      '1980-02-32',
      '1899-01-01',
      '13/12/1980',
      'v2.1.0',
    ]) {
      assert.deepEqual(kinds(other), [], other);
    }
  });

  test('NPIs match only with a right Luhn check digit', () => {
    // 1234567893 is the CMS example NPI; 1245319599 and 2000000002 check out too.
    for (const npi of ['1234567893', '1245319599', '2000000002']) {
      assert.equal(isValidNpi(npi), true, npi);
      assert.deepEqual(kinds(`npi ${npi}`), ['npi'], npi);
    }
    for (const wrong of ['1234567890', '1245319590', '3234567893', '123456789', '12345678930']) {
      assert.equal(isValidNpi(wrong), false, wrong);
      assert.deepEqual(kinds(wrong), [], wrong);
    }
  });

  test('ids, hashes and timestamps are not PHI', () => {
    for (const text of [
      'job:7f3c9a2e-1b4d-4e8f-9a6b-2c1d0e9f8a7b',
      'hmac-sha256:q3Xz0f9Gm2hYV5cK1uT8wB4nR7eL6pA2sD0jH3kM9oI',
      'phc:e:st-marys:0123456789abcdef',
      'task 42 ready at 2026-12-02T10:00:00.000Z',
      'sess:abc123',
    ]) {
      assert.deepEqual(kinds(text), [], text);
    }
  });

  test('field names say PHI whatever their case or separators', () => {
    for (const name of ['ssn', 'SSN', 'first_name', 'firstName', 'date-of-birth', 'DOB', 'patientName']) {
      assert.equal(isPhiFieldName(name), true, name);
    }
    for (const name of ['taskId', 'tenant', 'userId', 'names', 'id'])
      assert.equal(isPhiFieldName(name), false, name);
  });

  test('a value is walked to its fields and strings, with paths and never values', () => {
    const findings = findPhiInValue({
      taskId: 'job-17',
      patient: { firstName: 'Jane', ref: 'MRN00482913' },
      notes: ['call (415) 555-0134'],
      '123-45-6789': true,
    });
    assert.deepEqual(findings, [
      { path: '$.patient.firstName', kind: 'field-name' },
      { path: '$.patient.ref', kind: 'mrn' },
      { path: '$.notes[0]', kind: 'phone' },
      { path: '$[key]', kind: 'ssn' },
    ]);
    assert.deepEqual(findPhiInValue({ taskId: 'job-17', attempts: 3, tenant: 'st-marys' }), []);
  });

  test('a hostile value cannot make the walk expensive: cycles, depth and size are bounded', () => {
    const cycle: Record<string, unknown> = { id: 1 };
    cycle.self = cycle;
    assert.deepEqual(findPhiInValue(cycle), []);
    let deep: unknown = 'ssn 123-45-6789';
    for (let i = 0; i < 10_000; i += 1) deep = [deep];
    assert.deepEqual(findPhiInValue(deep), []);
    const wide = Array.from({ length: 50_000 }, () => 'x');
    wide.push('123-45-6789');
    assert.deepEqual(findPhiInValue(wide, { maxNodes: 1000 }), []);
  });
});
