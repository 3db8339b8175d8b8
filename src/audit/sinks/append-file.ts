import { closeSync, fdatasync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';

/**
 * One append-only file of the log, written with write(2) on the calling thread and synced with fdatasync on the
 * thread pool. A small append to the page cache takes a few microseconds, less than a round trip to the thread
 * pool would, so a lone caller's record costs little; the disk sync, which takes milliseconds, never blocks the
 * event loop.
 *
 * `committed` is how far the file holds only batches that were accepted. A batch that fails leaves nothing behind:
 * before anything else is appended the file is truncated back to `committed`, and appends are refused while that
 * cannot be done, so a reader never finds bytes of a batch whose operations were refused.
 */
export class AppendFile {
  readonly path: string;
  readonly index: number;
  readonly openedAt: number;
  #fd: number;
  /** Bytes written and accepted so far, synced or not. */
  #size: number;
  #committed: number;
  #synced: number;
  #damaged = false;
  /** Counts the cuts, so that a batch written before one is not taken for committed after it. */
  #cuts = 0;
  #syncing: Promise<void> | undefined;
  #nextSync: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** When the last fdatasync started (monotonic ms). */
  #lastSyncAt = performance.now();

  constructor(path: string, index: number, openedAt: number) {
    this.path = path;
    this.index = index;
    this.openedAt = openedAt;
    this.#fd = openSync(path, 'a', 0o600);
    this.#size = fstatSync(this.#fd).size;
    this.#committed = this.#size;
    this.#synced = this.#size;
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Appends `text` and answers at `level`: `written` once write(2) returned (an fdatasync follows within
   * `syncWithinMs`), which is before this returns, so it returns undefined; `durable` after an fdatasync that
   * started after the write. On failure the bytes are cut off and the promise rejects.
   */
  append(text: string, level: 'durable' | 'written', syncWithinMs: number): Promise<void> | undefined {
    try {
      this.#repair();
      const bytes = Buffer.from(text);
      let done = 0;
      while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done);
      this.#size += bytes.length;
    } catch (error) {
      this.#fail();
      return Promise.reject(error);
    }
    if (level === 'written') {
      this.#committed = this.#size;
      // Callers that never yield to the event loop (each awaiting a record already written) would starve the timer:
      // the append itself starts the sync once the bound has passed.
      if (this.#syncing === undefined && performance.now() - this.#lastSyncAt >= syncWithinMs) {
        this.sync().catch(() => undefined);
        return undefined;
      }
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        // A failed background sync is tried again by the next one; a checkpoint waits for one that succeeds.
        this.sync().catch(() => undefined);
      }, syncWithinMs);
      return undefined;
    }
    const upTo = this.#size;
    const cuts = this.#cuts;
    return this.sync().then(
      () => {
        if (this.#damaged || cuts !== this.#cuts)
          throw new Error('the batch was cut off after a failed sync');
        if (upTo > this.#committed) this.#committed = upTo;
      },
      (error: unknown) => {
        this.#fail();
        throw error;
      },
    );
  }

  /** Resolves once everything written so far is on disk: an fdatasync that started after the last write. */
  sync(): Promise<void> {
    if (this.#synced === this.#size && this.#syncing === undefined) return Promise.resolve();
    if (this.#syncing === undefined) return this.#startSync();
    this.#nextSync ??= this.#syncing
      .catch(() => undefined)
      .then(() => {
        this.#nextSync = undefined;
        return this.#startSync();
      });
    return this.#nextSync;
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      await this.sync();
    } finally {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }

  #startSync(): Promise<void> {
    const upTo = this.#size;
    this.#lastSyncAt = performance.now();
    const run = new Promise<void>((resolve, reject) => {
      fdatasync(this.#fd, (error) => (error ? reject(error) : resolve()));
    }).then(() => {
      if (upTo > this.#synced) this.#synced = upTo;
    });
    this.#syncing = run;
    const clear = () => {
      if (this.#syncing === run) this.#syncing = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /** The batch failed: its bytes must go before anything else is written. */
  #fail(): void {
    this.#damaged = true;
    try {
      this.#repair();
    } catch {
      // Still damaged: the next append tries again and is refused until the cut succeeds.
    }
  }

  #repair(): void {
    if (!this.#damaged) return;
    ftruncateSync(this.#fd, this.#committed);
    this.#cuts += 1;
    this.#size = this.#committed;
    if (this.#synced > this.#size) this.#synced = this.#size;
    this.#damaged = false;
  }
}
