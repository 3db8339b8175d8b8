import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { recordLineBody, recordMac, sha256Hex } from '../../src/audit/record.js';
import { type ProbeLog, probeLog } from './probe-fixture.js';
import { keys } from './trail-fixture.js';

/**
 * Mutation probes, part 3 (PHI-AUDIT-01): every non-canonical re-encoding of a record's fields is detected and
 * named by its file and line: a `\u00XX` escape where none is needed, a repeated key, another key order, spacing,
 * another spelling of a number, other line ends. Each is probed twice: with the hash left as it was, and with the
 * hash recomputed over the line's new bytes and a valid MAC, so that the line itself would check but for its form.
 */
describe('PHI-AUDIT-01 the verifier refuses every non-canonical encoding of a record', () => {
  let log: ProbeLog;
  before(async () => {
    log = await probeLog();
  });

  test('every re-encoding of every field of sampled records, hash kept or recomputed, is a non-canonical finding at its line', async () => {
    const picks = [0, 1, Math.floor(log.records.length / 2), log.records.length - 1];
    let probed = 0;
    for (const index of picks) {
      const line = log.records[index]!;
      for (const [what, body] of reencodings(recordLineBody(line)!)) {
        for (const rehash of [false, true]) {
          const next = [...log.records];
          next[index] = rehash ? sealed(body, JSON.parse(line).mk as number) : withTail(body, line);
          assert.notEqual(next[index], line, what);
          const report = await log.assertDetected(`${what} of record ${index + 1}`, next);
          const [file, lineNo] = placeOf(log, index);
          const here = report.findings.filter((f) => f.file === file && f.line === lineNo);
          assert.ok(
            here.some((f) => f.kind === 'non-canonical'),
            `${what} of record ${index + 1} (rehash ${rehash}): ${here.map((f) => f.kind)}`,
          );
          // Recomputed, the line's own hash checks: only its form gives it away.
          if (rehash && !what.startsWith('line'))
            assert.deepEqual(
              here.map((f) => f.kind),
              ['non-canonical'],
              what,
            );
          probed += 1;
        }
      }
    }
    assert.ok(probed > 400, `${probed} re-encodings probed`);
  });

  test('a key hash written with an escape, re-hashed and re-MACed, is refused though a parser reads the same value', async () => {
    const index = 7;
    const line = log.records[index]!;
    const body = recordLineBody(line)!;
    const escaped = body.replace('"key":"hmac-sha256:', '"key":"hmac-sha256\\u003a');
    assert.deepEqual(JSON.parse(escaped), JSON.parse(body), 'the same values to a JSON parser');
    const next = [...log.records];
    next[index] = sealed(escaped, JSON.parse(line).mk as number);
    const report = await log.verify(next, log.checkpoints, true);
    const [file, lineNo] = placeOf(log, index);
    assert.ok(
      report.findings.some((f) => f.kind === 'non-canonical' && f.file === file && f.line === lineNo),
    );
  });

  test('a line that is not valid UTF-8 is refused, not decoded into something else', async () => {
    const { lineBatches } = await import('../../src/audit/read-log.js');
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'phicache-utf8-'));
    const path = join(dir, 'x.jsonl');
    await writeFile(
      path,
      Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\nok\n')]),
    );
    const batches = [];
    for await (const batch of lineBatches({ path: 'c/x.jsonl', file: path })) batches.push(batch);
    assert.equal(batches[0]?.bad.get(0), 'not-utf8');
    assert.equal(batches[0]?.bad.get(1), undefined);
  });
});

/** The record's file and line number in the probe log's layout. */
function placeOf(log: ProbeLog, index: number): [string, number] {
  let rest = index;
  for (const [n, size] of log.fileSizes.entries()) {
    if (rest < size || n === log.fileSizes.length - 1)
      return [`${log.chain}/access-${String(n + 1).padStart(6, '0')}.jsonl`, rest + 1];
    rest -= size;
  }
  throw new Error('unreachable');
}

