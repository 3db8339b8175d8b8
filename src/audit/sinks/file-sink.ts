import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { integerOption } from '../../options.js';
import { phicacheHome } from '../../runtime/phicache-home.js';
import type { AuditStream } from '../audit-event.js';
import type { AuditRecord, Checkpoint } from '../record.js';
import { GroupCommit } from './group-commit.js';
import type { RecordSink } from './record-sink.js';

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

interface OpenFile {
  handle: FileHandle;
  index: number;
  bytes: number;
  openedAt: number;
}

/**
 * The durable file sink: `<dir>/<chain>/<stream>-NNNNNN.jsonl` for records, rotated by size and age, and
 * `<dir>/<chain>/<stream>-checkpoints.jsonl` apart from them, so cutting a records file cannot also cut the
 * checkpoint that covers it. Appends are group-committed: one write and one fdatasync per batch, and each caller's
 * promise resolves when its line is on disk.
 */
export class FileSink implements RecordSink {
  readonly name = 'file';
  readonly durable = true;
  readonly dir: string;
  readonly #maxFileBytes: number;
  readonly #maxFileAgeMs: number;
  readonly #clock: () => number;
  readonly #writers = new Map<string, { records: GroupCommit; checkpoints: GroupCommit }>();
  readonly #files = new Map<string, OpenFile>();

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

  append(record: AuditRecord, line: string): Promise<void> {
    return this.#writer(record.chain, record.stream).records.push(`${line}\n`);
  }

  appendCheckpoint(checkpoint: Checkpoint, line: string): Promise<void> {
    return this.#writer(checkpoint.chain, checkpoint.stream).checkpoints.push(`${line}\n`);
  }

  async close(): Promise<void> {
    for (const writer of this.#writers.values()) {
      await writer.records.idle();
      await writer.checkpoints.idle();
    }
    for (const file of this.#files.values()) await file.handle.close();
    this.#files.clear();
    this.#writers.clear();
  }

  #writer(chain: string, stream: AuditStream) {
    const slot = `${chain}/${stream}`;
    let writer = this.#writers.get(slot);
    if (writer === undefined) {
      writer = {
        records: new GroupCommit((text) => this.#appendRecords(chain, stream, text)),
        checkpoints: new GroupCommit((text) =>
          this.#appendTo(`${slot}:cp`, join(this.dir, chain), checkpointsFileName(stream), text),
        ),
      };
      this.#writers.set(slot, writer);
    }
    return writer;
  }

  async #appendRecords(chain: string, stream: AuditStream, text: string): Promise<void> {
    const slot = `${chain}/${stream}`;
    const current = this.#files.get(slot);
    const now = this.#clock();
    if (
      current !== undefined &&
      (current.bytes >= this.#maxFileBytes || now - current.openedAt >= this.#maxFileAgeMs)
    ) {
      await current.handle.close();
      this.#files.delete(slot);
      await this.#openRecords(slot, chain, stream, current.index + 1);
    }
    const file = this.#files.get(slot) ?? (await this.#openRecords(slot, chain, stream, 1));
    await writeDurably(file.handle, text);
    file.bytes += Buffer.byteLength(text);
  }

  async #openRecords(slot: string, chain: string, stream: AuditStream, index: number): Promise<OpenFile> {
    const dir = join(this.dir, chain);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const handle = await open(join(dir, recordsFileName(stream, index)), 'a', 0o600);
    const file = { handle, index, bytes: (await handle.stat()).size, openedAt: this.#clock() };
    this.#files.set(slot, file);
    return file;
  }

  async #appendTo(slot: string, dir: string, name: string, text: string): Promise<void> {
    let file = this.#files.get(slot);
    if (file === undefined) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const handle = await open(join(dir, name), 'a', 0o600);
      file = { handle, index: 0, bytes: 0, openedAt: this.#clock() };
      this.#files.set(slot, file);
    }
    await writeDurably(file.handle, text);
  }
}

async function writeDurably(handle: FileHandle, text: string): Promise<void> {
  await handle.appendFile(text);
  await handle.datasync();
}
