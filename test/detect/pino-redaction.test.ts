import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { pinoRedaction } from '../../src/detect/pino-redaction.js';
import { PhiSinkCheck } from '../../src/testing/phi-sink-check.js';

describe('pino redaction and the PHI sink check', () => {
  test('a real pino logger with pinoRedaction() writes no PHI field, in any usual spelling, up to three levels down', () => {
    const sink = new PhiSinkCheck();
    const logger = pino({ redact: pinoRedaction() }, sink.stream);
    logger.info({ ssn: '078-05-1120', patient: { dateOfBirth: '1980-02-03', first_name: 'Jane' } }, 'lookup');
    logger.info({ request: { body: { Email: 'jane@example.org', mrn: 'MRN 00123456' } } }, 'lookup');
    logger.info({ appointmentId: 'a-123' }, 'ok');
    sink.stream.end();
    assert.equal(sink.writes, 3);
    sink.assertClean();
  });

  test('the sink check fails on PHI in a value pino cannot redact by name, and names kinds, never text', () => {
    const sink = new PhiSinkCheck();
    const logger = pino({ redact: pinoRedaction() }, sink.stream);
    logger.info('called back patient at (415) 555-0134 about 078-05-1120');
    assert.throws(
      () => sink.assertClean(),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_SINK_SAW_PHI');
        assert.match(error.message, /phone/);
        assert.match(error.message, /ssn/);
        assert.ok(!error.message.includes('555-0134') && !error.message.includes('078-05'));
        return true;
      },
    );
  });

  test('invalid SSNs and NPIs do not trip the check', () => {
    const sink = new PhiSinkCheck();
    sink.record('ids 000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000 npi 1234567890');
    sink.assertClean();
    sink.record('npi 1234567893');
    assert.throws(() => sink.assertClean(), { code: 'ERR_SINK_SAW_PHI' });
  });
});
