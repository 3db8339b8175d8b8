import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ParsePool, parsedByThreads } from '../../src/audit/parse-pool.js';
import { lineBatches, listAuditLog } from '../../src/audit/read-log.js';
import { recordHash } from '../../src/audit/record.js';
import { type VerifyReport, verifyAuditLog } from '../../src/audit/verify.js';
import { PhiCacheError } from '../../src/errors.js';
import { LogBuilder } from './log-builder.js';
import { reencodings } from './reencode.js';
import { keys } from './trail-fixture.js';

/**
 * With threads, the verifier parses batches of lines on other threads and takes a clean batch whole; any other
 * batch is walked line by line. Either way the report must be the one of a walk on one thread: the same findings,
 * in the same order, at the same places, and the same counts. Logs on disk, read in small chunks so that they make
 * many batches, intact and tampered: a field, a line deleted, duplicated, swapped, re-encoded, in the middle of a
 * batch and at its edge, an outage record and the chain's opening record.
 */

/** Small chunks: a record line is ~650 bytes, so a batch holds 1 or 2 lines at 1 KiB and ~6 at 4 KiB. */
const CHUNKS = [1024, 4096] as const;
/** The chunk size whose batches the tampered lines are placed in. */
const PLACED_IN = 4096;

/** A record file's lines, by path under the audit directory. */
type Lines = Map<string, string[]>;

