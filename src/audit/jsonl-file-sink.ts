import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { phicacheHome } from '../keys/providers/local-keyring.js';
import type { AuditEvent, AuditStream } from './audit-event.js';
import type { AuditSink } from './audit-sink.js';

export interface JsonlFileSinkOptions {
  /** Directory of the log files. Default `$PHICACHE_HOME/audit`. */
  readonly dir?: string;
}

interface Pending {
  readonly line: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Appends one JSON line per event to `access.jsonl` or `admin.jsonl`. Events that arrive while a write is in
 * flight are batched into the next write, so a busy cache makes few large appends instead of many small ones.
 */
export class JsonlFileSink implements AuditSink {
  readonly #dir: string;
  readonly #files = new Map<AuditStream, Promise<FileHandle>>();
  readonly #queues = new Map<AuditStream, Pending[]>();
  readonly #flushing = new Set<AuditStream>();

  constructor(options: JsonlFileSinkOptions = {}) {
    this.#dir = options.dir ?? join(phicacheHome(), 'audit');
  }

  get dir(): string {
    return this.#dir;
  }

  write(event: AuditEvent): Promise<void> {
    return new Promise((resolve, reject) => {
      const queue = this.#queues.get(event.stream) ?? [];
      this.#queues.set(event.stream, queue);
      queue.push({ line: `${JSON.stringify(event)}\n`, resolve, reject });
      if (!this.#flushing.has(event.stream)) void this.#flush(event.stream);
    });
  }

  async close(): Promise<void> {
    while (this.#flushing.size > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const file of this.#files.values()) await (await file).close();
    this.#files.clear();
  }

  async #flush(stream: AuditStream): Promise<void> {
    this.#flushing.add(stream);
    try {
      for (;;) {
        const batch = this.#queues.get(stream) ?? [];
        if (batch.length === 0) return;
        this.#queues.set(stream, []);
        try {
          const file = await this.#file(stream);
          await file.appendFile(batch.map((p) => p.line).join(''));
          for (const p of batch) p.resolve();
        } catch (error) {
          this.#files.delete(stream);
          for (const p of batch) p.reject(error);
        }
      }
    } finally {
      this.#flushing.delete(stream);
    }
  }

  #file(stream: AuditStream): Promise<FileHandle> {
    let file = this.#files.get(stream);
    if (file === undefined) {
      file = mkdir(this.#dir, { recursive: true, mode: 0o700 }).then(() =>
        open(join(this.#dir, `${stream}.jsonl`), 'a', 0o600),
      );
      this.#files.set(stream, file);
    }
    return file;
  }
}
