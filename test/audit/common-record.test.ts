import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readCommonRecord } from '../../src/audit/common-record.js';
import { parseLine, scanRecordLine } from '../../src/audit/parse-line.js';
import { reencodings } from './reencode.js';
import { writeLog } from './trail-fixture.js';

/** Lines a reader of the common shape must decide as the general scan does: one field changed at a time. */
function edited(line: string): string[] {
  const swaps: [string | RegExp, string][] = [
    [/"ts":"[^"]*"/, '"ts":"2026-11-23T24:00:00.000Z"'],
    [/"ts":"[^"]*"/, '"ts":"2026-11-23T24:00:00.500Z"'],
    [/"ts":"[^"]*"/, '"ts":"2026-11-23T23:59:60.000Z"'],
    [/"ts":"[^"]*"/, '"ts":"2026-13-23T10:00:00.000Z"'],
    [/"ts":"[^"]*"/, '"ts":"2026-02-31T10:00:00.000Z"'],
    [/"ts":"[^"]*"/, '"ts":"2026-11-23T10:00:00Z"'],
    [/"ts":"[^"]*"/, '"ts":"not a time"'],
    [/"seq":\d+/, '"seq":0'],
    [/"seq":\d+/, '"seq":9007199254740993'],
    [/"seq":\d+/, '"seq":-1'],
    [/"seq":\d+/, '"seq":07'],
    [/"mk":\d+/, '"mk":9007199254740993'],
    [/"mk":\d+/, '"mk":-0'],
    [/"outcome":\{/, '"outcome":{"count":9007199254740993,'],
    [/"outcome":\{/, '"outcome":{"count":-3,'],
    [/"outcome":\{/, '"outcome":{"code":"ERR_X","count":0,'],
    [/"action":"[^"]*"/, '"action":"audit.open"'],
    [/"action":"[^"]*"/, '"action":"audit.outage"'],
    [/"stream":"[^"]*"/, '"stream":"other"'],
    [/"hash":"[^"]*"/, `"hash":"${'A'.repeat(64)}"`],
    [/"mac":"[^"]*"/, `"mac":"${'a'.repeat(63)}"`],
    [/"tenant":"[^"]*"/, '"tenant":"st-mary\u00e9s"'],
    [/"tenant":"[^"]*"/, '"tenant":"st-\ud83d\ude00"'],
    [/"tenant":"[^"]*"/, '"tenant":"st-\u0001"'],
    [/"tenant":"[^"]*"/, '"tenant":null'],
    [/"class":("[^"]*"|null)/, '"class":7'],
    [/"decision":(\{[^}]*\}|null)/, '"decision":null'],
    [/"actor":\{"principal":("[^"]*"|null)/, '"actor":{"principal":null'],
    [/"dek":("[^"]*"|null)/, '"dek":"dek-1"'],
    [/"v":1/, '"v":2'],
    [/"kid":/, '"detail":{"a":1},"kid":'],
  ];
  return swaps.map(([from, to]) => line.replace(from, to));
}

describe('the common-shape record reader', () => {
  test('reads what the general scan reads, and decides every other line the same way', async () => {
    const { files } = await writeLog(400);
    const lines = files
      .filter((file) => /(access|admin)-\d{6}\.jsonl$/.test(file.path))
      .flatMap((file) => ('text' in file ? file.text.split('\n') : 'lines' in file ? file.lines : []))
      .filter((line) => line.startsWith('{"action"'));
    let common = 0;
    let others = 0;
    for (const line of lines) {
      const variants = [line, ...edited(line), ...reencodings(line).map(([, text]) => text)];
      for (const text of variants) {
        const fast = readCommonRecord(text);
        if (fast === undefined) {
          others += 1;
          continue;
        }
        common += 1;
        assert.deepEqual({ ...fast }, scanRecordLine(text), text);
        assert.equal(parseLine(text).kind, 'record');
      }
    }
    // The writer's own records are read the fast way; the edits and re-encodings mostly are not.
    assert.ok(common >= lines.length, `${common} of ${lines.length} lines read by the common shape`);
    assert.ok(others > 10 * lines.length, `${others} lines left to the general scan`);
  });

  test('a time whose hour is 24 is valid only at .000: the general scan decides it, as it decides the rest', () => {
    const [line] = edited(
      '{"action":"get","actor":{"principal":"p","service":"s"},"chain":"c","class":null,"decision":null,"dek":null,"key":null,"kid":null,"mk":1,"outcome":{"result":"hit"},"prev":"p","purpose":null,"seq":1,"stream":"access","tenant":"t","ts":"2026-11-23T09:30:00.001Z","v":1,"hash":"' +
        'a'.repeat(64) +
        '","mac":"' +
        'b'.repeat(64) +
        '"}',
    );
    assert.equal(readCommonRecord(line!), undefined);
    assert.notEqual(scanRecordLine(line!), undefined);
  });
});
