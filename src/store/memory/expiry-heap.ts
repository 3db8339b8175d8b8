interface Slot {
  at: number;
  readonly key: string;
  /** Position in the heap array, kept current on every move so that a key's slot is found without a search. */
  index: number;
}

/**
 * A binary min-heap of expiry times with one slot per key: an overwrite moves the key's slot, a delete removes it.
 * Its memory is therefore bounded by the live keys, not by the writes made within one TTL (a heap that kept a slot
 * per write held hundreds of MB for a store of 1 MiB under steady overwrites).
 */
export class ExpiryHeap {
  #slots: Slot[] = [];
  readonly #byKey = new Map<string, Slot>();

  /** Slots held: one per key scheduled, never more. */
  get size(): number {
    return this.#slots.length;
  }

  /** Schedules `key` to expire at `at`, replacing the time it had. */
  set(key: string, at: number): void {
    const known = this.#byKey.get(key);
    if (known !== undefined) {
      const earlier = at < known.at;
      known.at = at;
      if (earlier) this.#up(known.index);
      else this.#down(known.index);
      return;
    }
    const slot: Slot = { at, key, index: this.#slots.length };
    this.#slots.push(slot);
    this.#byKey.set(key, slot);
    this.#up(slot.index);
  }

  delete(key: string): void {
    const slot = this.#byKey.get(key);
    if (slot === undefined) return;
    this.#byKey.delete(key);
    const last = this.#slots.pop()!;
    if (last === slot) return;
    this.#place(last, slot.index);
    // The slot moved into the hole may belong above or below it.
    this.#up(last.index);
    this.#down(last.index);
  }

  /** Whether some key's time is at or before `now`. */
  due(now: number): boolean {
    return this.#slots.length > 0 && this.#slots[0]!.at <= now;
  }

  /** Removes and returns the keys whose time is at or before `now`, earliest first. */
  popExpired(now: number): string[] {
    const out: string[] = [];
    while (this.#slots.length > 0 && this.#slots[0]!.at <= now) {
      const key = this.#slots[0]!.key;
      this.delete(key);
      out.push(key);
    }
    return out;
  }

  clear(): void {
    this.#slots = [];
    this.#byKey.clear();
  }

  #place(slot: Slot, index: number): void {
    this.#slots[index] = slot;
    slot.index = index;
  }

  #up(index: number): void {
    const slots = this.#slots;
    const slot = slots[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = slots[parentIndex]!;
      if (parent.at <= slot.at) break;
      this.#place(parent, index);
      index = parentIndex;
    }
    this.#place(slot, index);
  }

  #down(index: number): void {
    const slots = this.#slots;
    const slot = slots[index]!;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= slots.length) break;
      const right = left + 1;
      const child = right < slots.length && slots[right]!.at < slots[left]!.at ? right : left;
      if (slots[child]!.at >= slot.at) break;
      this.#place(slots[child]!, index);
      index = child;
    }
    this.#place(slot, index);
  }
}
