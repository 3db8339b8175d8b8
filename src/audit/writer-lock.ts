import { readFile, unlink, writeFile } from 'node:fs/promises';
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
  let text: string;
  try {
    text = await readFile(join(chainDir, WRITER_LOCK_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const lock = JSON.parse(text) as WriterLock;
    if (Number.isSafeInteger(lock.pid) && typeof lock.host === 'string') return lock;
  } catch {
    // Torn while it was written: nobody can hold it.
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
 * Takes the chain's lock for this process: created with O_EXCL, or taken over from a writer that is gone. A lock of
 * a live process on this host (this one included: another trail of this process) refuses with ERR_AUDIT_CHAIN_BUSY.
 */
export async function acquireWriterLock(chainDir: string, chain: string, now: number): Promise<void> {
  const path = join(chainDir, WRITER_LOCK_FILE);
  const mine: WriterLock = { pid: process.pid, host: hostname(), startedAt: new Date(now).toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, `${JSON.stringify(mine)}\n`, { flag: 'wx', mode: 0o600 });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const held = await readWriterLock(chainDir);
    if (lockHolderAlive(held)) {
      const holder = held as WriterLock;
      throw new PhiCacheError(
        'ERR_AUDIT_CHAIN_BUSY',
        `audit chain ${chain} is held by process ${holder.pid} on this host since ${holder.startedAt}`,
      );
    }
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  throw new PhiCacheError(
    'ERR_AUDIT_CHAIN_BUSY',
    `audit chain ${chain} is being taken up by another process`,
  );
}

/** Removes the lock if this process holds it. */
export async function releaseWriterLock(chainDir: string): Promise<void> {
  const held = await readWriterLock(chainDir).catch(() => undefined);
  if (held === undefined || held === 'torn' || held.pid !== process.pid || held.host !== hostname()) return;
  await unlink(join(chainDir, WRITER_LOCK_FILE)).catch(() => undefined);
}
