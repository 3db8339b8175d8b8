/**
 * Keeps L1 from being filled with a value that was already superseded when it arrived. A read or write of a key
 * opens a fence before it goes to L2; an invalidation of the key (a notice, a local write, a tag purge, a flush)
 * breaks every fence open on it; an operation fills L1 only through a fence still whole. Without this, a read
 * answered with the old value just after another instance's notice was handled would put that old value back
 * into L1 for a whole L1 TTL.
 */
export interface Fence {
  broken: boolean;
}

export class FillFences {
  readonly #open = new Map<string, Set<Fence>>();

  /** Fences open right now, over all keys. */
  get size(): number {
    let size = 0;
    for (const fences of this.#open.values()) size += fences.size;
    return size;
  }

  open(key: string): Fence {
    const fence: Fence = { broken: false };
    const fences = this.#open.get(key);
    if (fences === undefined) this.#open.set(key, new Set([fence]));
    else fences.add(fence);
    return fence;
  }

  close(key: string, fence: Fence): void {
    const fences = this.#open.get(key);
    fences?.delete(fence);
    if (fences?.size === 0) this.#open.delete(key);
  }

  /** Every operation on `key` in flight, `except` one, must not fill L1. */
  breakKey(key: string, except?: Fence): void {
    const fences = this.#open.get(key);
    if (fences === undefined) return;
    for (const fence of fences) if (fence !== except) fence.broken = true;
  }

  /** No operation in flight may fill L1: a tag's entries are not known by key here, and a flush drops them all. */
  breakAll(): void {
    for (const fences of this.#open.values()) for (const fence of fences) fence.broken = true;
  }
}
