import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { acquireWriterLock, releaseWriterLock, WRITER_LOCK_FILE } from '../../src/audit/writer-lock.js';

const lockModule = new URL('../../src/audit/writer-lock.js', import.meta.url).href;

/** The pid of a process that has exited: a lock naming it is a dead writer's. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

/**
 * Takers in processes of their own, each trying at the same instant, then holding what it got for a while (so that
 * the others see a live holder) and exiting without releasing. Each prints `won` or the error code.
 */
async function takers(dir: string, count: number): Promise<string[]> {
  const at = Date.now() + 1500;
  const script = `
    const { acquireWriterLock } = await import(${JSON.stringify(lockModule)});
    await new Promise((r) => setTimeout(r, ${at} - Date.now()));
    try { await acquireWriterLock(${JSON.stringify(dir)}, 'ward-9', Date.now()); console.log('won'); }
    catch (error) { console.log(error.code ?? String(error)); }
    setTimeout(() => {}, 2500);`;
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }),
  );
  return Promise.all(
    children.map(async (child) => {
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
      });
      await once(child, 'exit');
      return out.trim();
    }),
  );
}

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

/**
 * A dead writer's lock and the takeover marks of `count` takers that died holding one: the first named after the
 * lock, each next one after the lock and the marks before it, as takers name them.
 */
async function deadTakers(dir: string, count: number): Promise<void> {
  let named = `${JSON.stringify({ pid: await deadPid(), host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' })}\n`;
  await writeFile(join(dir, WRITER_LOCK_FILE), named);
  for (let i = 0; i < count; i++) {
    const taker = `${JSON.stringify({ pid: await deadPid(), host: hostname(), startedAt: `2026-01-01T00:00:0${i + 1}.000Z` })}\n`;
    await writeFile(join(dir, `${WRITER_LOCK_FILE}.takeover.${hashOf(named)}`), taker);
    named += taker;
  }
}

describe('the writer lock of a chain', () => {
  test('takers racing for a dead writer’s lock: exactly one holds it, the others are refused, no draft is left', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-writer-lock-'));
    const gone = { pid: await deadPid(), host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' };
    await writeFile(join(dir, WRITER_LOCK_FILE), `${JSON.stringify(gone)}\n`);
    const answers = await takers(dir, 6);
    assert.equal(answers.filter((a) => a === 'won').length, 1, answers.join(', '));
    assert.deepEqual(
      answers.filter((a) => a !== 'won'),
      Array(5).fill('ERR_AUDIT_CHAIN_BUSY'),
    );
    assert.deepEqual(await readdir(dir), [WRITER_LOCK_FILE]);
  });

  test('takers racing for a chain nobody holds: exactly one holds it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-writer-lock-'));
    const answers = await takers(dir, 6);
    assert.equal(answers.filter((a) => a === 'won').length, 1, answers.join(', '));
    assert.deepEqual(await readdir(dir), [WRITER_LOCK_FILE]);
  });

  test('a live holder refuses a second taker and keeps its lock; released, the chain can be taken again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-writer-lock-'));
    await acquireWriterLock(dir, 'ward-9', Date.now());
    const before = await readFile(join(dir, WRITER_LOCK_FILE), 'utf8');
    await assert.rejects(acquireWriterLock(dir, 'ward-9', Date.now()), { code: 'ERR_AUDIT_CHAIN_BUSY' });
    assert.equal(await readFile(join(dir, WRITER_LOCK_FILE), 'utf8'), before);
    await releaseWriterLock(dir);
    assert.deepEqual(await readdir(dir), []);
    await acquireWriterLock(dir, 'ward-9', Date.now());
    assert.equal(JSON.parse(await readFile(join(dir, WRITER_LOCK_FILE), 'utf8')).pid, process.pid);
  });

  test('a torn lock (a writer that crashed while writing it) is taken over', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-writer-lock-'));
    await writeFile(join(dir, WRITER_LOCK_FILE), '{"pid":12');
    await acquireWriterLock(dir, 'ward-9', Date.now());
    assert.equal(JSON.parse(await readFile(join(dir, WRITER_LOCK_FILE), 'utf8')).pid, process.pid);
  });

  test('a takeover mark left by a taker that crashed half way does not keep the chain from being taken up', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-writer-lock-'));
    await deadTakers(dir, 1);
    await acquireWriterLock(dir, 'ward-9', Date.now());
    assert.equal(JSON.parse(await readFile(join(dir, WRITER_LOCK_FILE), 'utf8')).pid, process.pid);
    assert.deepEqual(await readdir(dir), [WRITER_LOCK_FILE]);
  });

  test('takers racing past the marks of two takers that died: exactly one holds the lock, every mark is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phicache-writer-lock-'));
    await deadTakers(dir, 2);
    const answers = await takers(dir, 6);
    assert.equal(answers.filter((a) => a === 'won').length, 1, answers.join(', '));
    assert.deepEqual(await readdir(dir), [WRITER_LOCK_FILE]);
  });
});
