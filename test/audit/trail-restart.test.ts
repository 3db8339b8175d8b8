import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AuditTrail } from '../../src/audit/audit-trail.js';
import type { Checkpoint } from '../../src/audit/record.js';
import { recordLineBody, sha256Hex } from '../../src/audit/record.js';
import { FileSink } from '../../src/audit/sinks/file-sink.js';
import { verifyAuditDirectory } from '../../src/audit/verify.js';
import { PhiCacheError } from '../../src/errors.js';
import { event, keys, streamRoot } from './trail-fixture.js';

const child = fileURLToPath(new URL('./trail-writer-child.js', import.meta.url));

/** Starts a writer process and resolves with it and its chain id once it says it is ready. */
async function startWriter(dir: string, chain: string, mode: 'write' | 'hold') {
  const proc = spawn(process.execPath, [child, dir, chain, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  assert.match(line, /^ready /);
  return { proc, chain: line.slice('ready '.length) };
}

async function kill(proc: ChildProcess) {
  const exited = once(proc, 'exit');
  proc.kill('SIGKILL');
  await exited;
}

async function jsonLines(path: string) {
  return (await readFile(path, 'utf8'))
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The records of a stream of a chain, in order, across its files. */
async function recordLines(dir: string, chain: string, stream: string) {
  const names = (await readdir(join(dir, chain)))
    .filter((n) => n.startsWith(`${stream}-0`) && n.endsWith('.jsonl'))
    .sort();
  const lines: string[] = [];
  for (const name of names) {
    lines.push(...(await readFile(join(dir, chain, name), 'utf8')).split('\n').filter((l) => l.length > 0));
  }
  return { names, lines };
}

const isCode = (code: string) => (error: unknown) => error instanceof PhiCacheError && error.code === code;

describe('PHI-AUDIT-01 a crashed writer: its chain is taken up again, or sealed as an orphan', () => {
  test('a writer killed mid-run: the restart repairs the torn line, signs the last good record and continues', {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-crash-'));
    const { proc } = await startWriter(dir, 'ward-7', 'write');
    await kill(proc);
    const killed = await recordLines(dir, 'ward-7', 'access');
    // A write cut short by the crash: the start of one more record line, without its end. (Cutting a line that
    // was already there could cut a record a checkpoint covers, which no torn write can do: it was synced first.)
    const lastFile = join(dir, 'ward-7', killed.names.at(-1)!);
    const lastGood = killed.lines.at(-1)!;
    const tornText = lastGood.slice(0, lastGood.length - 40);
    await appendFile(lastFile, tornText);
    const tornBytes = Buffer.byteLength(tornText);

    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })], chain: 'ward-7' });
    await trail.write(event('access', Date.now()));
    await trail.close();

    const torn = await readFile(
      join(dir, 'ward-7', `${killed.names.at(-1)!.replace('.jsonl', '.torn')}`),
      'utf8',
    );
    assert.equal(Buffer.byteLength(torn), tornBytes);
    assert.equal(torn, tornText, 'the torn bytes are kept as they were');
    const checkpoints = (await jsonLines(
      join(dir, 'ward-7', 'access-checkpoints.jsonl'),
    )) as unknown as Checkpoint[];
    const restart = checkpoints.find((c) => c.restart !== undefined)!;
    const good = JSON.parse(lastGood) as { seq: number; hash: string; ts: string };
    assert.equal(restart.seq, good.seq, 'the restart checkpoint signs the last good record');
    assert.equal(restart.head, sha256Hex(recordLineBody(lastGood)!));
    assert.equal(restart.head, good.hash);
    assert.deepEqual(restart.restart, {
      after: 'crash',
      by: 'ward-7',
      checked: restart.restart!.checked,
      lastTs: good.ts,
      tornBytes,
    });
    const before = checkpoints[checkpoints.indexOf(restart) - 1]!;
    assert.equal(
      restart.restart!.checked,
      good.seq - before.seq,
      'every record after the last checkpoint, and only those',
    );
    const after = await recordLines(dir, 'ward-7', 'access');
    assert.equal(
      after.names.length,
      killed.names.length + 1,
      'the restarted writer begins a new records file',
    );
    const next = JSON.parse(after.lines.at(-1)!) as { seq: number; prev: string };
    assert.equal(next.seq, good.seq + 1);
    assert.equal(next.prev, good.hash);
    const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, streamRoot });
    assert.deepEqual(report.findings, []);
  });

  test('a tampered record after the last checkpoint: the restart refuses the chain and writes nothing', {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-tamper-'));
    const { proc } = await startWriter(dir, 'ward-8', 'write');
    await kill(proc);
    const { names, lines } = await recordLines(dir, 'ward-8', 'access');
    const file = join(dir, 'ward-8', names.at(-1)!);
    const text = await readFile(file, 'utf8');
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    const last = complete.trimEnd().split('\n').at(-1)!;
    // Someone with the signing key but not the stream key cannot forge the MAC: another principal, same length.
    const forged = last.replace(/"principal":"clinician-(\d+)"/, (whole, n: string) =>
      whole.replace(n, `${n.slice(0, -1)}${n.endsWith('1') ? '2' : '1'}`),
    );
    assert.notEqual(forged, last);
    assert.doesNotThrow(() => JSON.parse(forged), 'a well-formed record, only its content changed');
    await writeFile(file, `${complete.slice(0, complete.length - last.length - 1)}${forged}\n`);
    const before = await readdir(join(dir, 'ward-8'));
    const checkpointsBefore = await readFile(join(dir, 'ward-8', 'access-checkpoints.jsonl'), 'utf8');

    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })], chain: 'ward-8' });
    await assert.rejects(trail.write(event('access', Date.now())), isCode('ERR_AUDIT_CHAIN_DAMAGED'));
    await assert.rejects(trail.write(event('admin', Date.now())), isCode('ERR_AUDIT_CHAIN_DAMAGED'));
    await trail.close();
    assert.equal(await readFile(join(dir, 'ward-8', 'access-checkpoints.jsonl'), 'utf8'), checkpointsBefore);
    const after = (await readdir(join(dir, 'ward-8'))).filter((n) => !n.endsWith('.torn'));
    assert.deepEqual(after.sort(), before.filter((n) => n !== 'writer.lock').sort());
    assert.ok(lines.length > 0);
  });

  test('a chain whose writer still runs on this host is refused with ERR_AUDIT_CHAIN_BUSY', {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-busy-'));
    const { proc } = await startWriter(dir, 'ward-9', 'hold');
    try {
      const lock = JSON.parse(await readFile(join(dir, 'ward-9', 'writer.lock'), 'utf8')) as { pid: number };
      assert.equal(lock.pid, proc.pid);
      const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })], chain: 'ward-9' });
      await assert.rejects(trail.write(event('access', Date.now())), isCode('ERR_AUDIT_CHAIN_BUSY'));
      await trail.close();
      // The live writer's lock is left alone.
      assert.equal(JSON.parse(await readFile(join(dir, 'ward-9', 'writer.lock'), 'utf8')).pid, proc.pid);
    } finally {
      await kill(proc);
    }
    // Once it is gone, the chain is taken up.
    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })], chain: 'ward-9' });
    await trail.write(event('access', Date.now()));
    await trail.close();
    await assert.rejects(readFile(join(dir, 'ward-9', 'writer.lock')), { code: 'ENOENT' });
  });

  test('a clean close and a restart: the chain continues after a restart checkpoint of kind close', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-reopen-'));
    for (let run = 0; run < 2; run++) {
      const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })], chain: 'desk-1' });
      await trail.write(event('access', Date.now()));
      await trail.close();
    }
    const checkpoints = (await jsonLines(
      join(dir, 'desk-1', 'access-checkpoints.jsonl'),
    )) as unknown as Checkpoint[];
    const restart = checkpoints.find((c) => c.restart !== undefined)!;
    assert.equal(restart.restart!.after, 'close');
    assert.equal(restart.seq, 1);
    const { names, lines } = await recordLines(dir, 'desk-1', 'access');
    assert.deepEqual(names, ['access-000001.jsonl', 'access-000002.jsonl']);
    assert.deepEqual(
      lines.map((l) => JSON.parse(l).seq),
      [1, 2],
    );
    // Records after a final checkpoint are allowed because the restart checkpoint follows it; the verifier says so.
    const report = await verifyAuditDirectory(dir, {
      publicKey: keys.publicKey,
      streamRoot,
      now: Date.now(),
    });
    assert.deepEqual(report.findings, []);
    assert.deepEqual(
      report.notices.filter((n) => n.stream === 'access').map((n) => n.kind),
      ['restart'],
    );
  });

  test('an orphan chain (a per-process chain whose writer died) is sealed with a final restart checkpoint at the next start', {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-orphan-'));
    const { proc, chain } = await startWriter(dir, '-', 'write');
    await kill(proc);
    const { lines } = await recordLines(dir, chain, 'access');
    // An unfinished line, as the kill may leave one; made sure of here.
    const names = (await readdir(join(dir, chain))).filter((n) => n.startsWith('access-0')).sort();
    await appendFile(join(dir, chain, names.at(-1)!), '{"action":"get","act');
    const last = JSON.parse(lines.at(-1)!) as { seq: number; hash: string };

    const trail = new AuditTrail({ keys, sinks: [new FileSink({ dir })] });
    const sealed = once(trail, 'orphan');
    await trail.write(event('access', Date.now()));
    assert.deepEqual(await sealed, [{ chain, sealed: true }]);
    await trail.close();
    const checkpoints = (await jsonLines(
      join(dir, chain, 'access-checkpoints.jsonl'),
    )) as unknown as Checkpoint[];
    const final = checkpoints.at(-1)!;
    assert.equal(final.final, true);
    assert.equal(final.seq, last.seq);
    assert.equal(final.head, last.hash);
    assert.equal(final.restart?.after, 'crash');
    assert.equal(final.restart?.by, trail.chain);
    assert.equal(final.restart?.tornBytes, '{"action":"get","act'.length);
    await assert.rejects(readFile(join(dir, chain, 'writer.lock')), { code: 'ENOENT' });
    const report = await verifyAuditDirectory(dir, { publicKey: keys.publicKey, streamRoot });
    assert.deepEqual(report.findings, []);
  });
});
