import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { STREAMS } from './audit-event.js';
import type { AuditKeys } from './audit-keys.js';
import { findStreamEnd, restartNote } from './chain-recovery.js';
import { isoOf } from './iso-time.js';
import { type Checkpoint, signCheckpoint } from './record.js';
import { AppendFile } from './sinks/append-file.js';
import { checkpointsFileName } from './sinks/file-sink.js';
import { acquireWriterLock, isOrphanLock, readWriterLock, releaseWriterLock } from './writer-lock.js';

export interface OrphanSealing {
  readonly keys: AuditKeys;
  readonly everyMs: number;
  readonly everyRecords: number;
  readonly clock: () => number;
  /** A final checkpoint now in the log (for the witness). */
  readonly sealed: (checkpoint: Checkpoint, line: string) => void;
  /** A chain sealed, or left as found with the reason. */
  readonly orphan: (event: { chain: string; sealed: boolean; cause?: unknown }) => void;
}

/**
 * Chains of this host whose writer died without closing them are sealed, each stream with a `final` restart
 * checkpoint over the tail that checks out, and their lock is removed: nobody else would ever close them. `by` is
 * the chain of the writer that seals them, named in their restart checkpoints.
 */
export async function sealOrphanChains(logDir: string, by: string, options: OrphanSealing): Promise<void> {
  const entries = await readdir(logDir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name === by) continue;
    const chain = entry.name;
    const chainDir = join(logDir, chain);
    if (!isOrphanLock(await readWriterLock(chainDir).catch(() => undefined))) continue;
    try {
      await acquireWriterLock(chainDir, chain, options.clock());
    } catch {
      continue; // another process took it up first
    }
    try {
      for (const stream of STREAMS) {
        const end = await findStreamEnd(chainDir, chain, stream, options.keys);
        if (!end.found || end.closed) continue;
        const { checkpoint, line } = signCheckpoint(
          {
            v: 1,
            type: 'checkpoint',
            chain,
            stream,
            seq: end.seq,
            head: end.head,
            ts: isoOf(Math.max(options.clock(), end.lastTs)),
            everyMs: options.everyMs,
            everyRecords: options.everyRecords,
            prevCheckpoint: end.checkpointHash,
            final: true,
            restart: restartNote(end, by),
            kid: options.keys.signingKid,
          },
          options.keys.signingKey,
        );
        const file = new AppendFile(join(chainDir, checkpointsFileName(stream)), 0, options.clock());
        try {
          await file.append(`${line}\n`, 'durable', 0);
        } finally {
          await file.close();
        }
        options.sealed(checkpoint, line);
      }
      await releaseWriterLock(chainDir);
      options.orphan({ chain, sealed: true });
    } catch (cause) {
      await releaseWriterLock(chainDir);
      options.orphan({ chain, sealed: false, cause });
    }
  }
}
