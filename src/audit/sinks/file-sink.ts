import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { integerOption } from '../../options.js';
import { phicacheHome } from '../../runtime/phicache-home.js';
import type { AuditStream } from '../audit-event.js';
import type { Checkpoint } from '../record.js';
import { AppendFile } from './append-file.js';
import type { RecordBatch, RecordSink } from './record-sink.js';

export interface FileSinkOptions {
  /** Default `$PHICACHE_HOME/audit`. */
  readonly dir?: string;
  /** Start a new records file past this size, in bytes. Default 64 MiB; at least 1 KiB. */
  readonly maxFileBytes?: number;
  /** Start a new records file when the current one is this old, in ms. Default 24 hours; at least 1 s. */
  readonly maxFileAgeMs?: number;
  /** Milliseconds since the epoch. Default `Date.now`. */
  readonly clock?: () => number;
}

/** Name of the n-th records file of a stream, zero-padded so that names sort in order. */
export function recordsFileName(stream: AuditStream, index: number): string {
  return `${stream}-${String(index).padStart(6, '0')}.jsonl`;
}

export function checkpointsFileName(stream: AuditStream): string {
  return `${stream}-checkpoints.jsonl`;
}

/** The index of a stream's records file from its name, or undefined for any other file. */
export function recordsFileIndex(stream: AuditStream, name: string): number | undefined {
  const match = /^(access|admin)-(\d{6})\.jsonl$/.exec(name);
  return match !== null && match[1] === stream ? Number(match[2]) : undefined;
}

interface RecordsSlot {
  file: AppendFile;
  /** Files rotated away whose last bytes may still be syncing; a checkpoint waits for them. */
  retiring: Promise<void>[];
}

/**
 * The durable file sink: `<dir>/<chain>/<stream>-NNNNNN.jsonl` for records, rotated by size and age and started
 * afresh after an outage or a restart (each writer session of a chain begins a new file, so it never appends to a
 * file it did not write), and `<dir>/<chain>/<stream>-checkpoints.jsonl` apart from them, so cutting a records file
 * cannot also cut the checkpoint that covers it. A batch is one write(2); `durable` batches answer after the
 * fdatasync that carried them, `written` ones at once with an fdatasync within their bound, and every checkpoint
 * first syncs the records it covers.
 */
export class FileSink implements RecordSink {
  readonly name = 'file';
  readonly durable = true;
  readonly dir: string;
  readonly #maxFileBytes: number;
  readonly #maxFileAgeMs: number;
  readonly #clock: () => number;
  readonly #records = new Map<string, RecordsSlot>();
  readonly #checkpoints = new Map<string, AppendFile>();

  constructor(options: FileSinkOptions = {}) {
    this.dir = options.dir ?? join(phicacheHome(), 'audit');
    this.#maxFileBytes = integerOption(
      'file sink',
      'maxFileBytes',
      options.maxFileBytes ?? 64 * 1024 * 1024,
      1024,
    );
    this.#maxFileAgeMs = integerOption('file sink', 'maxFileAgeMs', options.maxFileAgeMs ?? 86_400_000, 1000);
    this.#clock = options.clock ?? Date.now;
  }

  appendBatch(batch: RecordBatch): Promise<void> | undefined {
    const key = `${batch.chain}/${batch.stream}`;
    let slot = this.#records.get(key);
    try {
      if (slot === undefined) {
        slot = { file: this.#openRecords(batch.chain, batch.stream, undefined), retiring: [] };
        this.#records.set(key, slot);
      } else if (
        batch.newSegment ||
        slot.file.size >= this.#maxFileBytes ||
        this.#clock() - slot.file.openedAt >= this.#maxFileAgeMs
      ) {
        // The next file is opened first: if it cannot be, the batch fails and the current file stays in use.
        const next = this.#openRecords(batch.chain, batch.stream, slot.file.index + 1);
        const old = slot.file;
        slot.file = next;
        const closed = old.close();
        // Awaited by the next checkpoint (which must not vouch for records whose last sync failed) or by close.
        closed.catch(() => undefined);
        slot.retiring.push(closed);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return slot.file.append(batch.text, batch.level, batch.syncWithinMs);
  }

  async appendCheckpoint(checkpoint: Checkpoint, line: string): Promise<void> {
    const key = `${checkpoint.chain}/${checkpoint.stream}`;
    // A checkpoint vouches for records on disk only: the records it covers are synced before it is written.
    const slot = this.#records.get(key);
    if (slot !== undefined) {
      const retiring = slot.retiring;
      slot.retiring = [];
      await Promise.all(retiring);
      await slot.file.sync();
    }
    let file = this.#checkpoints.get(key);
    if (file === undefined) {
      const dir = join(this.dir, checkpoint.chain);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      file = new AppendFile(join(dir, checkpointsFileName(checkpoint.stream)), 0, this.#clock());
      this.#checkpoints.set(key, file);
    }
    await file.append(`${line}\n`, 'durable', 0);
  }

  async close(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const slot of this.#records.values()) closing.push(...slot.retiring, slot.file.close());
    for (const file of this.#checkpoints.values()) closing.push(file.close());
    this.#records.clear();
    this.#checkpoints.clear();
    await Promise.all(closing);
  }

  /** Opens records file `index`, or, for a writer's first batch, the file after every one already there. */
  #openRecords(chain: string, stream: AuditStream, index: number | undefined): AppendFile {
    const dir = join(this.dir, chain);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    let next = index;
    if (next === undefined) {
      next = 1;
      for (const name of readdirSync(dir)) {
        const found = recordsFileIndex(stream, name);
        if (found !== undefined && found >= next) next = found + 1;
      }
    }
    return new AppendFile(join(dir, recordsFileName(stream, next)), next, this.#clock());
  }
}