describe('the verifier with threads reports what it reports on one thread', () => {
  const temps: string[] = [];
  let intact: Lines;
  let checkedAt: number;
  let chain: string;
  /** The access records in chain order: [path, index in its file]. */
  let access: [string, number][];
  /** Where each batch starts in the access stream's order, read in `PLACED_IN` chunks. */
  let batchStarts: number[];

  before(async () => {
    const builder = new LogBuilder({ everyRecords: 40 })
      .open()
      .records('access', 90)
      .records('admin', 25)
      .outage('access', 20_000)
      .records('access', 70)
      .records('admin', 15)
      .close();
    chain = builder.chain;
    checkedAt = builder.now + 1000;
    intact = new Map();
    for (const file of builder.files()) if ('lines' in file) intact.set(file.path, [...file.lines]);
    access = [...intact]
      .filter(([path]) => /\/access-\d{6}\.jsonl$/.test(path))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .flatMap(([path, lines]) => lines.map((_, i) => [path, i] as [string, number]));
    const dir = await write(intact);
    batchStarts = [];
    let at = 0;
    for (const file of (await listAuditLog(dir)).filter((f) => /\/access-\d{6}\.jsonl$/.test(f.path))) {
      for await (const batch of lineBatches(file, { chunkBytes: PLACED_IN })) {
        batchStarts.push(at);
        at += batch.lines.length;
      }
    }
    assert.equal(at, access.length);
  });

  after(async () => {
    for (const dir of temps) await rm(dir, { recursive: true, force: true });
  });

  async function write(lines: Lines): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-threads-'));
    temps.push(dir);
    await mkdir(join(dir, chain));
    for (const [path, text] of lines) await writeFile(join(dir, path), text.map((l) => `${l}\n`).join(''));
    return dir;
  }

  /** The log with the access records changed by `change` (given them in chain order, as [path, line] pairs). */
  function tampered(change: (records: string[]) => string[]): Lines {
    const records = access.map(([path, i]) => intact.get(path)![i]!);
    const next = change([...records]);
    const out: Lines = new Map([...intact].map(([path, lines]) => [path, [...lines]]));
    // The changed records go back into the files in order; the last file takes any extra lines.
    const paths = [...new Set(access.map(([path]) => path))];
    let cursor = 0;
    for (const [n, path] of paths.entries()) {
      const size = intact.get(path)!.length;
      const end = n === paths.length - 1 ? next.length : cursor + size;
      out.set(path, next.slice(cursor, end));
      cursor = end;
    }
    return out;
  }

  /** Verifies the log on one thread and with two, for each chunk size: the reports must be equal. */
  async function same(lines: Lines, what: string): Promise<VerifyReport> {
    const files = await listAuditLog(await write(lines));
    let report: VerifyReport | undefined;
    for (const chunkBytes of CHUNKS) {
      const options = { publicKey: keys.publicKey, now: checkedAt, read: { chunkBytes } };
      const alone = await verifyAuditLog(files, { ...options, threads: 0 });
      const before = { ...parsedByThreads };
      const threaded = await verifyAuditLog(files, { ...options, threads: 2 });
      assert.ok(
        parsedByThreads.clean > before.clean,
        `${what} (${chunkBytes} B chunks): the threads took no clean batch`,
      );
      assert.deepEqual(threaded, alone, `${what} (${chunkBytes} B chunks)`);
      report ??= alone;
    }
    return report!;
  }

  /** The index, in chain order, of the access record with this action. */
  const indexOf = (action: string) =>
    access.findIndex(([path, i]) => JSON.parse(intact.get(path)![i]!).action === action);
  const middleOfBatch = (n: number) => batchStarts[n]! + 2;
  const batchEdge = (n: number) => batchStarts[n]!;
  const modified = (line: string) => {
    const next = line.replace(/"principal":"clinician-(\d+)"/, '"principal":"intruder-$1"');
    assert.notEqual(next, line);
    return next;
  };

  test('an intact log, on disk and in memory', async () => {
    assert.ok(batchStarts.length > 20, `many batches (${batchStarts.length})`);
    assert.ok(batchStarts[6]! - batchStarts[5]! >= 3, 'batches of several lines');
    const report = await same(intact, 'intact');
    assert.deepEqual(report.findings, []);
    assert.equal(report.vouched, report.records);
    assert.ok(report.notices.some((n) => n.kind === 'outage'));
    // Lines in memory go in batches of 1,024, and the first few are parsed here while the threads start.
    const big = new LogBuilder({ everyRecords: 500 }).open().records('access', 8000, 10).close();
    const memory = big.files();
    const options = { publicKey: keys.publicKey, now: big.now + 1000 };
    const before = parsedByThreads.clean;
    assert.deepEqual(
      await verifyAuditLog(memory, { ...options, threads: 2 }),
      await verifyAuditLog(memory, { ...options, threads: 0 }),
    );
    assert.ok(parsedByThreads.clean > before, 'the threads parsed lines given in memory');
  });

  test('an intact log of several records files is intact with threads on', async () => {
    const builder = new LogBuilder({ everyRecords: 30 }).open().records('access', 60);
    builder.restart('close', 5000).records('access', 50).records('admin', 10);
    builder.outage('access', 10_000).records('access', 40).close();
    const dir = await builder.writeTo();
    temps.push(dir);
    const files = await listAuditLog(dir);
    assert.ok(files.filter((f) => /\/access-\d{6}\.jsonl$/.test(f.path)).length >= 3);
    const before = parsedByThreads.clean;
    const report = await verifyAuditLog(files, {
      publicKey: keys.publicKey,
      now: builder.now + 1000,
      read: { chunkBytes: 1024 },
      threads: 2,
    });
    assert.ok(parsedByThreads.clean > before, 'the threads took clean batches');
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    assert.equal(report.records, builder.seq('access') + builder.seq('admin'));
    assert.equal(report.vouched, report.records);
  });

  const cases: [string, (records: string[]) => string[]][] = [
    [
      'a field modified in the middle of a batch',
      (r) => r.with(middleOfBatch(4), modified(r[middleOfBatch(4)]!)),
    ],
    [
      'a field modified at the first line of a batch',
      (r) => r.with(batchEdge(5), modified(r[batchEdge(5)]!)),
    ],
    [
      'a field modified at the last line of a batch',
      (r) => r.with(batchEdge(6) - 1, modified(r[batchEdge(6) - 1]!)),
    ],
    ['a line deleted in the middle of a batch', (r) => r.toSpliced(middleOfBatch(3), 1)],
    ['a line deleted at the edge of a batch', (r) => r.toSpliced(batchEdge(7), 1)],
    ['a line duplicated', (r) => r.toSpliced(middleOfBatch(8), 0, r[middleOfBatch(8)]!)],
    ['a line duplicated across a batch edge', (r) => r.toSpliced(batchEdge(9), 0, r[batchEdge(9) - 1]!)],
    [
      'a pair of lines swapped',
      (r) => r.toSpliced(middleOfBatch(2), 2, r[middleOfBatch(2) + 1]!, r[middleOfBatch(2)]!),
    ],
    [
      'a pair of lines swapped across a batch edge',
      (r) => r.toSpliced(batchEdge(10) - 1, 2, r[batchEdge(10)]!, r[batchEdge(10) - 1]!),
    ],
    [
      'a line re-encoded with an escape',
      (r) => {
        const line = r[middleOfBatch(5)]!;
        const escaped = reencodings(line).find(([name]) =>
          name.startsWith('escaped middle character of the value'),
        );
        assert.ok(escaped !== undefined);
        return r.with(middleOfBatch(5), escaped[1]);
      },
    ],
    [
      'the records from a batch edge on renumbered, with their links and hashes made anew',
      (r) => {
        let prev: string | undefined;
        return r.map((line, i) => {
          if (i < batchEdge(8)) return line;
          const record = JSON.parse(line) as Record<string, unknown>;
          record.seq = (record.seq as number) + 3;
          if (prev !== undefined) record.prev = prev;
          record.hash = recordHash(record as never);
          prev = record.hash as string;
          return JSON.stringify(record);
        });
      },
    ],
    ['a line that is not JSON', (r) => r.with(batchEdge(11), r[batchEdge(11)]!.slice(0, 100))],
    [
      'the outage record modified',
      (r) => r.with(indexOf('audit.outage'), r[indexOf('audit.outage')]!.replace('"ENOSPC"', '"EIO"')),
    ],
    ['the outage record deleted', (r) => r.toSpliced(indexOf('audit.outage'), 1)],
    ['the records after the outage deleted', (r) => r.slice(0, indexOf('audit.outage') + 1)],
  ];

  for (const [what, change] of cases) {
    test(`${what}: the same report`, async () => {
      const report = await same(tampered(change), what);
      assert.equal(report.ok, false, `${what} went undetected`);
    });
  }

  test('the opening record modified, deleted, or naming a deleted stream: the same report', async () => {
    const admin = [...intact.keys()].find((path) => /\/admin-000001\.jsonl$/.test(path))!;
    const opening = intact.get(admin)![0]!;
    assert.equal(JSON.parse(opening).action, 'audit.open');
    for (const [what, lines] of [
      ['modified', [opening.replace('"access,admin"', '"admin"'), ...intact.get(admin)!.slice(1)]],
      ['deleted', intact.get(admin)!.slice(1)],
      ['duplicated', [opening, ...intact.get(admin)!]],
    ] as const) {
      const log = new Map(intact);
      log.set(admin, [...lines]);
      const report = await same(log, `the opening record ${what}`);
      assert.equal(report.ok, false, `the opening record ${what} went undetected`);
    }
    // The opening record intact says which streams the chain has: the access stream deleted whole is missing.
    const withoutAccess = new Map([...intact].filter(([path]) => !/\/access-/.test(path)));
    const report = await same(withoutAccess, 'the access stream deleted');
    assert.ok(report.findings.some((f) => f.kind === 'stream-missing' && f.stream === 'access'));
  });

  test('a thread that fails fails its batch and every one after, loudly', async () => {
    const pool = new ParsePool(1);
    try {
      const line = intact.get(access[0]![0])![0]!;
      assert.equal((await pool.check({ lines: [line] }, chain, 'access')).summary.clean, true);
      // Not lines at all: the thread throws, and the pool says so.
      const failed = (error: unknown) => error instanceof PhiCacheError && error.code === 'ERR_INTERNAL';
      await assert.rejects(pool.check({ lines: null as never }, chain, 'access'), failed);
      await assert.rejects(pool.check({ lines: [line] }, chain, 'access'), failed);
    } finally {
      await pool.close();
    }
  });
});