function withTail(body: string, line: string): string {
  return `${body.slice(0, -1)}${line.slice(line.length - ',"hash":"","mac":""}'.length - 128)}`;
}

/** The line as a writer holding the stream key would seal these exact bytes. */
function sealed(body: string, mk: number): string {
  const hash = sha256Hex(body);
  return `${body.slice(0, -1)},"hash":"${hash}","mac":"${recordMac(keys.streamKey(mk), hash)}"}`;
}

/** Every generated re-encoding of a canonical record body that a JSON parser reads as (nearly) the same record. */
function reencodings(body: string): [string, string][] {
  const value = JSON.parse(body) as Record<string, unknown>;
  const entries = Object.entries(value).map(
    ([k, v]) => [k, v, `${JSON.stringify(k)}:${canonicalJson(v)}`] as const,
  );
  const raw: string[] = entries.map(([, , text]) => text);
  assert.equal(`{${raw.join(',')}}`, body, 'the fixture is canonical');
  const rebuild = (parts: readonly string[]) => `{${parts.join(',')}}`;
  const out: [string, string][] = [];
  const unicodeEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  for (const [i, [key, v, text]] of entries.entries()) {
    const set = (what: string, replacement: string | string[]) => {
      const parts = [...raw];
      parts.splice(i, 1, ...(Array.isArray(replacement) ? replacement : [replacement]));
      out.push([`${what} (${key})`, rebuild(parts)]);
    };
    const valueText = canonicalJson(v);
    set('escaped key', `"${unicodeEscape(key[0]!)}${key.slice(1)}":${valueText}`);
    if (typeof v === 'string' && v.length > 0) {
      const at = Math.floor(v.length / 2);
      const inner = JSON.stringify(v).slice(1, -1);
      // The middle character, when it needs no escape of its own.
      if (inner.length === v.length)
        set(
          'escaped value',
          `"${key}":"${inner.slice(0, at)}${unicodeEscape(v[at]!)}${inner.slice(at + 1)}"`,
        );
      if (v.includes('/')) set('escaped solidus', `"${key}":${JSON.stringify(v).replace('/', '\\/')}`);
    }
    if (typeof v === 'object' && v !== null) {
      const nested = Object.entries(v as Record<string, unknown>);
      if (nested.length > 0) {
        const [k0, v0] = nested[0]!;
        set(
          'escaped nested key',
          `"${key}":${valueText.replace(`"${k0}"`, `"${unicodeEscape(k0[0]!)}${k0.slice(1)}"`)}`,
        );
        set(
          'repeated nested key',
          `"${key}":{"${k0}":${JSON.stringify(typeof v0 === 'string' ? 'forged' : null)},${valueText.slice(1)}`,
        );
        set('spaced nested object', `"${key}":${valueText.replace(':', ': ')}`);
      }
      if (nested.length > 1) {
        const reversed = `{${nested
          .reverse()
          .map(([k, w]) => `${JSON.stringify(k)}:${canonicalJson(w)}`)
          .join(',')}}`;
        set('reordered nested keys', `"${key}":${reversed}`);
      }
    }
    if (typeof v === 'number') {
      set('number with a fraction', `"${key}":${v}.0`);
      set('number with an exponent', `"${key}":${v}e0`);
    }
    set('key repeated, forged value first', [
      `"${key}":${typeof v === 'string' ? '"forged"' : 'null'}`,
      text,
    ]);
    set('key repeated, same value', [text, text]);
    set('space after the colon', `"${key}": ${valueText}`);
    set('space before the key', ` ${text}`);
    set('tab after the value', `${text}\t`);
    if (i + 1 < entries.length) {
      const parts = [...raw];
      [parts[i], parts[i + 1]] = [parts[i + 1]!, parts[i]!];
      out.push([`swapped with the next key (${key})`, rebuild(parts)]);
    }
  }
  out.push(['line with a leading space', ` ${body}`]);
  out.push(['line with a space before the closing brace', `${body.slice(0, -1)} }`]);
  return out;
}
