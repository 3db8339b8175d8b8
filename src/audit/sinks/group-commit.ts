interface Pending {
  readonly text: string;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Batches appends: lines that arrive while a flush is in flight go out together in the next one, and every caller
 * is answered when the flush that carried its line completes. One flush at a time keeps the lines in order.
 */
export class GroupCommit {
  readonly #flush: (text: string) => Promise<void>;
  #queue: Pending[] = [];
  #running: Promise<void> | undefined;

  constructor(flush: (text: string) => Promise<void>) {
    this.#flush = flush;
  }

  push(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ text, resolve, reject });
      this.#running ??= this.#drain().finally(() => {
        this.#running = undefined;
      });
    });
  }

  /** Resolves when everything pushed so far has been flushed (or failed). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        await this.#flush(batch.map((p) => p.text).join(''));
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
  }
}
