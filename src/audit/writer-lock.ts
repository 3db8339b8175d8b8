import { createHash, randomUUID } from 'node:crypto';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PhiCacheError } from '../errors.js';

/** `<chain dir>/writer.lock`: which process writes the chain, so that two never write one chain at once. */
export const WRITER_LOCK_FILE = 'writer.lock';

export interface WriterLock {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
}

/** The lock of a chain directory, or undefined when there is none; an unreadable lock (torn by a crash) is `'torn'`. */
export async function readWriterLock(chainDir: string): Promise<WriterLock | 'torn' | undefined> {
  const text = await readIfThere(join(chainDir, WRITER_LOCK_FILE));
  return text === undefined ? undefined : parseWriterLock(text);
}

function parseWriterLock(text: string): WriterLock | 'torn' {
  try {
    const lock = JSON.parse(text) as WriterLock;
    if (Number.isSafeInteger(lock.pid) && typeof lock.host === 'string') return lock;
  } catch {
    // Torn: a lock written by a process that crashed before it was whole (locks are linked in whole since).
  }
  return 'torn';
}

/** Whether the lock's process still runs. Only a process on this host can be asked; one on another host counts as gone. */
export function lockHolderAlive(lock: WriterLock | 'torn' | undefined): boolean {
  if (lock === undefined || lock === 'torn' || lock.host !== hostname()) return false;
  try {
    process.kill(lock.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A lock left by a process of this host that is gone: its chain is an orphan that nobody will close. */
export function isOrphanLock(lock: WriterLock | 'torn' | undefined): boolean {
  return lock !== undefined && lock !== 'torn' && lock.host === hostname() && !lockHolderAlive(lock);
}

/**
 * Takes the chain's lock for this process, or takes it over from a writer that is gone. A lock of a live process on
 * this host (this one included: another trail of this process) refuses with ERR_AUDIT_CHAIN_BUSY.
 *
 * The lock is written whole under a name of its own and then linked into place, so it appears complete or not at
 * all: a reader never finds a live writer's lock half written and takes it for a torn one. A dead writer's lock is
 * replaced by one taker only: the one that links the takeover mark named after that very lock's text. It checks
 * that the lock is still the one it judged dead and renames its own over it, so the name is never empty and a live
 * lock is never replaced. A mark is never removed while takers contend for it: a taker that died holding one is
 * passed by a mark named after both texts, which every taker derives alike, and the winner removes the marks it
 * passed with its own.
 */
export async function acquireWriterLock(chainDir: string, chain: string, now: number): Promise<void> {
  const path = join(chainDir, WRITER_LOCK_FILE);
  const mine: WriterLock = { pid: process.pid, host: hostname(), startedAt: new Date(now).toISOString() };
  const draft = join(chainDir, `${WRITER_LOCK_FILE}.${process.pid}.${randomUUID()}`);
  await writeFile(draft, `${JSON.stringify(mine)}\n`, { flag: 'wx', mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(draft, path);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const seen = await readIfThere(path);
      if (seen === undefined) continue;
      const held = parseWriterLock(seen);
      if (lockHolderAlive(held)) {
        const holder = held as WriterLock;
        throw new PhiCacheError(
          'ERR_AUDIT_CHAIN_BUSY',
          `audit chain ${chain} is held by process ${holder.pid} on this host since ${holder.startedAt}`,
        );
      }
      const taken = await takeOver(path, draft, seen);
      if (taken === 'won') return;
      if (taken === 'busy') break;
    }
  } finally {
    await unlink(draft).catch(() => undefined);
  }
  throw new PhiCacheError(
    'ERR_AUDIT_CHAIN_BUSY',
    `audit chain ${chain} is being taken up by another process`,
  );
}

/**
 * Replaces the dead writer's lock `seen` at `path` with `draft`, if this taker links the first free takeover mark.
 * Marks are linked whole (the draft itself) and never rewritten, so every taker reads the same chain of them.
 * `again`: the lock or the marks changed meanwhile, look at the lock again; `busy`: a live taker is at it.
 */
async function takeOver(path: string, draft: string, seen: string): Promise<'won' | 'busy' | 'again'> {
  const passed: string[] = [];
  let named = seen;
  for (;;) {
    const mark = `${path}.takeover.${createHash('sha256').update(named).digest('hex').slice(0, 32)}`;
    try {
      await link(draft, mark);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const marker = await readIfThere(mark);
      // Removed meanwhile: its taker won and cleared the marks.
      if (marker === undefined) return 'again';
      if (lockHolderAlive(parseWriterLock(marker))) return 'busy';
      passed.push(mark);
      named += marker;
      continue;
    }
    let won = false;
    try {
      if ((await readIfThere(path)) !== seen) return 'again';
      await rename(draft, path);
      won = true;
      return 'won';
    } finally {
      // The winner clears the dead takers' marks too; a loser only its own, as the winner of that lock will.
      for (const name of won ? [...passed, mark] : [mark]) await unlink(name).catch(() => undefined);
    }
  }
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Removes the lock if this process holds it. */
export async function releaseWriterLock(chainDir: string): Promise<void> {
  const held = await readWriterLock(chainDir).catch(() => undefined);
  if (held === undefined || held === 'torn' || held.pid !== process.pid || held.host !== hostname()) return;
  await unlink(join(chainDir, WRITER_LOCK_FILE)).catch(() => undefined);
}
