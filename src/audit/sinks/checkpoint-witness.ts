import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Checkpoint } from '../record.js';
import { checkpointsFileName } from './file-sink.js';
import { GroupCommit } from './group-commit.js';

/**
 * Somewhere checkpoints are kept apart from the log they seal: someone who can cut the log's tail and its
 * checkpoints file cannot also take back what a witness holds. A witness receives checkpoints only, never records.
 * A collector can be one too: it implements these two calls.
 */
export interface CheckpointWitness {
  readonly name: string;
  appendCheckpoint(checkpoint: Checkpoint, line: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A witness directory, laid out as the log's checkpoints are (`<dir>/<chain>/<stream>-checkpoints.jsonl`), so that
 * `audit verify --witness <dir>` reads it as it reads the log. Point it at another disk or mount than the log's.
 */
export class DirectoryWitness implements CheckpointWitness {
  readonly name = 'witness-dir';
  readonly dir: string;
  readonly #writers = new Map<string, GroupCommit>();
  readonly #files = new Map<string, Promise<FileHandle>>();

  constructor(dir: string) {
    this.dir = dir;
  }

  appendCheckpoint(checkpoint: Checkpoint, line: string): Promise<void> {
    const slot = `${checkpoint.chain}/${checkpoint.stream}`;
    let writer = this.#writers.get(slot);
    if (writer === undefined) {
      const chainDir = join(this.dir, checkpoint.chain);
      const file = join(chainDir, checkpointsFileName(checkpoint.stream));
      writer = new GroupCommit(async (text) => {
        const handle = await this.#handle(slot, chainDir, file);
        await handle.appendFile(text);
        await handle.datasync();
      });
      this.#writers.set(slot, writer);
    }
    return writer.push(`${line}\n`);
  }

  async close(): Promise<void> {
    for (const writer of this.#writers.values()) await writer.idle();
    for (const handle of this.#files.values()) await (await handle.catch(() => undefined))?.close();
    this.#files.clear();
    this.#writers.clear();
  }

  #handle(slot: string, chainDir: string, file: string): Promise<FileHandle> {
    let handle = this.#files.get(slot);
    if (handle === undefined) {
      handle = mkdir(chainDir, { recursive: true, mode: 0o700 }).then(() => open(file, 'a', 0o600));
      // A failed open is tried again at the next checkpoint, not remembered.
      handle.catch(() => this.#files.delete(slot));
      this.#files.set(slot, handle);
    }
    return handle;
  }
}
