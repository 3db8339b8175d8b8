import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { AuditLogFile } from '../../src/audit/read-log.js';
import { recordLineBody, recordMac, sha256Hex } from '../../src/audit/record.js';
import { type Finding, type ParsedLine, verifyAuditLog } from '../../src/audit/verify.js';
import { compareWithWitness } from '../../src/audit/witness-check.js';
import { LogBuilder } from './log-builder.js';
import { reencodings } from './reencode.js';
import { keys, streamRoot } from './trail-fixture.js';

type Files = { path: string; lines: string[] }[];

/**
 * Mutation probes, part 6 (PHI-AUDIT-01), on logs of the documented format written line by line: two chains that
 * lived through outages, a clean restart and a crash, and a witness of their checkpoints. Every deletion of a
 * stream, a chain or a witnessed checkpoint, every non-canonical re-encoding of every field of every kind of line
 * (records, outage records, the opening record; checkpoints at seq 0, ordinary, final and restart ones), and every
 * edit of an outage record or a restart checkpoint is detected.
 */
describe('PHI-AUDIT-01 probes of the documented log: outages, restarts, witness', () => {
  const CHAINS = ['ward-3', 'ward-9'] as const;
  let log: Files;
  let witness: Files;
  let now: number;

  before(() => {
    log = [];
    now = 0;
    for (const chain of CHAINS) {
      const built = new LogBuilder({ chain, everyMs: 60_000, everyRecords: 30 });
      built.open().records('access', 50).records('admin', 4);
      built.outage('access', 3_600_000).records('access', 20);
      built.close().restart('close', 86_400_000).records('access', 15);
      built.restart('crash', 600_000, { tornBytes: 11 }).records('access', 20).records('admin', 2).close();
      for (const file of built.files()) {
        log.push({
          path: file.path,
          lines: 'lines' in file ? [...file.lines] : [(file as { text: string }).text],
        });
      }
      now = Math.max(now, built.now);
    }
    witness = log
      .filter((f) => f.path.endsWith('-checkpoints.jsonl'))
      .map((f) => ({ path: f.path, lines: [...f.lines] }));
  });

  // Lines parsed once across probes: each probe costs a walk of the chains, not a re-parse.
  const cache = new Map<string, ParsedLine>();
  const alone = (files: AuditLogFile[], withRoot = false) =>
    verifyAuditLog(files, { publicKey: keys.publicKey, now, cache, ...(withRoot ? { streamRoot } : {}) });
  /** Detected by the log alone or by its witness. */
  const findingsOf = async (files: Files): Promise<Finding[]> => [
    ...(await alone(files)).findings,
    ...(await compareWithWitness(files, witness, keys.publicKey)),
  ];

  test('the intact log verifies, agrees with its witness, and reports its notices', async () => {
    const report = await alone(log);
    assert.deepEqual(report.findings, []);
    assert.equal(report.vouched, report.records);
    assert.deepEqual(await compareWithWitness(log, witness, keys.publicKey), []);
    // Per chain: an outage, a restart and a crash in each stream, and one torn file.
    assert.equal(report.notices.length, CHAINS.length * (1 + 2 + 2 + 1));
  });

  test('every deletion of a stream (records and checkpoints) of each chain', async () => {
    let probes = 0;
    for (const chain of CHAINS) {
      for (const stream of ['access', 'admin']) {
        const kept = log.filter((f) => !f.path.startsWith(`${chain}/${stream}-`));
        const found = await findingsOf(kept);
        assert.ok(
          found.some((f) => f.chain === chain && f.stream === stream && /missing/.test(f.kind)),
          `${chain}/${stream}: ${found.map((f) => f.kind)}`,
        );
        // The log alone knows it too: the opening record declares the streams.
        assert.equal((await alone(kept)).ok, false, `${chain}/${stream} alone`);
        probes += 1;
      }
    }
    assert.equal(probes, 4);
  });

  test('every deletion of a chain: the witness names it', async () => {
    for (const chain of CHAINS) {
      const kept = log.filter((f) => !f.path.startsWith(`${chain}/`));
      assert.equal((await alone(kept)).ok, true, 'the other chain alone is a whole log');
      const found = await compareWithWitness(kept, witness, keys.publicKey);
      assert.deepEqual(
        found.map((f) => `${f.chain} ${f.kind}`),
        [`${chain} witness-chain-missing`],
      );
    }
  });

  test('every deletion from the log of a checkpoint the witness holds, seq-0 and restart ones included', async () => {
    let probes = 0;
    for (const file of witness) {
      for (const [i] of file.lines.entries()) {
        const cut = log.map((f) => (f.path === file.path ? { ...f, lines: f.lines.toSpliced(i, 1) } : f));
        const found = await compareWithWitness(cut, witness, keys.publicKey);
        // A final checkpoint and the restart after it seal the same seq: the one that is gone is still missing.
        assert.deepEqual(
          found.map((f) => [f.kind, f.file, f.line]),
          [['witness-checkpoint-missing', file.path, i + 1]],
        );
        assert.equal((await alone(cut)).ok, false, `${file.path}:${i + 1} alone`);
        probes += 1;
      }
    }
    assert.ok(probes >= 30, `${probes} checkpoints probed`);
  });

  test('every non-canonical re-encoding of every field of each kind of record, hash kept or recomputed', async () => {
    const chain = CHAINS[0];
    const picks: [string, number][] = [];
    const accessFiles = log.filter((f) => f.path.startsWith(`${chain}/access-0`));
    const outageFile = accessFiles.find((f) => f.lines[0]!.includes('"audit.outage"'))!;
    picks.push([outageFile.path, 0], [accessFiles[0]!.path, 3], [`${chain}/admin-000001.jsonl`, 0]);
    let probed = 0;
    for (const [path, index] of picks) {
      const line = log.find((f) => f.path === path)!.lines[index]!;
      const { mk } = JSON.parse(line) as { mk: number };
      for (const [what, body] of reencodings(recordLineBody(line)!)) {
        for (const rehash of [false, true]) {
          const next = rehash
            ? seal(body, mk)
            : `${body.slice(0, -1)}${line.slice(recordLineBody(line)!.length - 1)}`;
          assert.notEqual(next, line, what);
          const files = log.map((f) => (f.path === path ? { ...f, lines: f.lines.with(index, next) } : f));
          const report = await alone(files, rehash);
          const here = report.findings.filter((f) => f.file === path && f.line === index + 1);
          assert.ok(
            here.some((f) => NAMED.has(f.kind)),
            `${what} of ${path}:${index + 1} (rehash ${rehash}): ${here.map((f) => f.kind)}`,
          );
          probed += 1;
        }
      }
    }
    assert.ok(probed > 300, `${probed} re-encodings probed`);
  });

  test('every non-canonical re-encoding of every field of each kind of checkpoint', async () => {
    const chain = CHAINS[0];
    const path = `${chain}/access-checkpoints.jsonl`;
    const lines = log.find((f) => f.path === path)!.lines;
    const kinds = {
      'seq 0': lines.findIndex((l) => JSON.parse(l).seq === 0),
      ordinary: lines.findIndex((l) => JSON.parse(l).seq > 0 && !l.includes('"final":true')),
      final: lines.findIndex((l) => l.includes('"final":true') && !l.includes('"restart"')),
      'restart after close': lines.findIndex((l) => l.includes('"after":"close"')),
      'restart after crash': lines.findIndex((l) => l.includes('"after":"crash"')),
    };
    let probed = 0;
    for (const [kind, index] of Object.entries(kinds)) {
      assert.ok(index >= 0, kind);
      for (const [what, text] of reencodings(lines[index]!)) {
        const files = log.map((f) => (f.path === path ? { ...f, lines: f.lines.with(index, text) } : f));
        const report = await alone(files);
        const here = report.findings.filter((f) => f.file === path && f.line === index + 1);
        assert.ok(
          here.some((f) => NAMED.has(f.kind)),
          `${what} of the ${kind} checkpoint: ${here.map((f) => f.kind)}`,
        );
        probed += 1;
      }
    }
    assert.ok(probed > 250, `${probed} re-encodings probed`);
  });

  test('every edit of a field of an outage record is found, hash kept or recomputed', async () => {
    const chain = CHAINS[1];
    const file = log.find(
      (f) => f.path.startsWith(`${chain}/access-0`) && f.lines[0]!.includes('"audit.outage"'),
    )!;
    const line = file.lines[0]!;
    const body = JSON.parse(recordLineBody(line)!) as Record<string, unknown>;
    const edits: [string, Record<string, unknown>][] = [];
    for (const [key, value] of Object.entries(body)) {
      if (typeof value === 'object' && value !== null) {
        for (const [inner, v] of Object.entries(value))
          edits.push([`${key}.${inner}`, { ...body, [key]: { ...value, [inner]: edited(v) } }]);
      } else edits.push([key, { ...body, [key]: edited(value) }]);
    }
    for (const [what, changed] of edits) {
      for (const rehash of [false, true]) {
        const text = JSON.stringify(sortKeys(changed));
        const next = rehash
          ? seal(text, body.mk as number)
          : `${text.slice(0, -1)}${line.slice(recordLineBody(line)!.length - 1)}`;
        const files = log.map((f) => (f === file ? { ...f, lines: f.lines.with(0, next) } : f));
        const report = await alone(files);
        assert.equal(report.ok, false, `${what} edited (rehash ${rehash})`);
      }
    }
    assert.ok(edits.length >= 20, `${edits.length} fields edited`);
  });

  test('every edit of a field of a restart checkpoint, its signature kept, is found', async () => {
    let probed = 0;
    for (const file of log.filter((f) => f.path.endsWith('-checkpoints.jsonl'))) {
      for (const [index, line] of file.lines.entries()) {
        if (!line.includes('"restart"')) continue;
        const checkpoint = JSON.parse(line) as Record<string, unknown>;
        const restart = checkpoint.restart as Record<string, unknown>;
        const edits = [
          ...Object.keys(checkpoint)
            .filter((k) => k !== 'restart' && k !== 'sig')
            .map((k) => ({ ...checkpoint, [k]: edited(checkpoint[k]) })),
          ...Object.keys(restart).map((k) => ({
            ...checkpoint,
            restart: { ...restart, [k]: edited(restart[k]) },
          })),
        ];
        for (const changed of edits) {
          const files = log.map((f) =>
            f === file ? { ...f, lines: f.lines.with(index, JSON.stringify(changed)) } : f,
          );
          assert.equal(
            (await alone(files)).ok,
            false,
            `${file.path}:${index + 1} ${JSON.stringify(changed)}`,
          );
          probed += 1;
        }
      }
    }
    assert.ok(probed >= 60, `${probed} edits probed`);
  });
});

/**
 * How a re-encoded line is named at its place: not canonical, or, when a repeated key's last value makes it no
 * record or checkpoint of its stream at all (another `type` or `stream`), not one.
 */
const NAMED = new Set(['non-canonical', 'unparseable', 'checkpoint-unparseable']);

/** The line as a writer holding the stream key would seal these exact bytes. */
function seal(body: string, mk: number): string {
  const hash = sha256Hex(body);
  return `${body.slice(0, -1)},"hash":"${hash}","mac":"${recordMac(keys.streamKey(mk), hash)}"}`;
}

function edited(value: unknown): unknown {
  if (typeof value === 'string') return `${value.slice(0, -1)}${value.endsWith('0') ? '1' : '0'}`;
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'boolean') return !value;
  return 'forged';
}

function sortKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}
